"""ROS 2 nodes of the `sr_real` package, thin rclpy adapters over `sr_real_core` (importing this package needs
no ROS; the node modules do).

- spatial_query_node  spatial questions about an RGB-D camera stream, answers and RViz markers
                      (`ros2 launch sr_real spatial_query.launch.py`); its logic is `sr_real_core.ros`.
"""
