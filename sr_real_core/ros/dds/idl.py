"""ROS 2 message types as Cyclone DDS IDL types, built from the rosbags type store.

ROS 2 over DDS: topic `/a/b` is DDS topic `rt/a/b`; type `pkg/msg/Name` is IDL struct
`pkg::msg::dds_::Name_` (final extensibility, XCDR1 little-endian on the wire). `idl_type("sensor_msgs/msg/Image")`
returns a `cyclonedds.idl.IdlStruct` class with the ROS field names, built recursively from the message
definition, so the CDR it writes is what rclpy and rosbags write (tested byte for byte).

Fast path for images: cyclonedds serialises a `sequence<uint8>` element by element (about 30 ms for a
640x480 RGB frame). CDR encodes `sequence<uint8>` exactly as cyclonedds's own `bytes` type (a uint32 count,
then the raw bytes), so every unbounded uint8[] member is declared `sequence[uint8]` (the type information
other participants see stays ROS's) and carried by cyclonedds's bytes machine: one memcpy each way, and
the field reads back as `bytes`.

`to_message(cls, values)` builds a message from a dict with ROS field names (missing fields take their ROS
defaults), the form `sr_real_core.ros.outputs` produces.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from cyclonedds.idl import IdlStruct, make_idl_struct
from cyclonedds.idl import types as idl_types
from cyclonedds.idl._machinery import BytesMachine, StructMachine
from rosbags.interfaces import Nodetype

from sr_real_core.ros.msgs import byte_buffer
from sr_real_core.ros.types import MessageBuilder, is_byte_sequence, typestore

_BASE_TYPES = {
    "bool": bool, "byte": idl_types.byte, "char": idl_types.uint8,
    "int8": idl_types.int8, "uint8": idl_types.uint8, "int16": idl_types.int16, "uint16": idl_types.uint16,
    "int32": idl_types.int32, "uint32": idl_types.uint32, "int64": idl_types.int64, "uint64": idl_types.uint64,
    "float32": idl_types.float32, "float64": idl_types.float64,
}


def dds_typename(msgtype: str) -> str:
    """`sensor_msgs/msg/Image` -> `sensor_msgs::msg::dds_::Image_` (the DDS type name rmw uses)."""
    package, kind, name = msgtype.split("/")
    return f"{package}::{kind}::dds_::{name}_"


@functools.lru_cache(maxsize=None)
def idl_type(msgtype: str) -> type[IdlStruct]:
    """The IDL struct of a ROS message type known to `sr_real_core.ros.types.typestore()`."""
    _, fields = typestore().fielddefs[msgtype]
    annotations = {name: _annotation(kind, detail) for name, (kind, detail) in fields}
    cls = make_idl_struct(msgtype.replace("/", "__"), dds_typename(msgtype), annotations)
    _carry_byte_sequences_as_bytes(cls, fields)
    return cls


def _annotation(kind: Nodetype, detail: Any) -> Any:
    if kind == Nodetype.BASE:
        name, bound = detail
        if name == "string":
            return idl_types.bounded_str[bound] if bound else str
        if name not in _BASE_TYPES:
            raise ValueError(f"ROS base type {name!r} has no IDL mapping here")
        return _BASE_TYPES[name]
    if kind == Nodetype.NAME:
        return idl_type(detail)
    element, size = detail
    if kind == Nodetype.ARRAY:
        return idl_types.array[_annotation(*element), size]
    return idl_types.sequence[_annotation(*element), size] if size else idl_types.sequence[_annotation(*element)]


def _carry_byte_sequences_as_bytes(cls: type[IdlStruct], fields: Any) -> None:
    """Swap the element-wise machine of each unbounded uint8[] member for cyclonedds's bytes machine (same CDR)."""
    byte_members = [name for name, (kind, detail) in fields if is_byte_sequence(kind, detail)]
    if not byte_members:
        return
    cls.__idl__.populate()
    for machine in (cls.__idl__.v1_machine, cls.__idl__.v2_machine):
        if not isinstance(machine, StructMachine):
            raise TypeError(f"{cls.__name__}: unexpected cyclonedds machine {type(machine).__name__}")
        for name in byte_members:
            machine.members_machines[name] = BytesMachine()


_BUILDER = MessageBuilder(
    struct=lambda msgtype, fields: idl_type(msgtype)(**fields),
    numbers=lambda base, values: values,
    byte_data=lambda value: value if isinstance(value, bytes) else bytes(byte_buffer(value)),
)


def to_message(msgtype: str, values: Mapping[str, Any]) -> IdlStruct:
    """An instance of `idl_type(msgtype)` from a dict of ROS field values; nested messages as dicts."""
    return _BUILDER.build(msgtype, values)
