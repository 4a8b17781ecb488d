"""What the node publishes, as ROS message dicts (field names as in ROS; missing fields take defaults).

- answer: std_msgs/String holding JSON (`answer_json`, `status_json`);
- markers: visualization_msgs/MarkerArray in the camera's optical frame: DELETEALL, then per detected centre
  a sphere (ns "sr_real/centres") and a text label (ns "sr_real/labels") with id = the detection's index,
  and for distance questions a line between the first two centres with its length (ns
  "sr_real/measurement", ids 0 and 1);
- detections: vision_msgs/Detection3DArray (the model's centres; box centre and size measured from depth
  where the detection refers to a query region);
- debug_image: the frame with the regions and the projected centres drawn;
- diagnostics: diagnostic_msgs/DiagnosticArray.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from sr_real_core.geometry import Intrinsics
from sr_real_core.marks import MARK_COLOURS, draw_regions
from sr_real_core.query import Region
from sr_real_core.ros.msgs import image_dict, time_dict
from sr_real_core.ros.requests import QueryRequest, project_points

# visualization_msgs/Marker constants
SPHERE, LINE_STRIP, TEXT_VIEW_FACING = 2, 4, 9
ADD, DELETEALL = 0, 3
CENTRES_NS, LABELS_NS, MEASUREMENT_NS = "sr_real/centres", "sr_real/labels", "sr_real/measurement"
SPHERE_DIAMETER_M = 0.06
TEXT_HEIGHT_M = 0.05
LINE_WIDTH_M = 0.01
# diagnostic_msgs/DiagnosticStatus levels: `byte` fields are 1-byte bytes in ROS 2 Python (rclpy's constants)
OK, WARN = b"\x00", b"\x01"
DIAGNOSTIC_NAME = "sr_real: spatial query"

_FALLBACK_RGB = (200, 200, 200)  # centres that refer to no region
_DISTANCE_QUESTION = re.compile(r"\b(distance|far|apart|between|close|closer|closest|gap)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Centre:
    """A detected object's centre as published: the model's centre plus, when it names a query region and
    depth is available, the region's centre and extent measured from depth."""

    name: str
    ref: str | None
    center: tuple[float, float, float]
    measured: Mapping[str, Any] | None = None  # Lifted3D.to_dict(): center_3d, size_3d, n_points

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ref": self.ref, "center_3d": [round(c, 4) for c in self.center],
                "measured": None if self.measured is None else dict(self.measured)}


def answer_json(request: QueryRequest, result: Any, centres: Sequence[Centre], regions: Sequence[Region],
                latency: Mapping[str, float], frame_stamp: float) -> str:
    """The ~/answer payload of an answered query (`result`: an inference SpatialAnswer)."""
    return json.dumps({
        "status": "ok", "id": request.request_id, "question": request.question,
        "requested_path": result.requested_path, "path": result.path, "answer": result.answer,
        "value": result.value, "value_m": result.value_m,
        "detections": [centre.to_dict() for centre in centres],
        "regions": [{"ref": region.ref, "box": list(region.box)} for region in regions],
        "reasoning": result.reasoning, "completion": result.completion, "well_formed": result.well_formed,
        "errors": list(result.errors), "notes": list(getattr(result, "notes", [])),
        "latency_s": {key: round(value, 6) for key, value in latency.items()},
        "frame_stamp": frame_stamp,
    })


def status_json(status: str, message: str, request: QueryRequest | None = None) -> str:
    """The ~/answer payload of a query that was not answered: status busy, no_frame or error."""
    return json.dumps({"status": status, "id": None if request is None else request.request_id,
                       "question": None if request is None else request.question, "message": message})


def is_distance_question(question: str) -> bool:
    return bool(_DISTANCE_QUESTION.search(question))


def marker_array(centres: Sequence[Centre], header: Mapping[str, Any], lifetime_s: float,
                 measure_first_two: bool) -> dict[str, Any]:
    """DELETEALL, then a sphere and a label per centre, then the measuring line if asked and possible."""
    lifetime = time_dict(lifetime_s)
    markers: list[dict[str, Any]] = [{"header": header, "action": DELETEALL}]
    for index, centre in enumerate(centres):
        colour = _rgba(centre.ref)
        markers.append(_marker(header, CENTRES_NS, index, SPHERE, centre.center, lifetime, colour,
                               scale=(SPHERE_DIAMETER_M,) * 3))
        above = (centre.center[0], centre.center[1] - SPHERE_DIAMETER_M, centre.center[2])  # optical y is down
        markers.append(_marker(header, LABELS_NS, index, TEXT_VIEW_FACING, above, lifetime, colour,
                               scale=(0.0, 0.0, TEXT_HEIGHT_M), text=_label(centre)))
    if measure_first_two and len(centres) >= 2:
        first, second = (np.asarray(centre.center) for centre in centres[:2])
        white = {"r": 1.0, "g": 1.0, "b": 1.0, "a": 1.0}
        line = _marker(header, MEASUREMENT_NS, 0, LINE_STRIP, (0.0, 0.0, 0.0), lifetime, white,
                       scale=(LINE_WIDTH_M, 0.0, 0.0))
        line["points"] = [_point(first), _point(second)]
        markers.append(line)
        markers.append(_marker(header, MEASUREMENT_NS, 1, TEXT_VIEW_FACING, tuple((first + second) / 2), lifetime,
                               white, scale=(0.0, 0.0, TEXT_HEIGHT_M),
                               text=f"{np.linalg.norm(first - second):.2f} m"))
    return {"markers": markers}


def detection3d_array(centres: Sequence[Centre], header: Mapping[str, Any]) -> dict[str, Any]:
    """One Detection3D per centre. The model gives no confidence, so each hypothesis scores 1.0; the box is
    the measured one when there is one, else a zero-size box at the model's centre."""
    detections = []
    for centre in centres:
        box_centre = centre.measured["center_3d"] if centre.measured else centre.center
        size = centre.measured["size_3d"] if centre.measured else (0.0, 0.0, 0.0)
        detections.append({
            "header": header, "id": centre.ref or centre.name,
            "results": [{"hypothesis": {"class_id": centre.name, "score": 1.0},
                         "pose": {"pose": {"position": _point(centre.center), "orientation": {"w": 1.0}}}}],
            "bbox": {"center": {"position": _point(box_centre), "orientation": {"w": 1.0}},
                     "size": dict(zip("xyz", map(float, size)))},
        })
    return {"header": header, "detections": detections}


def debug_image(rgb: np.ndarray, regions: Sequence[Region], centres: Sequence[Centre], intrinsics: Intrinsics,
                header: Mapping[str, Any]) -> dict[str, Any]:
    """The frame with the query's regions (in their mark colours) and the detected centres projected."""
    canvas = draw_regions(rgb, regions)
    visible = [centre for centre in centres if centre.center[2] > 0]
    pixels = project_points(intrinsics, [centre.center for centre in visible]) if visible else []
    radius = max(3, round(min(rgb.shape[:2]) / 80))
    height, width = rgb.shape[:2]
    for centre, (u, v) in zip(visible, pixels):
        if not (0 <= u < width and 0 <= v < height):  # off the image (or NaN): nothing to draw
            continue
        colour = _mark_rgb(centre.ref)
        point = (int(round(u)), int(round(v)))
        cv2.circle(canvas, point, radius, colour, thickness=-1)
        cv2.putText(canvas, centre.name, (point[0] + radius + 2, point[1]), cv2.FONT_HERSHEY_SIMPLEX,
                    radius / 10, colour, max(1, radius // 3), cv2.LINE_AA)
    return image_dict(canvas, dict(header))


def diagnostic_array(level: bytes, message: str, values: Mapping[str, Any], stamp_s: float) -> dict[str, Any]:
    return {"header": {"stamp": time_dict(stamp_s)},
            "status": [{"level": level, "name": DIAGNOSTIC_NAME, "message": message, "hardware_id": "",
                        "values": [{"key": key, "value": str(value)} for key, value in values.items()]}]}


def _marker(header: Mapping[str, Any], ns: str, marker_id: int, marker_type: int, position: Sequence[float],
            lifetime: Mapping[str, int], colour: Mapping[str, float], *, scale: Sequence[float],
            text: str = "") -> dict[str, Any]:
    return {"header": header, "ns": ns, "id": marker_id, "type": marker_type, "action": ADD,
            "pose": {"position": _point(position), "orientation": {"w": 1.0}},
            "scale": dict(zip("xyz", map(float, scale))), "color": colour, "lifetime": lifetime, "text": text}


def _point(xyz: Sequence[float]) -> dict[str, float]:
    return dict(zip("xyz", map(float, xyz)))


def _label(centre: Centre) -> str:
    x, y, z = centre.center
    return f"{centre.name} ({x:.2f}, {y:.2f}, {z:.2f}) m"


def _mark_rgb(ref: str | None) -> tuple[int, int, int]:
    colour = (ref or "").split(" ", 1)[0]
    return MARK_COLOURS.get(colour, _FALLBACK_RGB)


def _rgba(ref: str | None) -> dict[str, float]:
    red, green, blue = (channel / 255.0 for channel in _mark_rgb(ref))
    return {"r": red, "g": green, "b": blue, "a": 1.0}
