"""One validation of what a question is asked about: the question, the image, its depth, intrinsics and regions.

Shared by `sr-real ask`, the evaluation's model runs and the spatial query node (all go through
`SpatialReasoner`, and the node checks its frames with the same function before queueing), so that the same
input gets the same answer everywhere:

- the question: a non-empty string of valid UTF-8 text, at most MAX_QUESTION_CHARS characters;
- regions: boxes of four finite numbers inside the image;
- intrinsics calibrated at another resolution: rescaled when the aspect ratio matches (the answer's notes say
  so), an error otherwise (a crop or a swapped width/height would give silently wrong 3D);
- depth: at the image's resolution with at least one valid pixel (finite, > 0), an error otherwise; a region
  without a valid depth pixel is named in the notes (its 3D position comes from the model alone);
- intrinsics without depth: noted (there is nothing to lift).

Also the bounded JSON reader of untrusted text (`load_untrusted_json`): nesting depth limited before the parser
runs (no RecursionError), non-finite numbers refused.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sr_real_core.errors import UserError
from sr_real_core.geometry import Intrinsics

MAX_QUESTION_CHARS = 4000  # ~1,300 tokens: every benchmark question fits many times over
MAX_JSON_DEPTH = 16  # a query is at most 4 levels deep
ASPECT_TOLERANCE = 0.01  # relative: 1280x720 calibrations serve 854x480 images


class InputError(UserError):
    """An input a question cannot be asked about; the text names the input and what is wrong."""


@dataclass
class CheckedInputs:
    depth: np.ndarray | None
    intrinsics: Intrinsics | None
    notes: list[str] = field(default_factory=list)


def check_question(question: Any) -> str:
    """The question, stripped; InputError if it is not a non-empty, valid UTF-8 string within the limit."""
    if not isinstance(question, str):
        raise InputError(f"question: expected text, got {type(question).__name__}")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as error:  # undecodable bytes on the command line arrive as lone surrogates
        raise InputError(f"question: not valid UTF-8 text (character {error.start}); give the question as UTF-8"
                         ) from None
    stripped = question.strip()
    if not stripped:
        raise InputError("question: empty")
    if len(stripped) > MAX_QUESTION_CHARS:
        raise InputError(f"question: {len(stripped)} characters, more than the limit of {MAX_QUESTION_CHARS}")
    return stripped


def check_box(box: Any, width: int, height: int, name: str = "region") -> tuple[float, float, float, float]:
    """A box (x1, y1, x2, y2) of four finite numbers inside a width x height image; InputError otherwise."""
    try:
        values = tuple(float(value) for value in box)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name}: expected four numbers x1, y1, x2, y2, got {box!r}") from None
    if len(values) != 4 or not all(math.isfinite(value) for value in values):
        raise InputError(f"{name}: expected four finite numbers x1, y1, x2, y2, got {box!r}")
    x1, y1, x2, y2 = values
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise InputError(f"{name}: {list(values)} is not a box inside the {width}x{height} image (need "
                         "0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, pixels)")
    return values


def fit_intrinsics(value: Any, width: int, height: int) -> tuple[Intrinsics, list[str]]:
    """Intrinsics of a width x height image from an `Intrinsics`, a mapping {fx, fy, cx, cy[, width, height]} or
    a 3x3 K, with a note when they were calibrated at another resolution of the same aspect ratio."""
    if isinstance(value, Intrinsics):
        intrinsics = value
    elif isinstance(value, Mapping):
        intrinsics = Intrinsics.from_dict({"width": width, "height": height, **value})
    else:
        intrinsics = Intrinsics.from_matrix(value, width, height)
    if (intrinsics.width, intrinsics.height) == (width, height):
        return intrinsics, []
    given, image = intrinsics.width / intrinsics.height, width / height
    if abs(given - image) > ASPECT_TOLERANCE * image:
        raise InputError(f"intrinsics: calibrated for {intrinsics.width}x{intrinsics.height}, the image is "
                         f"{width}x{height}, another aspect ratio (cropped, or width and height swapped?); give "
                         "intrinsics of this image")
    note = (f"intrinsics calibrated for {intrinsics.width}x{intrinsics.height} rescaled to the "
            f"{width}x{height} image")
    return intrinsics.scaled(width, height), [note]


def check_depth(depth: Any, width: int, height: int, boxes: Sequence[Sequence[float]] = ()) -> tuple[
        np.ndarray, list[str]]:
    """A depth map (H, W) as float32 with at least one valid pixel (finite, > 0), and notes naming the boxes
    with none; InputError otherwise."""
    try:
        depth = np.asarray(depth, dtype=np.float32).squeeze()
    except (TypeError, ValueError):
        raise InputError(f"depth: expected a numeric (H, W) array, got {type(depth).__name__}") from None
    if depth.shape != (height, width):
        raise InputError(f"depth: shape {depth.shape}, the image is {height}x{width} (H x W): give depth at the "
                         "image's resolution")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        raise InputError("depth: no valid pixel (every value is 0, negative, NaN or inf)")
    notes = []
    for index, box in enumerate(boxes):
        x1, y1, x2, y2 = box
        cells = valid[int(y1):max(int(math.ceil(y2)), int(y1) + 1), int(x1):max(int(math.ceil(x2)), int(x1) + 1)]
        if not cells.any():
            notes.append(f"region {index + 1} {[round(v, 1) for v in box]}: no valid depth pixel; its 3D position "
                         "rests on the image alone")
    return depth, notes


def check_inputs(question: Any, width: int, height: int, *, depth: Any = None, intrinsics: Any = None,
                 boxes: Sequence[Any] = ()) -> CheckedInputs:
    """The one validation of a question about a width x height image (see the module docstring)."""
    check_question(question)
    boxes = [check_box(box, width, height, f"region {index + 1}") for index, box in enumerate(boxes)]
    notes: list[str] = []
    if intrinsics is not None:
        intrinsics, notes = fit_intrinsics(intrinsics, width, height)
    if depth is not None:
        depth, depth_notes = check_depth(depth, width, height, boxes)
        notes += depth_notes
    elif intrinsics is not None:
        notes.append("intrinsics given without depth: nothing to lift to 3D, the answer rests on the image alone")
    return CheckedInputs(depth, intrinsics, notes)


def image_size(image: Any) -> tuple[int, int]:
    """(width, height) of a PIL image or an (H, W[, C]) array."""
    if hasattr(image, "size") and not isinstance(image, np.ndarray):
        width, height = image.size
        return int(width), int(height)
    shape = np.shape(image)
    return int(shape[1]), int(shape[0])


# ------------------------------------------------------------------ untrusted JSON

def json_depth_exceeds(text: str, max_depth: int) -> bool:
    """Whether brackets in `text` (outside strings) nest deeper than `max_depth`: checked before parsing, as
    the parser recurses once per level."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 18:  # beyond int64: no field of a query needs it, and floats would overflow
        raise ValueError(f"integer {text[:24]}... is too large")
    return int(text)


def load_untrusted_json(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from a peer: ValueError (never RecursionError or OverflowError) for text nested deeper than
    `max_depth`, non-finite numbers (NaN, Infinity, 1e999) and integers beyond int64."""
    if json_depth_exceeds(text, max_depth):
        raise ValueError(f"nested deeper than {max_depth} levels")
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)
