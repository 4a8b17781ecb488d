"""Writing RGB-D camera streams as rosbag2 bags with `rosbags`: what a RealSense-style driver and a 2D detector
would have recorded, from frames in memory (e.g. rendered scenes: `scene_frames`).

    frames = scene_frames(load_scenes("runs/synth/scenes.jsonl"))
    write_camera_bag("runs/synth.bag", frames, strings=[...], storage="mcap")

Per frame, all stamped alike: colour (`sensor_msgs/Image`, rgb8), depth (16UC1 millimetres, when the frame has
depth), `CameraInfo` (plumb_bob, K from the intrinsics) and `vision_msgs/Detection2DArray` (when it has
detections). `strings` adds `std_msgs/String` messages (queries, answers, feedback) at given times. Used by
the tests and benchmarks of the robot-data path; users can turn any dataset into a bag to replay to the node.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from sr_real_core.geometry import Intrinsics
from sr_real_core.ros.msgs import image_dict, time_dict
from sr_real_core.ros.types import rosbags_message, typestore

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
ROSBAG2_VERSION = 8  # readable by Humble's rosbag2 and newer


@dataclass(frozen=True)
class CameraTopics:
    image: str = "/camera/color/image_raw"
    depth: str = "/camera/aligned_depth_to_color/image_raw"
    info: str = "/camera/color/camera_info"
    detections: str = "/detections"


@dataclass
class BagFrame:
    stamp: float  # seconds
    rgb: np.ndarray  # (H, W, 3) uint8
    intrinsics: Intrinsics
    depth_m: np.ndarray | None = None  # (H, W) float metres, NaN = invalid
    detections: list[tuple[str, Sequence[float]]] = field(default_factory=list)  # (class, [x1, y1, x2, y2])
    frame_id: str = "camera_color_optical_frame"
    depth_stamp: float | None = None  # a depth stamp of its own (a badly synchronised driver); None: `stamp`


def camera_info_dict(intrinsics: Intrinsics, header: dict[str, Any]) -> dict[str, Any]:
    """sensor_msgs/CameraInfo of pinhole intrinsics (plumb_bob; distortion as given, else zeros)."""
    k = [intrinsics.fx, 0.0, intrinsics.cx, 0.0, intrinsics.fy, intrinsics.cy, 0.0, 0.0, 1.0]
    distortion = list(intrinsics.distortion or [0.0] * 5)
    return {"header": header, "height": intrinsics.height, "width": intrinsics.width,
            "distortion_model": "plumb_bob" if intrinsics.distortion_model == "none" else intrinsics.distortion_model,
            "d": distortion, "k": k,
            "r": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], "p": [*k[:3], 0.0, *k[3:6], 0.0, 0.0, 0.0, 1.0, 0.0]}


def depth_dict(depth_m: np.ndarray, header: dict[str, Any]) -> dict[str, Any]:
    """sensor_msgs/Image 16UC1 (millimetres, 0 = invalid) of float metres."""
    millimetres = np.clip(np.rint(np.nan_to_num(depth_m * 1000.0, nan=0.0)), 0, 65535).astype("<u2")
    return {"header": header, "height": depth_m.shape[0], "width": depth_m.shape[1], "encoding": "16UC1",
            "is_bigendian": 0, "step": depth_m.shape[1] * 2, "data": millimetres.tobytes()}


def detections_dict(detections: Iterable[tuple[str, Sequence[float]]], header: dict[str, Any]) -> dict[str, Any]:
    """vision_msgs/Detection2DArray of (class, axis-aligned box) pairs, score 1."""
    items = []
    for index, (name, (x1, y1, x2, y2)) in enumerate(detections):
        items.append({"header": header, "id": str(index),
                      "results": [{"hypothesis": {"class_id": name, "score": 1.0}}],
                      "bbox": {"center": {"position": {"x": (x1 + x2) / 2, "y": (y1 + y2) / 2}, "theta": 0.0},
                               "size_x": x2 - x1, "size_y": y2 - y1}})
    return {"header": header, "detections": items}


def write_camera_bag(path: str | Path, frames: Iterable[BagFrame], *, topics: CameraTopics = CameraTopics(),
                     strings: Sequence[tuple[str, float, str]] = (), storage: str = "mcap") -> Path:
    """Write a rosbag2 bag (see the module docstring); `strings` are (topic, time s, text). Returns `path`."""
    store = typestore()
    with Writer(Path(path), version=ROSBAG2_VERSION, storage_plugin=STORAGES[storage]) as writer:
        connections: dict[str, Any] = {}

        def write(topic: str, msgtype: str, seconds: float, values: dict[str, Any]) -> None:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            data = store.serialize_cdr(rosbags_message(msgtype, values), msgtype)
            writer.write(connections[topic], round(seconds * 1e9), data)

        pending = sorted(strings, key=lambda item: item[1])
        for frame in frames:
            while pending and pending[0][1] < frame.stamp:
                topic, seconds, text = pending.pop(0)
                write(topic, "std_msgs/msg/String", seconds, {"data": text})
            header = {"stamp": time_dict(frame.stamp), "frame_id": frame.frame_id}
            write(topics.info, "sensor_msgs/msg/CameraInfo", frame.stamp, camera_info_dict(frame.intrinsics, header))
            write(topics.image, "sensor_msgs/msg/Image", frame.stamp, image_dict(frame.rgb, header))
            if frame.depth_m is not None:
                depth_stamp = frame.stamp if frame.depth_stamp is None else frame.depth_stamp
                depth_header = {"stamp": time_dict(depth_stamp), "frame_id": frame.frame_id}
                write(topics.depth, "sensor_msgs/msg/Image", depth_stamp, depth_dict(frame.depth_m, depth_header))
            if frame.detections:
                write(topics.detections, "vision_msgs/msg/Detection2DArray", frame.stamp,
                      detections_dict(frame.detections, header))
        for topic, seconds, text in pending:
            write(topic, "std_msgs/msg/String", seconds, {"data": text})
    return Path(path)


def scene_frames(scenes: Iterable[Any], *, start_s: float = 1_700_000_000.0, period_s: float = 0.1) -> list[BagFrame]:
    """Frames of scene records (`sr_real_core.scenes.Scene`), `period_s` apart, their objects as detections."""
    frames = []
    for index, scene in enumerate(scenes):
        detections = [(obj.name, obj.bbox_2d) for obj in scene.objects if obj.bbox_2d is not None]
        frames.append(BagFrame(stamp=start_s + index * period_s, rgb=scene.load_image(),
                               intrinsics=scene.intrinsics, depth_m=scene.load_depth() if scene.depth else None,
                               detections=detections))
    return frames
