"""ROS 2 message definitions without a ROS install: the `rosbags` type store plus vision_msgs.

`typestore()` is the single place message layouts come from: the DDS transport builds its wire types from it
(`sr_real_core.ros.dds.idl`), bags are decoded with it, and the tests serialise reference messages with it.
`rosbags` ships the core ROS 2 interfaces (sensor_msgs, visualization_msgs, diagnostic_msgs, ...) but not
vision_msgs, so its definitions (vision_msgs 4.x, identical in Humble and Jazzy) are registered here from
their .msg texts. The layouts of every type the node uses are the same in Humble and Jazzy (tested).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from rosbags.interfaces import Nodetype
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

DISTRO_STORE = Stores.ROS2_HUMBLE

# vision_msgs 4.x (ros-perception/vision_msgs, branch ros2): the types the node subscribes to or publishes.
VISION_MSGS = {
    "vision_msgs/msg/Point2D": "float64 x\nfloat64 y\n",
    "vision_msgs/msg/Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "vision_msgs/msg/BoundingBox2D": "vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n",
    "vision_msgs/msg/BoundingBox3D": "geometry_msgs/Pose center\ngeometry_msgs/Vector3 size\n",
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose": (
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n"
    ),
    "vision_msgs/msg/Detection2D": (
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\nvision_msgs/BoundingBox2D bbox\n"
        "string id\n"
    ),
    "vision_msgs/msg/Detection2DArray": "std_msgs/Header header\nvision_msgs/Detection2D[] detections\n",
    "vision_msgs/msg/Detection3D": (
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\nvision_msgs/BoundingBox3D bbox\n"
        "string id\n"
    ),
    "vision_msgs/msg/Detection3DArray": "std_msgs/Header header\nvision_msgs/Detection3D[] detections\n",
}

# Every message type the spatial query node subscribes to or publishes.
NODE_MESSAGE_TYPES = (
    "sensor_msgs/msg/Image",
    "sensor_msgs/msg/CompressedImage",
    "sensor_msgs/msg/CameraInfo",
    "vision_msgs/msg/Detection2DArray",
    "geometry_msgs/msg/PointStamped",
    "std_msgs/msg/String",
    "visualization_msgs/msg/MarkerArray",
    "vision_msgs/msg/Detection3DArray",
    "diagnostic_msgs/msg/DiagnosticArray",
)


@functools.lru_cache(maxsize=4)
def typestore(store: Stores = DISTRO_STORE):
    """A rosbags type store of `store` (a fresh one, cached) with vision_msgs registered."""
    types = get_typestore(store)
    for name, text in VISION_MSGS.items():
        types.register(get_types_from_msg(text, name))
    return types


_NUMPY_TYPES = {"bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8, "uint8": np.uint8,
                "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32, "int64": np.int64,
                "uint64": np.uint64, "float32": np.float32, "float64": np.float64}
BYTE_TYPES = ("uint8", "byte", "char")


def is_byte_sequence(kind: Nodetype, detail: Any) -> bool:
    """Whether a field definition is an unbounded uint8[] / byte[] (image data, compressed data, ...)."""
    if kind != Nodetype.SEQUENCE:
        return False
    (element_kind, element_detail), bound = detail
    return element_kind == Nodetype.BASE and element_detail[0] in BYTE_TYPES and not bound


class MessageBuilder:
    """Builds messages of one library from dicts with the ROS field names; missing fields take their ROS
    defaults (0, "", False, empty sequences, zero arrays, default sub-messages), unknown names are refused.

    `struct(msgtype, fields)` makes a message; `numbers(base_type, values)` a numeric array or sequence;
    `byte_data(value)` a uint8[] field from any byte buffer."""

    def __init__(self, struct: Callable[[str, dict[str, Any]], Any], numbers: Callable[[str, list[Any]], Any],
                 byte_data: Callable[[Any], Any]):
        self.struct, self.numbers, self.byte_data = struct, numbers, byte_data

    def build(self, msgtype: str, values: Mapping[str, Any]) -> Any:
        _, fields = typestore().fielddefs[msgtype]
        unknown = set(values) - {name for name, _ in fields}
        if unknown:
            raise ValueError(f"{msgtype}: unknown field(s) {', '.join(sorted(unknown))}")
        return self.struct(msgtype, {name: self._value(kind, detail, values.get(name))
                                     for name, (kind, detail) in fields})

    def _value(self, kind: Nodetype, detail: Any, value: Any) -> Any:
        if kind == Nodetype.NAME:
            return self.build(detail, value or {}) if value is None or isinstance(value, Mapping) else value
        if kind == Nodetype.BASE:
            return _base_value(detail[0], value)
        if is_byte_sequence(kind, detail):
            return self.byte_data(b"" if value is None else value)
        (element_kind, element_detail), size = detail
        items = list(value) if value is not None else [None] * size if kind == Nodetype.ARRAY else []
        if kind == Nodetype.ARRAY and len(items) != size:
            raise ValueError(f"expected an array of {size} values, got {len(items)}")
        converted = [self._value(element_kind, element_detail, item) for item in items]
        numeric = element_kind == Nodetype.BASE and element_detail[0] != "string"
        return self.numbers(element_detail[0], converted) if numeric else converted


def _base_value(name: str, value: Any) -> Any:
    if name == "string":
        return "" if value is None else str(value)
    if isinstance(value, bytes):  # byte / char fields as rclpy holds them: one byte
        return value[0]
    if name == "bool":
        return bool(value)
    if name.startswith("float"):
        return 0.0 if value is None else float(value)
    return 0 if value is None else int(value)


def _rosbags_bytes(value: Any) -> np.ndarray:
    return np.frombuffer(value, dtype=np.uint8) if isinstance(value, (bytes, bytearray)) else \
        np.asarray(value, dtype=np.uint8).ravel()


ROSBAGS_BUILDER = MessageBuilder(
    struct=lambda msgtype, fields: typestore().types[msgtype](**fields),
    numbers=lambda base, values: np.asarray(values, dtype=_NUMPY_TYPES[base]),
    byte_data=_rosbags_bytes,
)


def rosbags_message(msgtype: str, values: Mapping[str, Any]) -> Any:
    """A rosbags message (serialisable with `typestore().serialize_cdr`) from a dict of ROS field values."""
    return ROSBAGS_BUILDER.build(msgtype, values)
