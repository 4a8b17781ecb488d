"""ROS 2 nodes of the `sr_real` package: thin adapters over `sr_real_core` (arrive with the ROS issue)."""
