"""The spatial query node's core, without ROS: RGB-D frames and questions in, answers and RViz markers out.

- config    `SpatialQueryConfig`: the node's parameters (descriptions, choices, ranges) in one place.
- frames    `FrameSynchroniser`: the latest approximately synchronised colour + depth + camera info set.
- requests  query text / JSON -> `QueryRequest`; region specs (boxes, 2D detections, clicked points) -> boxes.
- outputs   answer JSON, MarkerArray, Detection3DArray, debug image and diagnostics as ROS message dicts.
- service   `SpatialQueryService`: the inputs, the bounded query queue and the worker; `input_endpoints`,
            `OUTPUT_ENDPOINTS` list the topics a transport wires up.

Transports: `sr_real.spatial_query_node` (rclpy) and `sr_real_core.dds.transport` (Cyclone DDS, no ROS).
"""
