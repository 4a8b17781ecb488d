"""Queries: the text on `~/query` and the regions it names.

A query is plain text (the question) or a JSON object:

    {"question": "How far is the chair (red bbox) <region> from the cup (blue bbox) <region>?",
     "regions": [{"detection": "7"}, [120, 80, 210, 260]], "path": "dtr", "answer_type": "numeric", "id": "q1"}

Regions, in the order of the question's `<region>` tokens (at most four: red, blue, green, yellow):
- `[x1, y1, x2, y2]` or `{"box": [x1, y1, x2, y2]}`: a box in pixels of the colour image;
- `{"detection": ID}`: a box of the latest vision_msgs/Detection2DArray: the detection whose `id` is ID,
  else the best-scoring detection of class ID, else (ID an integer) the ID-th detection;
- `{"point": [u, v]}`: a pixel; `{"clicked_point": k}`: the k-th most recent RViz clicked point (0 = the
  latest), which must be in the camera's optical frame. A point becomes a small box around it.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from sr_real_core.geometry import Intrinsics
from sr_real_core.marks import MAX_REGIONS, point_box, region_ref
from sr_real_core.query import ANSWER_TYPES, PATH_MODES, Region
from sr_real_core.ros.msgs import detection_box, detection_label

_QUERY_KEYS = ("question", "regions", "path", "answer_type", "id")
MAX_QUERY_CHARS = 16_384  # a question is a sentence; anything longer is refused before it reaches the model


class QueryError(ValueError):
    """A query that cannot be asked; the text is the answer's error message."""


@dataclass(frozen=True)
class QueryRequest:
    question: str
    regions: tuple[Any, ...]
    path: str
    answer_type: str | None = None
    request_id: str | None = None


def parse_query(text: str, default_path: str) -> QueryRequest:
    """A QueryRequest from plain text or a JSON object (see the module docstring); QueryError if malformed."""
    stripped = text.strip()
    if not stripped:
        raise QueryError("empty query")
    if len(stripped) > MAX_QUERY_CHARS:
        raise QueryError(f"query of {len(stripped)} characters; at most {MAX_QUERY_CHARS}")
    if not stripped.startswith("{"):
        return QueryRequest(question=stripped, regions=(), path=default_path)
    try:
        query = json.loads(stripped)
    except json.JSONDecodeError as error:
        raise QueryError(f"malformed JSON query: {error}") from None
    unknown = sorted(set(query) - set(_QUERY_KEYS))
    if unknown:
        raise QueryError(f"unknown query field(s) {', '.join(unknown)}; known: {', '.join(_QUERY_KEYS)}")
    question = query.get("question")
    if not isinstance(question, str) or not question.strip():
        raise QueryError("question: expected a non-empty string")
    regions = query.get("regions", [])
    if not isinstance(regions, list) or len(regions) > MAX_REGIONS:
        raise QueryError(f"regions: expected a list of at most {MAX_REGIONS} regions")
    path = query.get("path", default_path)
    if path not in PATH_MODES:
        raise QueryError(f"path: {path!r} is not one of {', '.join(PATH_MODES)}")
    answer_type = query.get("answer_type")
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise QueryError(f"answer_type: {answer_type!r} is not one of {', '.join(ANSWER_TYPES)}")
    request_id = query.get("id")
    return QueryRequest(question.strip(), tuple(regions), path, answer_type,
                        None if request_id is None else str(request_id))


def resolve_regions(specs: Sequence[Any], intrinsics: Intrinsics, camera_frame: str,
                    detections: Any | None, clicked_points: Sequence[Any]) -> list[Region]:
    """The `Region`s of a query's region specs (pixel boxes on the colour image, named by their mark colour in
    order); QueryError if one cannot be resolved. `clicked_points` are geometry_msgs/PointStamped, the most
    recent last."""
    regions = []
    for index, spec in enumerate(specs):
        kind, box, point = _resolve(spec, intrinsics, camera_frame, detections, clicked_points)
        regions.append(Region(box=box, ref=region_ref(index, kind), point=point))
    return regions


def _resolve(spec: Any, intrinsics: Intrinsics, camera_frame: str, detections: Any | None,
             clicked_points: Sequence[Any]) -> tuple[str, Sequence[float], tuple[float, float] | None]:
    """(mark kind, pixel box, the pixel of a point region)."""
    if isinstance(spec, list):
        spec = {"box": spec}
    if not isinstance(spec, dict) or len(spec) != 1:
        raise QueryError(f"region {spec!r}: expected [x1, y1, x2, y2] or one of box, detection, point, "
                         "clicked_point")
    (kind, value), = spec.items()
    if kind == "box":
        return "bbox", _numbers(value, 4, "box"), None
    if kind == "detection":
        return "bbox", detection_box(_find_detection(detections, value)), None
    if kind in ("point", "clicked_point"):
        uv = (_numbers(value, 2, "point") if kind == "point"
              else _clicked_pixel(value, intrinsics, camera_frame, clicked_points))
        return "point", _point_box(uv, intrinsics), (float(uv[0]), float(uv[1]))
    raise QueryError(f"region {spec!r}: unknown kind {kind!r}; expected box, detection, point or clicked_point")


def _numbers(value: Any, count: int, name: str) -> list[float]:
    if (not isinstance(value, list) or len(value) != count
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise QueryError(f"{name}: expected {count} numbers, got {value!r}")
    return [float(v) for v in value]


def _point_box(uv: Sequence[float], intrinsics: Intrinsics) -> list[int]:
    u, v = uv
    if not (0 <= u < intrinsics.width and 0 <= v < intrinsics.height):
        raise QueryError(f"point ({u:.1f}, {v:.1f}) lies outside the {intrinsics.width}x{intrinsics.height} image")
    return point_box(None, [u, v, u, v], intrinsics.width, intrinsics.height)


def _find_detection(detections: Any | None, wanted: Any) -> Any:
    found = list(detections.detections) if detections is not None else []
    if not found:
        raise QueryError(f"detection {wanted!r}: no Detection2DArray with detections received yet")
    by_id = [d for d in found if str(d.id) == str(wanted)]
    by_class = sorted((d for d in found if detection_label(d) == str(wanted)),
                      key=lambda d: -max(float(r.hypothesis.score) for r in d.results))
    if by_id or by_class:
        return (by_id or by_class)[0]
    if isinstance(wanted, int) and not isinstance(wanted, bool) and 0 <= wanted < len(found):
        return found[wanted]
    known = ", ".join(sorted({str(d.id) for d in found if str(d.id)} | {detection_label(d) or "" for d in found}))
    raise QueryError(f"detection {wanted!r}: no detection with that id or class among {len(found)} "
                     f"({known or 'no ids or classes'})")


def _clicked_pixel(index: Any, intrinsics: Intrinsics, camera_frame: str,
                   clicked_points: Sequence[Any]) -> list[float]:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(clicked_points):
        raise QueryError(f"clicked_point {index!r}: {len(clicked_points)} clicked point(s) received")
    clicked = clicked_points[-1 - index]
    frame = str(clicked.header.frame_id)
    if frame not in ("", camera_frame):
        raise QueryError(f"clicked_point {index}: in frame {frame!r}, not the camera frame {camera_frame!r}; "
                         "set RViz's fixed frame to the camera frame")
    xyz = [float(clicked.point.x), float(clicked.point.y), float(clicked.point.z)]
    if xyz[2] <= 0:
        raise QueryError(f"clicked_point {index}: {xyz} lies behind the camera")
    return list(project_points(intrinsics, [xyz])[0])


def project_points(intrinsics: Intrinsics, points: Sequence[Sequence[float]]) -> np.ndarray:
    """Raw-image pixels (N, 2) of camera-frame points (N, 3) in front of the camera, lens distortion applied
    (the inverse of the undistortion `geometry.depth_to_points` does)."""
    xyz = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if not intrinsics.has_distortion:
        return intrinsics.project(xyz)
    # Distort normalized coordinates with an identity camera matrix, then apply K (with its skew) here:
    # OpenCV's projectPoints would ignore the skew term.
    coefficients = np.asarray(intrinsics.distortion)
    rays, zero = xyz.reshape(-1, 1, 3), np.zeros(3)
    if intrinsics.distortion_model == "equidistant":
        distorted, _ = cv2.fisheye.projectPoints(rays, zero, zero, np.eye(3), coefficients)
    else:
        distorted, _ = cv2.projectPoints(rays, zero, zero, np.eye(3), coefficients)
    normalized = distorted.reshape(-1, 2)
    return intrinsics.project(np.concatenate([normalized, np.ones((len(normalized), 1))], axis=1))
