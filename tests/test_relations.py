"""Tests for sr_real_core.relations: worked examples, the gravity frame, and exact symmetry properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sr_real_core import relations as rel
from sr_real_core.geometry import gravity_frame
from sr_real_core.region3d import Lifted3D
from sr_real_core.relations import Box3D

UNIT = (0.2, 0.2, 0.2)
A = Box3D((0.0, 0.0, 2.0), UNIT)
PITCH_DOWN_30 = (0.0, -math.cos(math.radians(30)), -math.sin(math.radians(30)))


def at(x: float, y: float, z: float, size=UNIT, yaw: float = 0.0) -> Box3D:
    return Box3D((x, y, z), size, yaw)


def test_worked_predicates_level_camera():
    right, lower, farther = at(1.0, 0.0, 2.0), at(0.0, 0.5, 2.0), at(0.0, 0.0, 3.0)
    assert rel.is_left_of(A, right) and rel.is_right_of(right, A) and not rel.is_left_of(right, A)
    assert rel.is_above(A, lower) and rel.is_below(lower, A)  # +y is down
    assert rel.is_behind(farther, A) and rel.is_in_front_of(A, farther)
    tie = at(0.0, 0.0, 2.0)
    assert not (rel.is_left_of(A, tie) or rel.is_right_of(A, tie) or rel.is_above(A, tie) or rel.is_behind(A, tie))


def test_worked_measures():
    b = at(0.3, -0.4, 2.0 + 1.2)
    assert rel.distance(A, b) == pytest.approx(math.sqrt(0.09 + 0.16 + 1.44))
    assert rel.horizontal_distance(A, b) == pytest.approx(math.hypot(0.3, 1.2))
    assert rel.vertical_distance(A, b) == pytest.approx(0.4)
    box = at(0, 0, 2, size=(0.5, 0.8, 0.3))
    assert (rel.width(box), rel.height(box), rel.volume(box)) == pytest.approx((0.5, 0.8, 0.12))
    turned = at(0, 0, 2, size=(0.5, 0.8, 0.3), yaw=math.pi / 2)
    assert rel.width(turned) == pytest.approx(0.3)  # the footprint's depth now faces the camera
    diagonal = at(0, 0, 2, size=(0.4, 0.8, 0.4), yaw=math.pi / 4)
    assert rel.width(diagonal) == pytest.approx(0.4 * math.sqrt(2))
    assert rel.is_taller(box, A) and rel.is_shorter(A, box) and rel.is_wider(box, A) and rel.is_thinner(A, box)
    assert rel.is_bigger(box, A) and rel.is_smaller(A, box)


@pytest.mark.parametrize(
    ("offset", "hour"),
    [((0, 0, 1), 12), ((1, 0, 0), 3), ((0, 0, -1), 6), ((-1, 0, 0), 9), ((1, 0, 1), 2), ((-0.5, 0, 1), 11),
     ((math.sin(math.radians(120)), 0, math.cos(math.radians(120))), 4), ((0.2, 5.0, -1), 6)],
)  # fmt: skip
def test_clock_hours_level_camera(offset, hour):
    b = at(*(np.array(A.center) + offset))
    assert rel.clock_direction(A, b) == hour


def test_clock_straight_above_has_no_direction():
    with pytest.raises(ValueError, match="straight above or below"):
        rel.clock_direction(A, at(0.0, -1.0, 2.0))


def in_pitched_camera(x_right: float, height: float, forward: float, size=UNIT) -> Box3D:
    """An object given in gravity coordinates (right, height above the camera, horizontal forward),
    expressed in the frame of a camera pitched 30 degrees down."""
    gravity = np.array([x_right, -height, forward])
    return Box3D(gravity_frame(PITCH_DOWN_30).T @ gravity, size)


def test_pitched_camera_uses_gravity_not_image_axes():
    near_box = in_pitched_camera(0.0, -0.9, 1.2)  # 30 cm above the floor (camera at 1.2 m)
    far_floor = in_pitched_camera(0.0, -1.2, 3.0)
    # The far floor point has the smaller camera y (it is higher in the image) ...
    assert far_floor.center[1] < near_box.center[1]
    # ... but along gravity the near box is 30 cm above it, and the floor point is behind.
    assert rel.is_above(near_box, far_floor, up=PITCH_DOWN_30)
    assert rel.vertical_distance(near_box, far_floor, up=PITCH_DOWN_30) == pytest.approx(0.3)
    assert rel.horizontal_distance(near_box, far_floor, up=PITCH_DOWN_30) == pytest.approx(1.8)
    assert rel.is_behind(far_floor, near_box, up=PITCH_DOWN_30)
    assert rel.clock_direction(near_box, far_floor, up=PITCH_DOWN_30) == 12
    same_height = in_pitched_camera(0.0, -1.2, 1.5)
    assert rel.vertical_distance(same_height, far_floor, up=PITCH_DOWN_30) == pytest.approx(0.0, abs=1e-12)
    lamp = in_pitched_camera(-0.5, 0.3, 3.0)
    assert rel.is_above(lamp, far_floor, up=PITCH_DOWN_30) and rel.is_left_of(lamp, far_floor, up=PITCH_DOWN_30)
    assert rel.vertical_distance(lamp, far_floor, up=PITCH_DOWN_30) == pytest.approx(1.5)
    assert rel.clock_direction(far_floor, lamp, up=PITCH_DOWN_30) == 9


def test_accepts_lifted_regions_scene_objects_and_dicts():
    lifted = Lifted3D(center=np.array([0.5, 0.0, 2.0]), size=np.array([0.1, 0.2, 0.1]), n_points=10)
    record = {"name": "mug", "center_3d": [-0.5, 0.0, 2.0], "size_3d": [0.1, 0.1, 0.1], "yaw": 0.0}
    assert rel.is_right_of(lifted, record, up=None) and rel.is_taller(lifted, record)
    assert rel.distance(lifted, record) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="center and size"):
        rel.as_box({"name": "no geometry"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"center": (0, 0), "size": UNIT}, "center"),
        ({"center": (0, 0, float("nan")), "size": UNIT}, "center"),
        ({"center": (0, 0, 1), "size": (0.1, -0.1, 0.1)}, "non-negative"),
        ({"center": (0, 0, 1), "size": UNIT, "yaw": float("inf")}, "yaw"),
    ],
)
def test_box_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Box3D(**kwargs)


coordinate = st.floats(-5.0, 5.0, allow_nan=False)
extent = st.floats(0.0, 2.0, allow_nan=False)
boxes = st.builds(
    Box3D,
    center=st.tuples(coordinate, coordinate, st.floats(0.1, 10.0)),
    size=st.tuples(extent, extent, extent),
    yaw=st.floats(-math.pi, math.pi),
)
ups = st.sampled_from([(0.0, -1.0, 0.0), PITCH_DOWN_30, (0.1, -0.9, 0.35), (-0.3, -1.0, -0.6)])
PAIRS = [
    (rel.is_left_of, rel.is_right_of),
    (rel.is_above, rel.is_below),
    (rel.is_behind, rel.is_in_front_of),
    (rel.is_wider, rel.is_thinner),
    (rel.is_taller, rel.is_shorter),
    (rel.is_bigger, rel.is_smaller),
]


@settings(max_examples=60, deadline=None)
@given(a=boxes, b=boxes, up=ups)
def test_relations_are_exactly_symmetric(a, b, up):
    for relation, converse in PAIRS:
        assert relation(a, b, up=up) == converse(b, a, up=up)
        assert not (relation(a, b, up=up) and relation(b, a, up=up))  # antisymmetric: ties are neither
    for measure in (rel.distance, rel.horizontal_distance, rel.vertical_distance):
        assert measure(a, b, up=up) == measure(b, a, up=up)
        assert measure(a, b, up=up) >= 0.0


@settings(max_examples=60, deadline=None)
@given(a=boxes, b=boxes, up=ups)
def test_clock_directions_are_opposite(a, b, up):
    assume(rel.horizontal_distance(a, b, up=up) > 1e-6)
    forward, backward = rel.clock_direction(a, b, up=up), rel.clock_direction(b, a, up=up)
    assert 1 <= forward <= 12 and (forward - backward) % 12 == 6


@settings(max_examples=40, deadline=None)
@given(hour=st.integers(1, 12), jitter=st.floats(-14.0, 14.0), radius=st.floats(0.05, 5.0), up=ups)
def test_clock_direction_matches_the_bearing(hour, jitter, radius, up):
    bearing = math.radians(hour * 30 + jitter)  # clockwise from straight ahead, seen from above
    origin = np.array([0.3, -0.2, 2.5])
    frame = gravity_frame(up)
    offset = radius * (math.sin(bearing) * frame[0] + math.cos(bearing) * frame[2]) + 0.7 * frame[1]
    assert rel.clock_direction(Box3D(origin, UNIT), Box3D(origin + offset, UNIT), up=up) == hour


def test_clock_symmetry_on_half_hour_boundaries():
    # 45 degrees sits exactly between 1 and 2 o'clock; reversing A and B must still give 6 hours apart.
    for dx, dz in [(1.0, 1.0), (-1.0, 1.0), (1.0, -1.0), (math.sin(math.radians(15)), math.cos(math.radians(15)))]:
        b = at(dx, 0.0, 2.0 + dz)
        assert (rel.clock_direction(A, b) - rel.clock_direction(b, A)) % 12 == 6
