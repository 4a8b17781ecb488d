"""ROS 2 node `spatial_query_node`: spatial questions about an RGB-D camera stream, answers and RViz markers.

A thin rclpy adapter over `sr_real_core.ros` (all behaviour lives there and is shared with the DDS
transport, `sr-real serve --transport dds`): it declares the parameters of `SpatialQueryConfig` with their
descriptions and ranges, wires `input_endpoints()` / `OUTPUT_ENDPOINTS` to subscriptions and publishers,
decodes images with ROS 2's cv_bridge (the core's decoder, same semantics, where it is absent), and publishes
diagnostics on a timer. The model is loaded at start-up, before any subscription exists. It needs only what
exists as wheels (rclpy, the message packages) plus vision_msgs (`ros_msgs/build_vision_msgs.py`); every
callback is guarded: a message or timer tick that fails is logged, counted in the diagnostics and skipped.

    ros2 run sr_real spatial_query_node --ros-args -p model:=/path/to/checkpoint
    python -m sr_real.spatial_query_node --ros-args -p model:=/path/to/checkpoint     # ROS from wheels
    ros2 topic pub --once /spatial_query_node/query std_msgs/msg/String "{data: 'How far is the chair?'}"
"""
from __future__ import annotations

import array
import functools
import importlib
import importlib.metadata
import sys
from collections.abc import Mapping
from typing import Any

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosidl_parser.definition import AbstractNestedType, AbstractSequence, BasicType, NamespacedType

from sr_real import ros_env
from sr_real_core.errors import guarded
from sr_real_core.geometry import decode_depth
from sr_real_core.ros.config import ParameterSpec, SpatialQueryConfig, parameter_specs
from sr_real_core.ros.frames import CoreImageDecoder
from sr_real_core.ros.msgs import DEPTH_UNITS, byte_buffer
from sr_real_core.ros.service import (OUTPUT_ENDPOINTS, Endpoint, SpatialQueryService, input_endpoints,
                                                load_engine)


def _ros2_cv_bridge() -> tuple[Any, str]:
    """ROS 2's CvBridge, or None and why not. The index's `cv-bridge` 1.x is a ROS 1 port that decodes 16UC1
    depth as uint8 under NumPy 2: never used."""
    try:
        if importlib.metadata.version("cv_bridge").startswith("1."):
            return None, "the installed cv_bridge is the ROS 1 port from the package index"
    except importlib.metadata.PackageNotFoundError:
        pass  # apt / colcon installs may carry no pip metadata
    try:
        from cv_bridge import CvBridge
    except ImportError as error:  # absent, or an apt cv_bridge built for NumPy 1 beside pip's NumPy 2
        return None, str(error)
    return CvBridge, ""


CvBridge, CV_BRIDGE_ERROR = _ros2_cv_bridge()
NODE_NAME = "spatial_query_node"
EXIT_USAGE = 2  # a bad parameter or an unloadable model: the user's to fix


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


def _namespaced_class(definition: NamespacedType) -> type:
    return getattr(importlib.import_module(".".join(definition.namespaces)), definition.name)


def fill_message(message: Any, values: Mapping[str, Any]) -> Any:
    """Set the fields of an rclpy message from a ROS message dict (nested dicts, lists of dicts, byte buffers)
    and return it; unknown field names raise ValueError. Instead of rosidl_runtime_py, which is no wheel."""
    slots = dict(zip(message.get_fields_and_field_types(), message.SLOT_TYPES))
    for name, value in values.items():
        if name not in slots:
            raise ValueError(f"{type(message).__name__} has no field {name!r}")
        slot = slots[name]
        element = slot.value_type if isinstance(slot, AbstractNestedType) else None
        if isinstance(value, Mapping):
            fill_message(getattr(message, name), value)
            continue
        if isinstance(element, NamespacedType):
            value = [fill_message(_namespaced_class(element)(), item) if isinstance(item, Mapping) else item
                     for item in value]
        elif isinstance(slot, AbstractSequence) and isinstance(element, BasicType) and element.typename == "uint8" \
                and not isinstance(value, array.array):
            # array('B', bytes) is one copy; rclpy would otherwise check the ints one by one.
            value = array.array("B", value if isinstance(value, (bytes, bytearray)) else bytes(byte_buffer(value)))
        setattr(message, name, value)
    return message


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
            self.create_subscription(message_class(endpoint.msgtype), endpoint.topic,
                                     handlers[endpoint.key], self._qos(endpoint))  # guarded by the service
        self.create_timer(self.config.diagnostics_period_s,
                          guarded(lambda: self.publish("diagnostics", self.service.diagnostics()),
                                  functools.partial(self.service.count_failure, "diagnostics")))
        self.service.start()
        self.get_logger().info(f"ready: ask on {self.get_fully_qualified_name()}/query")

    def publish(self, key: str, values: Mapping[str, Any]) -> None:
        """Publish an output given as a ROS message dict (called from the service's worker too)."""
        message_type, publisher = self._outputs[key]
        publisher.publish(fill_message(message_type(), values))

    def _qos(self, endpoint: Endpoint) -> QoSProfile:
        if not endpoint.sensor:
            return QoSProfile(depth=10)
        reliability = (ReliabilityPolicy.RELIABLE if self.config.sensor_reliability == "reliable"
                       else ReliabilityPolicy.BEST_EFFORT)
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.config.sensor_queue_depth,
                          reliability=reliability, durability=DurabilityPolicy.VOLATILE)


def main(args: list[str] | None = None) -> int:
    for name, value in ros_env.prepare().items():
        get_logger(NODE_NAME).info(f"{name}={value} (unset; ROS 2 from wheels / Cyclone DDS interop)")
    rclpy.init(args=args)
    try:
        node = SpatialQueryNode()
    except (ValueError, OSError, InvalidParameterValueException, InvalidParameterTypeException) as error:
        get_logger(NODE_NAME).fatal(f"not started: {error}")  # bad parameters or an unloadable model
        rclpy.try_shutdown()
        return EXIT_USAGE
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
