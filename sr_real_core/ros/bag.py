"""Recorded camera streams: rosbag2 (sqlite3, mcap) and ROS 1 bags through `rosbags`, fed to the service.

`bag_topics` maps the bag's topics to the service's inputs: a configured topic when the bag has it, else
the only topic of the right type (`sensor_msgs/Image` for depth must have "depth" in its name); the
returned configuration has no depth topic when the bag has no depth. `play_bag` then delivers the messages
in recorded order, as fast as the service takes them (its inputs never block).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader

from sr_real_core.ros.config import SpatialQueryConfig
from sr_real_core.ros.service import SpatialQueryService, input_endpoints
from sr_real_core.ros.types import typestore


class BagError(ValueError):
    """A bag that cannot be read or has no camera stream; the text names the bag and the reason."""


def topic_name(topic: str) -> str:
    """A recorded topic name made absolute (ROS 1 bags may record relative names)."""
    return "/" + topic.lstrip("/")


def bag_connections(path: str | Path) -> dict[str, str]:
    """{topic: message type} of a bag; BagError if it cannot be opened."""
    with open_bag(path) as reader:
        return {topic_name(connection.topic): connection.msgtype for connection in reader.connections}


def read_bag(path: str | Path) -> Iterator[tuple[str, Any]]:
    """(topic, message) in recorded order, messages decoded with `sr_real_core.ros.types.typestore()`."""
    with open_bag(path) as reader:
        for connection, _, raw in reader.messages():
            try:
                message = reader.deserialize(raw, connection.msgtype)
            except Exception as error:  # noqa: BLE001 - rosbags raises several types; name the topic
                raise BagError(f"{path}: cannot decode a {connection.msgtype} on {connection.topic}: "
                               f"{error}") from error
            yield topic_name(connection.topic), message


@contextmanager
def open_bag(path: str | Path) -> Iterator[AnyReader]:
    """An open `rosbags` reader of a bag; BagError (one line) if it cannot be opened."""
    try:
        reader = AnyReader([Path(path)], default_typestore=typestore())
        reader.open()
    except Exception as error:  # noqa: BLE001 - missing files, bad metadata, unsupported formats...
        first, *rest = str(error).strip().splitlines() or [type(error).__name__]
        raise BagError(f"{path}: not a readable bag: {first}{' ...' if rest else ''}") from error
    try:
        yield reader
    finally:
        reader.close()


def bag_topics(connections: Mapping[str, str], config: SpatialQueryConfig) -> SpatialQueryConfig:
    """`config` with its camera topics set to those of a bag (see the module docstring)."""
    def pick(configured: str, msgtype: str, hint: str = "") -> str | None:
        if connections.get(topic_name(configured)) == msgtype:
            return topic_name(configured)
        found = [topic for topic, kind in connections.items() if kind == msgtype and hint in topic]
        return found[0] if len(found) == 1 else None

    compressed = pick(f"{config.image_topic}/compressed", "sensor_msgs/msg/CompressedImage")
    raw = pick(config.image_topic, "sensor_msgs/msg/Image")
    depth = pick(config.depth_topic, "sensor_msgs/msg/Image", "depth") if config.depth_topic else None
    raw = None if raw == depth else raw
    info = pick(config.camera_info_topic, "sensor_msgs/msg/CameraInfo")
    if not (raw or compressed) or not info:
        kinds = ", ".join(f"{topic} ({kind})" for topic, kind in sorted(connections.items())) or "no topics"
        raise BagError(f"no single colour image and CameraInfo stream in the bag: {kinds}")
    image_topic, transport = (raw, "raw") if raw else (compressed.removesuffix("/compressed"), "compressed")
    return replace(config, image_topic=image_topic, image_transport=transport, camera_info_topic=info,
                   depth_topic=depth or "")


def play_bag(path: str | Path, service: SpatialQueryService) -> int:
    """Feed a bag's camera messages to `service` (configured by `bag_topics`); the number delivered."""
    handlers = service.handlers()
    routes = {endpoint.topic: handlers[endpoint.key] for endpoint in input_endpoints(service.config)
              if not endpoint.topic.startswith("~")}
    delivered = 0
    for topic, message in read_bag(path):
        if topic in routes:
            routes[topic](message)
            delivered += 1
    return delivered
