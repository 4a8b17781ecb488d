"""ROS 2 node `spatial_query_node`: spatial questions about an RGB-D camera stream, answers and RViz markers.

A thin rclpy adapter over `sr_real_core.ros` (all behaviour lives there and is shared with the DDS
transport, `sr-real serve --transport dds`): it declares the parameters of `SpatialQueryConfig` with their
descriptions and ranges, wires `input_endpoints()` / `OUTPUT_ENDPOINTS` to subscriptions and publishers,
decodes images with cv_bridge (the core's decoder if cv_bridge cannot be imported), and publishes diagnostics
on a timer. The model is loaded at start-up, before any subscription exists.

    ros2 run sr_real spatial_query_node --ros-args -p model:=/path/to/checkpoint
    ros2 topic pub --once /spatial_query_node/query std_msgs/msg/String "{data: 'How far is the chair?'}"
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosidl_runtime_py.set_message import set_message_fields

from sr_real_core.geometry import decode_depth
from sr_real_core.ros.config import ParameterSpec, SpatialQueryConfig, parameter_specs
from sr_real_core.ros.frames import CoreImageDecoder
from sr_real_core.ros.msgs import DEPTH_UNITS
from sr_real_core.ros.service import (OUTPUT_ENDPOINTS, Endpoint, SpatialQueryService, input_endpoints,
                                                load_engine)

try:
    from cv_bridge import CvBridge
except ImportError as error:  # e.g. an apt cv_bridge built for NumPy 1 beside pip's NumPy 2
    CvBridge, CV_BRIDGE_ERROR = None, error

NODE_NAME = "spatial_query_node"


class CvBridgeDecoder:
    """Image decoding with cv_bridge (messages are already checked by the core when they arrive)."""

    def __init__(self) -> None:
        self.bridge = CvBridge()

    def colour(self, msg: Any):
        return self.bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")

    def compressed(self, msg: Any):
        return self.bridge.compressed_imgmsg_to_cv2(msg, desired_encoding="rgb8")

    def depth(self, msg: Any):
        return decode_depth(self.bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough"), DEPTH_UNITS[msg.encoding])


def message_class(msgtype: str) -> type:
    """The rclpy message class of "pkg/msg/Name"."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def descriptor(spec: ParameterSpec) -> ParameterDescriptor:
    """Description, choices and range of a parameter. Read-only: topics and the model are fixed at start-up."""
    result = ParameterDescriptor(description=spec.description, read_only=True)
    if spec.choices:
        result.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.range is not None and isinstance(spec.default, float):
        result.floating_point_range = [FloatingPointRange(from_value=float(spec.range[0]),
                                                          to_value=float(spec.range[1]), step=0.0)]
    elif spec.range is not None:
        result.integer_range = [IntegerRange(from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)]
    return result


class SpatialQueryNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__(NODE_NAME, **kwargs)
        specs = parameter_specs()
        for spec in specs:
            self.declare_parameter(spec.name, spec.default, descriptor(spec))
        self.config = SpatialQueryConfig.from_mapping(
            {spec.name: self.get_parameter(spec.name).value for spec in specs})
        self.get_logger().info(f"loading {self.config.backend} model {self.config.model}")
        engine = load_engine(self.config)
        self._outputs = {endpoint.key: (message_class(endpoint.msgtype),
                                        self.create_publisher(message_class(endpoint.msgtype), endpoint.topic,
                                                              self._qos(endpoint)))
                         for endpoint in OUTPUT_ENDPOINTS}
        if CvBridge is None:
            self.get_logger().warning(f"cv_bridge unavailable ({CV_BRIDGE_ERROR}); decoding images with "
                                      "sr_real_core.ros.msgs, which follows cv_bridge's semantics")
        decoder = CoreImageDecoder() if CvBridge is None else CvBridgeDecoder()
        self.service = SpatialQueryService(engine, self.config, self.publish, decoder=decoder,
                                           logger=self.get_logger())
        handlers = self.service.handlers()
        for endpoint in input_endpoints(self.config):
            self.create_subscription(message_class(endpoint.msgtype), endpoint.topic, handlers[endpoint.key],
                                     self._qos(endpoint))
        self.create_timer(self.config.diagnostics_period_s,
                          lambda: self.publish("diagnostics", self.service.diagnostics()))
        self.service.start()
        self.get_logger().info(f"ready: ask on {self.get_fully_qualified_name()}/query")

    def publish(self, key: str, values: Mapping[str, Any]) -> None:
        """Publish an output given as a ROS message dict (called from the service's worker too)."""
        message_type, publisher = self._outputs[key]
        message = message_type()
        set_message_fields(message, values)
        publisher.publish(message)

    def _qos(self, endpoint: Endpoint) -> QoSProfile:
        if not endpoint.sensor:
            return QoSProfile(depth=10)
        reliability = (ReliabilityPolicy.RELIABLE if self.config.sensor_reliability == "reliable"
                       else ReliabilityPolicy.BEST_EFFORT)
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.config.sensor_queue_depth,
                          reliability=reliability, durability=DurabilityPolicy.VOLATILE)


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    try:
        node = SpatialQueryNode()
    except (ValueError, OSError) as error:  # bad parameters or an unloadable (e.g. corrupt) model: a user error
        get_logger(NODE_NAME).fatal(str(error))
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.service.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
