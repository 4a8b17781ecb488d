"""The ROS wing of the core: everything that speaks ROS 2 messages without rclpy. The spatial query node's
behaviour lives here: RGB-D frames and questions in, answers and RViz markers out.

- msgs      ROS 2 messages <-> numpy (images, depth, camera info, stamps, 2D detections), cv_bridge semantics.
- types     message definitions without a ROS install (the rosbags type store plus vision_msgs).
- config    `SpatialQueryConfig`: the node's parameters (descriptions, choices, ranges) in one place.
- frames    `FrameSynchroniser`: the latest approximately synchronised colour + depth + camera info set.
- requests  query text / JSON -> `QueryRequest`; region specs (boxes, 2D detections, clicked points) -> boxes.
- outputs   answer JSON, MarkerArray, Detection3DArray, debug image and diagnostics as ROS message dicts.
- service   `SpatialQueryService`: the inputs, the bounded query queue and the worker; `input_endpoints`,
            `OUTPUT_ENDPOINTS` list the topics a transport wires up.
- bag       rosbag2 / ROS 1 bag replay into the service (offline, no DDS).
- dds       the ROS 2 wire protocol on Cyclone DDS, without ROS (`sr-real serve --transport dds`).
- cli       `sr-real serve` (DDS or a bag; `--transport ros` hands over to `sr_real.spatial_query_node`).

Transports: `sr_real.spatial_query_node` (rclpy) and `sr_real_core.ros.dds.transport` (Cyclone DDS, no ROS).
"""
