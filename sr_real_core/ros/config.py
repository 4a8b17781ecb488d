"""The spatial query node's parameters: one definition for the rclpy node (declared with descriptions and
ranges), the DDS transport and `config/spatial_query.yaml`.

Each field's metadata carries its description and its allowed choices or numeric range; `parameter_specs()`
lists them for a transport to declare, `SpatialQueryConfig.from_mapping()` validates values from any source.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from sr_real_core.query import BACKENDS, DEFAULT_PATH_MODE, MAX_NEW_TOKENS, PATH_MODES


def _param(default: Any, description: str, *, choices: tuple[str, ...] = (),
           low: float | None = None, high: float | None = None) -> Any:
    return field(default=default, metadata={"description": description, "choices": choices,
                                            "range": None if low is None else (low, high)})


@dataclass(frozen=True)
class SpatialQueryConfig:
    model: str = _param("", "Checkpoint directory of the SR-REAL model (`sr-real model tiny --out DIR` writes "
                            "a small test one). Required.")
    backend: str = _param(BACKENDS[0], "Inference backend.", choices=BACKENDS)
    device: str = _param("", "Device for the backend, e.g. cpu, cuda, cuda:1; empty: the backend's default.")
    max_new_tokens: int = _param(MAX_NEW_TOKENS, "Most tokens generated per answer.", low=16, high=4096)
    constrain_answer: bool = _param(True, "For a query that names its answer_type, decode only an answer of that "
                                          "type (yes/no, option letter, length with unit, clock hour); false: "
                                          "the model's free answer.")
    path_mode: str = _param(DEFAULT_PATH_MODE, "Reasoning path for queries that name none: lor, dtr, auto (the "
                                         "model picks) or reference (DTR with regions, LOR without).",
                            choices=PATH_MODES)
    image_topic: str = _param("/camera/color/image_raw", "Colour image topic (sensor_msgs/Image; with "
                                                         "image_transport compressed, its /compressed topic).")
    image_transport: str = _param("raw", "raw: sensor_msgs/Image on image_topic; compressed: "
                                         "sensor_msgs/CompressedImage (JPEG/PNG) on image_topic/compressed.",
                                  choices=("raw", "compressed"))
    depth_topic: str = _param("/camera/aligned_depth_to_color/image_raw",
                              "Depth image registered to the colour image (16UC1 millimetres or 32FC1 metres); "
                              "empty: no depth.")
    camera_info_topic: str = _param("/camera/color/camera_info", "CameraInfo of the colour image.")
    detections_topic: str = _param("", "vision_msgs/Detection2DArray from any 2D detector, for regions given "
                                       "by detection id or class; empty: off.")
    clicked_point_topic: str = _param("/clicked_point", "geometry_msgs/PointStamped from RViz's Publish Point "
                                                        "tool, for point regions; empty: off.")
    sensor_reliability: str = _param("best_effort", "QoS reliability of the camera subscriptions (sensor data "
                                                    "QoS otherwise: keep last, volatile).",
                                     choices=("best_effort", "reliable"))
    sensor_queue_depth: int = _param(5, "QoS history depth of the camera subscriptions.", low=1, high=100)
    sync_slop_s: float = _param(0.05, "Largest stamp difference between a colour and a depth image taken as "
                                      "one frame, seconds.", low=0.0, high=1.0)
    max_query_bytes: int = _param(16384, "Largest ~/query message accepted, bytes (UTF-8); longer ones are "
                                         "answered 'error' unread.", low=256, high=1048576)
    queue_size: int = _param(1, "Queries that may wait while one runs; more are answered 'busy'.", low=0, high=16)
    marker_lifetime_s: float = _param(0.0, "Lifetime of the RViz markers, seconds; 0: until the next answer "
                                           "replaces them.", low=0.0, high=3600.0)
    publish_debug_image: bool = _param(True, "Publish ~/debug_image: the regions and the projected 3D centres "
                                             "drawn on the frame.")
    diagnostics_period_s: float = _param(1.0, "Period of the /diagnostics status, seconds.", low=0.1, high=60.0)
    record_dir: str = _param("", "Recorder: folder to write every answered query into (frame, depth, intrinsics, "
                                 "regions, answer) and the ~/feedback on it, for retraining (sr-real data labels); "
                                 "empty: off.")
    record_max_mb: float = _param(2048.0, "Recorder: most disk the folder may use, MB; further queries are not "
                                          "recorded (counted as recorder_full).", low=0.01, high=1.0e7)

    def __post_init__(self) -> None:
        for spec in fields(self):
            _check(spec.name, getattr(self, spec.name), spec.default, spec.metadata)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SpatialQueryConfig:
        """From parameter values (unknown names are refused: they are usually typos)."""
        known = {spec.name for spec in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def from_params_file(cls, path: str | Path, node_name: str, **overrides: Any) -> SpatialQueryConfig:
        """From a ROS 2 parameter file (`<node>: ros__parameters: {...}`, `/**` entries apply to every node);
        `overrides` win."""
        data = yaml.safe_load(Path(path).read_text()) or {}
        values: dict[str, Any] = {}
        for key in ("/**", node_name, f"/{node_name}"):
            section = data.get(key, {}) if isinstance(data, Mapping) else {}
            values.update(section.get("ros__parameters", {}) if isinstance(section, Mapping) else {})
        return cls.from_mapping({**values, **overrides})


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: bool | int | float | str
    description: str
    choices: tuple[str, ...]
    range: tuple[float, float] | None


def parameter_specs() -> list[ParameterSpec]:
    return [ParameterSpec(spec.name, spec.default, spec.metadata["description"], spec.metadata["choices"],
                          spec.metadata["range"]) for spec in fields(SpatialQueryConfig)]


def _check(name: str, value: Any, default: Any, metadata: Mapping[str, Any]) -> None:
    # The kinds ROS parameters have: an int is a fine float, but a bool (an int subclass) is only a bool.
    expected = type(default)
    accepted = (int, float) if expected is float else (expected,)
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, accepted):
        raise ValueError(f"{name}: expected a {expected.__name__}, got {value!r}")
    if metadata["choices"] and value not in metadata["choices"]:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(metadata['choices'])}")
    if metadata["range"] is not None:
        low, high = metadata["range"]
        if not low <= value <= high:
            raise ValueError(f"{name}: {value!r} is outside [{low}, {high}]")
