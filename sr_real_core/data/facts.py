"""What is true in a scene: the spatial facts questions are asked about, with their ambiguity margins.

Objects are seen in the scene's gravity-aligned frame (``geometry.gravity_frame(up)``: right, down,
forward), so a pitched camera still gets "above" along gravity. Centres are taken at centimetre
resolution -- the precision a DTR completion writes -- first in the camera frame (what DTR detects), then
in the gravity frame (what its reasoning computes with); every truth is computed from those numbers with
``relations`` (default ``up``: the boxes are already gravity-aligned), so a chain of thought that works
from the numbers it shows reaches exactly the truth. The rounding moves a truth by under a centimetre.

Ambiguous questions are not asked (a human would hesitate, or the answer hangs on noise):

- left/right, above/below, behind/in front: the centres must differ along the axis by at least
  ``AXIS_MARGIN_M`` (3 cm) and by half the larger of the two objects' extents along that axis (side by
  side passes; one mostly in front of the other does not); behind/in front must also agree with which
  centre is farther from the camera in straight-line distance;
- wider/thinner, taller/shorter: the larger measure is ``SIZE_RATIO`` (1.2) times the smaller and 2 cm more;
  bigger/smaller: the volumes differ by ``VOLUME_RATIO`` (1.5x);
- metric: distances of at least 5 cm, vertical distances and sizes of at least 3 and 2 cm;
- direction: at least 15 cm apart horizontally and at least 5 degrees from a half-hour boundary of the
  clock (where the hour would flip).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sr_real_core import relations as rel
from sr_real_core.geometry import DEFAULT_UP, gravity_frame
from sr_real_core.grammar import normalise_ref
from sr_real_core.scenes import Scene

AXIS_MARGIN_M = 0.03
AXIS_MARGIN_EXTENT_FRACTION = 0.5
SIZE_RATIO = 1.2
SIZE_MIN_DIFFERENCE_M = 0.02
VOLUME_RATIO = 1.5
MIN_DISTANCE_M = 0.05
MIN_VERTICAL_DISTANCE_M = 0.03
MIN_SIZE_M = 0.02
DIRECTION_MIN_HORIZONTAL_M = 0.15
DIRECTION_BOUNDARY_DEG = 5.0


def to_centimetres(values) -> tuple[float, ...]:
    """Half-up rounding to whole centimetres, in metres (the DTR grammar's two decimals)."""
    return tuple(math.floor(float(v) * 100 + 0.5) / 100 for v in values)


@dataclass(frozen=True)
class Thing:
    """One annotated object as questions see it."""

    index: int  # in the scene's objects
    name: str
    camera_center: tuple[float, float, float]  # camera frame, whole centimetres
    box: rel.Box3D  # gravity frame (right, down, forward): centre in whole centimetres, size, yaw

    @property
    def right(self) -> float:
        return float(self.box.center[0])

    @property
    def height_above(self) -> float:
        """Height of the centre along up (the gravity frame's -down), in metres."""
        return -float(self.box.center[1])

    @property
    def forward(self) -> float:
        return float(self.box.center[2])

    @property
    def depth_extent(self) -> float:
        """Footprint extent along the horizontal viewing direction."""
        yaw, size = self.box.yaw, self.box.size
        return float(abs(math.sin(yaw)) * size[0] + abs(math.cos(yaw)) * size[2])


def scene_things(scene: Scene) -> list[Thing]:
    """Every object of the scene with a 3D centre and size."""
    frame = gravity_frame(scene.up or DEFAULT_UP)
    things = []
    for index, obj in enumerate(scene.objects):
        if obj.center_3d is None or obj.size_3d is None:
            continue
        camera_center = to_centimetres(obj.center_3d)
        gravity_center = to_centimetres(frame @ np.asarray(camera_center))
        box = rel.Box3D(gravity_center, obj.size_3d, obj.yaw or 0.0)
        things.append(Thing(index, obj.name, camera_center, box))
    return things


def unambiguous_names(names: Sequence[str]) -> set[str]:
    """The names that pick out one object by themselves: unique in the scene, and not contained (as whole
    words) in another object's name ("ball" is ambiguous next to "soccer ball"; "red ball" is not)."""
    normalised = [f" {normalise_ref(name)} " for name in names]
    return {
        name for i, name in enumerate(names)
        if not any(normalised[i] in other for j, other in enumerate(normalised) if j != i)
    }


@dataclass(frozen=True)
class Fact:
    """One askable fact. ``subjects`` are in the order the question mentions them; for a choice, option A
    is ``subjects[0]`` and B ``subjects[1]``. ``truth``: metres (numeric), an hour (direction), "yes"/"no",
    or a letter. ``word`` is the relation asked ("left", "taller", ...), None for metric questions."""

    family: str
    category: str
    answer_type: str
    subjects: tuple[Thing, ...]
    truth: float | int | str
    word: str | None = None


# ------------------------------------------------------------------------------------- qualitative facts

# word -> (family, relation(a, b), coordinate along the axis, object extent along the axis)
AXIS_WORDS: dict[str, tuple[str, Callable, Callable[[Thing], float], Callable[[Thing], float]]] = {
    "left": ("left_right", rel.is_left_of, lambda t: t.right, lambda t: rel.width(t.box)),
    "right": ("left_right", rel.is_right_of, lambda t: t.right, lambda t: rel.width(t.box)),
    "above": ("above_below", rel.is_above, lambda t: t.height_above, lambda t: rel.height(t.box)),
    "below": ("above_below", rel.is_below, lambda t: t.height_above, lambda t: rel.height(t.box)),
    "behind": ("behind_front", rel.is_behind, lambda t: t.forward, lambda t: t.depth_extent),
    "front": ("behind_front", rel.is_in_front_of, lambda t: t.forward, lambda t: t.depth_extent),
}
# word -> (family, relation(a, b), the size it compares)
SIZE_WORDS: dict[str, tuple[str, Callable, Callable[[Thing], float]]] = {
    "wide": ("wide_thin", rel.is_wider, lambda t: rel.width(t.box)),
    "thin": ("wide_thin", rel.is_thinner, lambda t: rel.width(t.box)),
    "tall": ("tall_short", rel.is_taller, lambda t: rel.height(t.box)),
    "short": ("tall_short", rel.is_shorter, lambda t: rel.height(t.box)),
    "big": ("big_small", rel.is_bigger, lambda t: rel.volume(t.box)),
    "small": ("big_small", rel.is_smaller, lambda t: rel.volume(t.box)),
}
QUALITATIVE_FAMILIES: dict[str, tuple[str, str]] = {
    "left_right": ("left", "right"),
    "above_below": ("above", "below"),
    "behind_front": ("behind", "front"),
    "wide_thin": ("wide", "thin"),
    "tall_short": ("tall", "short"),
    "big_small": ("big", "small"),
}


def unambiguous(word: str, a: Thing, b: Thing) -> bool:
    """Whether comparing ``a`` and ``b`` by ``word`` is clear-cut (see the module docstring)."""
    if word in AXIS_WORDS:
        _, _, coordinate, extent = AXIS_WORDS[word]
        margin = max(AXIS_MARGIN_M, AXIS_MARGIN_EXTENT_FRACTION * max(extent(a), extent(b)))
        if family_of(word) == "behind_front" and not _range_agrees(a, b):
            return False
        return abs(coordinate(a) - coordinate(b)) >= margin
    _, _, measure = SIZE_WORDS[word]
    small, large = sorted((measure(a), measure(b)))
    if word in ("big", "small"):
        return large >= VOLUME_RATIO * small and large > 0
    return large >= SIZE_RATIO * small and large - small >= SIZE_MIN_DIFFERENCE_M


def family_of(word: str) -> str:
    return (AXIS_WORDS.get(word) or SIZE_WORDS[word])[0]


def _range_agrees(a: Thing, b: Thing) -> bool:
    """"Behind" is measured along the horizontal viewing direction; it must not contradict which object
    is farther from the camera in straight-line distance (an object low under a pitched camera can be
    nearer along the view yet farther away), or the question reads as a trick."""
    by_forward = a.forward - b.forward
    by_range = float(np.linalg.norm(a.camera_center) - np.linalg.norm(b.camera_center))
    return by_forward * by_range > 0


def qualitative_fact(family: str, pair: Sequence[Thing], rng: np.random.Generator) -> Fact | None:
    """A yes/no or two-option question of one qualitative family about ``pair`` (order and word random)."""
    word = QUALITATIVE_FAMILIES[family][int(rng.integers(2))]
    a, b = pair if rng.random() < 0.5 else pair[::-1]
    if not unambiguous(word, a, b):
        return None
    relation = (AXIS_WORDS.get(word) or SIZE_WORDS[word])[1]
    holds = relation(a.box, b.box)
    if rng.random() < 0.5:
        return Fact(family, f"{word}_predicate", "yesno", (a, b), "yes" if holds else "no", word)
    return Fact(family, f"{word}_choice", "choice", (a, b), "A" if holds else "B", word)


# ----------------------------------------------------------------------------------------- metric facts

PAIR_METRICS: dict[str, tuple[Callable, float]] = {
    "distance": (rel.distance, MIN_DISTANCE_M),
    "horizontal_distance": (rel.horizontal_distance, MIN_DISTANCE_M),
    "vertical_distance": (rel.vertical_distance, MIN_VERTICAL_DISTANCE_M),
}
SINGLE_METRICS: dict[str, Callable] = {"width": rel.width, "height": rel.height}


def metric_fact(family: str, things: Sequence[Thing], rng: np.random.Generator) -> Fact | None:
    if family in SINGLE_METRICS:
        value = SINGLE_METRICS[family](things[0].box)
        return Fact(family, family, "numeric", (things[0],), value) if value >= MIN_SIZE_M else None
    measure, minimum = PAIR_METRICS[family]
    a, b = things if rng.random() < 0.5 else things[::-1]
    value = measure(a.box, b.box)
    return Fact(family, family, "numeric", (a, b), value) if value >= minimum else None


def direction_fact(family: str, pair: Sequence[Thing], rng: np.random.Generator) -> Fact | None:
    """"If you are at A, where will you find B?" -- skipped near an hour boundary or when too close."""
    a, b = pair if rng.random() < 0.5 else pair[::-1]
    right, forward = b.right - a.right, b.forward - a.forward
    if math.hypot(right, forward) < DIRECTION_MIN_HORIZONTAL_M:
        return None
    angle = math.degrees(math.atan2(right, forward))
    if abs((angle - 15.0) % 30.0 - 15.0) > 15.0 - DIRECTION_BOUNDARY_DEG:
        return None
    return Fact(family, "direction", "direction", (a, b), rel.clock_direction(a.box, b.box))


# family -> (number of objects, fact maker)
FAMILIES: dict[str, tuple[int, Callable[[str, Sequence[Thing], np.random.Generator], Fact | None]]] = {
    **{family: (2, qualitative_fact) for family in QUALITATIVE_FAMILIES},
    **{family: (2, metric_fact) for family in PAIR_METRICS},
    **{family: (1, metric_fact) for family in SINGLE_METRICS},
    "direction": (2, direction_fact),
}
