"""Spatial relations between 3D objects, for the SpatialRGPT-style question families of SR-REAL.

Objects
-------
``Box3D(center, size, yaw=0.0)``; the functions also accept anything with ``center``/``size`` (or
``center_3d``/``size_3d``) attributes or mapping keys and an optional ``yaw`` -- e.g. a
``region3d.Lifted3D`` or a ``scenes.SceneObject``.

- ``center``: camera frame (OpenCV: +x right, +y down, +z forward), metres.
- ``size``: extents ``[width, height, depth]`` of the object in its own gravity-aligned frame: width
  along its x axis, height along ``up``, depth along its forward axis. This is the order of
  ``Lifted3D.size`` and of ``size_3d`` in scene records.
- ``yaw``: rotation about ``up`` in radians; 0 means the object's axes are the gravity frame's (right,
  down, forward); positive yaw turns the width axis from right towards forward (anticlockwise seen from
  above). ``width`` is then the footprint's extent across the viewing direction:
  ``|cos yaw| * w + |sin yaw| * d``.

Frame
-----
Every function takes ``up``: the up direction in the camera frame, default ``(0, -1, 0)`` (a level
camera; ``None`` means the same, so a scene record's optional ``up`` can be passed as it is). Relations are evaluated in the gravity-aligned frame of ``geometry.gravity_frame(up)``: right,
down, and forward = the optical axis projected onto the horizontal plane. So a pitched camera still
gets "above" along gravity and "behind" along the horizontal viewing direction.

Semantics (centres unless stated)
---------------------------------
left/right: coordinate across the view; above/below: height along ``up``; behind/in front: horizontal
distance along the viewing direction (behind = farther). wide/thin: ``width``; tall/short: ``height``
(``size[1]``); big/small: volume. All predicates are strict comparisons, so ``is_left_of(a, b)`` iff
``is_right_of(b, a)`` exactly and ties are neither. ``distance``: Euclidean between centres;
``horizontal_distance``: in the horizontal plane; ``vertical_distance``: absolute height difference.
``clock_direction(a, b)``: "If you are at A, where will you find B?" seen from above with A facing the
viewing direction: 12 = straight ahead (away from the camera), 3 = right, 6 = towards the camera,
9 = left; ``clock_direction(b, a)`` is exactly 6 hours from ``clock_direction(a, b)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sr_real_core.geometry import DEFAULT_UP, gravity_frame

RIGHT, DOWN, FORWARD = 0, 1, 2  # axes of the gravity-aligned frame


@dataclass(frozen=True)
class Box3D:
    """An object: camera-frame centre, gravity-aligned size [width, height, depth], yaw about up."""

    center: np.ndarray
    size: np.ndarray
    yaw: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _vector(self.center, "center"))
        object.__setattr__(self, "size", _vector(self.size, "size"))
        if np.any(self.size < 0):
            raise ValueError(f"size: extents must be non-negative, got {self.size.tolist()}")
        yaw = float(self.yaw)
        if not math.isfinite(yaw):
            raise ValueError(f"yaw: expected a finite angle in radians, got {self.yaw!r}")
        object.__setattr__(self, "yaw", yaw)


def _vector(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: expected 3 finite numbers, got {values!r}")
    return array


def _field(obj: Any, *names: str) -> Any:
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def as_box(obj: Any) -> Box3D:
    """A Box3D from a Box3D, or anything with center/size (or center_3d/size_3d) and optional yaw."""
    if isinstance(obj, Box3D):
        return obj
    center, size = _field(obj, "center", "center_3d"), _field(obj, "size", "size_3d")
    if center is None or size is None:
        raise ValueError(f"expected an object with center and size (or center_3d and size_3d), got {obj!r}")
    return Box3D(center, size, _field(obj, "yaw") or 0.0)


def _aligned_center(obj: Any, up: ArrayLike | None) -> np.ndarray:
    return gravity_frame(up) @ as_box(obj).center


def _offset(a: Any, b: Any, up: ArrayLike | None) -> np.ndarray:
    """B's centre minus A's centre in the gravity frame (right, down, forward)."""
    return gravity_frame(up) @ (as_box(b).center - as_box(a).center)


def is_left_of(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    return bool(_aligned_center(a, up)[RIGHT] < _aligned_center(b, up)[RIGHT])


def is_right_of(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    return is_left_of(b, a, up=up)


def is_above(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    return bool(_aligned_center(a, up)[DOWN] < _aligned_center(b, up)[DOWN])


def is_below(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    return is_above(b, a, up=up)


def is_behind(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    """A is farther than B along the horizontal viewing direction."""
    return bool(_aligned_center(a, up)[FORWARD] > _aligned_center(b, up)[FORWARD])


def is_in_front_of(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    return is_behind(b, a, up=up)


def width(obj: Any, *, up: ArrayLike | None = DEFAULT_UP) -> float:
    """Footprint extent across the viewing direction (yaw-aware). ``up`` is accepted for a uniform
    signature: size is already gravity-aligned."""
    box = as_box(obj)
    return float(abs(math.cos(box.yaw)) * box.size[0] + abs(math.sin(box.yaw)) * box.size[2])


def height(obj: Any, *, up: ArrayLike | None = DEFAULT_UP) -> float:
    """Extent along up (``size[1]``); ``up`` is accepted for a uniform signature."""
    return float(as_box(obj).size[1])


def volume(obj: Any) -> float:
    return float(np.prod(as_box(obj).size))


def is_wider(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    return width(a, up=up) > width(b, up=up)


def is_thinner(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    return is_wider(b, a, up=up)


def is_taller(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    return height(a, up=up) > height(b, up=up)


def is_shorter(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    return is_taller(b, a, up=up)


def is_bigger(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    """Larger volume; ``up`` is accepted for a uniform signature."""
    return volume(a) > volume(b)


def is_smaller(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> bool:
    return is_bigger(b, a, up=up)


def distance(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> float:
    """Euclidean distance between centres (frame-independent; ``up`` for a uniform signature)."""
    return float(np.linalg.norm(as_box(b).center - as_box(a).center))


def horizontal_distance(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> float:
    offset = _offset(a, b, up)
    return float(math.hypot(offset[RIGHT], offset[FORWARD]))


def vertical_distance(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> float:
    return float(abs(_offset(a, b, up)[DOWN]))


def clock_direction(a: Any, b: Any, *, up: ArrayLike | None = DEFAULT_UP) -> int:
    """Clock hour 1..12 at which B lies seen from A facing the horizontal viewing direction.
    Raises ValueError when B is straight above or below A (no horizontal offset)."""
    offset = _offset(a, b, up)
    right, forward = float(offset[RIGHT]), float(offset[FORWARD])
    if right == 0.0 and forward == 0.0:
        raise ValueError("clock_direction: B is straight above or below A, so it has no direction")
    # Fold the offset into one half-plane before rounding, so reversing A and B (an exact negation)
    # always lands exactly 6 hours away, even on a half-hour boundary.
    flipped = forward < 0.0 or (forward == 0.0 and right < 0.0)
    if flipped:
        right, forward = -right, -forward
    hour = round(math.degrees(math.atan2(right, forward)) / 30.0) + (6 if flipped else 0)
    return (hour - 1) % 12 + 1
