"""Tests for sr_real_core.region3d: robustness of the region-to-3D lift, and the tabletop ground truth.

Tolerances (centre error, Euclidean): 1.5 cm with a mask and 2 cm with a tight box on the bundled
noise-free tabletop scene; 1 mm on fronto-parallel synthetic planes, where the exact answer is known.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sr_real_core import relations
from sr_real_core.geometry import TUM_DEPTH_UNIT, DepthFormatError, Intrinsics, load_depth, load_nyu_raw_depth
from sr_real_core.region3d import Lifted3D, RegionLiftError, lift_region

REPO = Path(__file__).resolve().parents[1]
TABLETOP = REPO / "examples" / "tabletop"
OTHER_FORMATS = REPO.parent / "shared" / "data" / "rgbd" / "open3d_test_data" / "RGBD" / "other_formats"
needs_rgbd = pytest.mark.skipif(not OTHER_FORMATS.is_dir(), reason=f"shared data absent: {OTHER_FORMATS}")

KINECT = Intrinsics(fx=525.0, fy=525.0, cx=319.5, cy=239.5, width=640, height=480)
WALL, NEAR = 3.0, 1.0
# A 100 x 100 px "mug" (fronto-parallel) at 1 m in front of a wall at 3 m.
MUG_ROWS, MUG_COLS = slice(200, 300), slice(270, 370)


def mug_scene() -> np.ndarray:
    depth = np.full((480, 640), WALL, np.float32)
    depth[MUG_ROWS, MUG_COLS] = NEAR
    return depth


def expected_mug_center(intrinsics: Intrinsics = KINECT) -> np.ndarray:
    corners = intrinsics.backproject([270, 369], [200, 299], NEAR)
    return corners.mean(axis=0)


def assert_close(actual: np.ndarray, expected: np.ndarray, tolerance: float) -> None:
    error = float(np.linalg.norm(np.asarray(actual) - np.asarray(expected)))
    assert error <= tolerance, f"centre error {error:.4f} m > {tolerance} m: {actual} vs {expected}"


# --- Robustness ------------------------------------------------------------------------------------


def test_wall_behind_the_object_is_ignored():
    # The box is 40% wall; the mug still wins as the nearest well-supported surface.
    lifted = lift_region(mug_scene(), KINECT, box=[250, 180, 390, 320])
    assert_close(lifted.center, expected_mug_center(), 1e-3)
    np.testing.assert_allclose(lifted.size, [99 * 0.98 / 525, 99 * 0.98 / 525, 0.0], atol=2e-3)


def test_thin_object_centred_in_a_mostly_wall_box():
    depth = np.full((480, 640), WALL, np.float32)
    depth[150:350, 305:335] = NEAR  # a 30 px pole filling 30% of a 100 px wide box
    lifted = lift_region(depth, KINECT, box=[270, 150, 370, 350])
    assert lifted.center[2] == pytest.approx(NEAR, abs=1e-3)


def test_small_occluder_does_not_win():
    depth = mug_scene()
    depth[200:215, 270:285] = 0.5  # a corner of something nearer, 2% of the box
    lifted = lift_region(depth, KINECT, box=[270, 200, 370, 300])
    assert_close(lifted.center, expected_mug_center(), 2e-3)


def test_flying_pixels_do_not_bridge_object_and_wall():
    depth = mug_scene()
    ramp = np.linspace(NEAR, WALL, 12)[1:-1]
    depth[MUG_ROWS, 370:380] = ramp[None, :]  # mixed depths smeared off the mug's right edge
    depth[MUG_ROWS, 260:270] = ramp[None, ::-1]
    lifted = lift_region(depth, KINECT, box=[240, 180, 400, 320])
    assert_close(lifted.center, expected_mug_center(), 1e-3)


def test_half_invalid_depth_gives_the_same_answer():
    depth = mug_scene()
    rng = np.random.default_rng(7)
    holes = rng.random(depth.shape)
    depth[holes < 0.25] = np.nan
    depth[(holes >= 0.25) & (holes < 0.5)] = 0.0
    lifted = lift_region(depth, KINECT, box=[250, 180, 390, 320])
    assert_close(lifted.center, expected_mug_center(), 5e-3)
    assert 0.4 * 100 * 100 < lifted.n_points < 0.6 * 100 * 100


@pytest.mark.parametrize("box", [[300.2, 250.1, 300.9, 250.8], [300, 250, 303, 253]])
def test_tiny_boxes(box):
    lifted = lift_region(mug_scene(), KINECT, box=box)
    columns = np.arange(int(box[0]), int(np.ceil(box[2])))
    rows = np.arange(int(box[1]), int(np.ceil(box[3])))
    expected = KINECT.backproject(columns.mean(), rows.mean(), NEAR)
    assert_close(lifted.center, expected, 1e-6)
    assert lifted.n_points == columns.size * rows.size


def test_all_invalid_and_too_few_points():
    depth = mug_scene()
    depth[MUG_ROWS, MUG_COLS] = np.nan
    with pytest.raises(RegionLiftError, match=r"box \[280, 210, 300, 230\]: 0 valid depth pixels"):
        lift_region(depth, KINECT, box=[280, 210, 300, 230])
    with pytest.raises(RegionLiftError, match="need at least 500"):
        lift_region(mug_scene(), KINECT, box=[280, 210, 300, 230], min_points=500)


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ([700, 10, 800, 50], "lies outside the 640x480 image"),
        ([-50, -50, -1, -1], "lies outside"),
        ([10, 10, 10, 50], "zero or negative area"),
        ([10, 50, 20, 40], "zero or negative area"),
        ([10, 10, 20], "4 finite numbers"),
        ([10, 10, float("nan"), 20], "4 finite numbers"),
    ],
)
def test_bad_boxes_are_named(box, message):
    with pytest.raises(RegionLiftError, match=message) as error:
        lift_region(mug_scene(), KINECT, box=box)
    assert "box [" in str(error.value)


def test_box_is_clipped_to_the_image():
    depth = np.full((480, 640), 2.0, np.float32)
    lifted = lift_region(depth, KINECT, box=[-100, -100, 10, 10])
    assert lifted.n_points == 100


def test_wrong_depth_shape_names_both_shapes():
    with pytest.raises(DepthFormatError, match=r"\(240, 320\).*\(480, 640\)"):
        lift_region(np.ones((240, 320)), KINECT, box=[0, 0, 10, 10])


def test_mask_alone_with_box_and_errors():
    mask = np.zeros((480, 640), bool)
    mask[MUG_ROWS, MUG_COLS] = True
    assert_close(lift_region(mug_scene(), KINECT, mask=mask).center, expected_mug_center(), 1e-6)
    # Intersection: the left half of the mug.
    left_half = lift_region(mug_scene(), KINECT, box=[0, 0, 320, 480], mask=mask)
    expected = KINECT.backproject([270, 319], [200, 299], NEAR).mean(axis=0)
    assert_close(left_half.center, expected, 1e-6)
    with pytest.raises(RegionLiftError, match=r"mask shape \(10, 10\)"):
        lift_region(mug_scene(), KINECT, mask=np.ones((10, 10), bool))
    with pytest.raises(RegionLiftError, match="selects no pixels"):
        lift_region(mug_scene(), KINECT, mask=np.zeros((480, 640), bool))
    with pytest.raises(RegionLiftError, match="give a box, a mask or both"):
        lift_region(mug_scene(), KINECT)


def test_distorted_camera_uses_undistorted_rays():
    # TurtleBot3 Raspberry Pi camera: strong barrel distortion. An object near the image corner.
    camera = Intrinsics(
        164.595714370777, 165.5485348916819, 155.7296974048595, 108.2763701447475, 320, 240,
        distortion_model="plumb_bob",
        distortion=(-0.2909375306628219, 0.05890305811963341, 0.002023707366213156, 0.002460957243230047, 0.0),
    )  # fmt: skip
    v, u = np.mgrid[0:240, 0:320].astype(float)
    ideal = camera.undistort_pixels(np.stack([u, v], axis=-1))
    rays = camera.backproject(ideal[..., 0], ideal[..., 1], 1.0)
    on_object = (rays[..., 0] > -0.75) & (rays[..., 0] < -0.55) & (rays[..., 1] > -0.55) & (rays[..., 1] < -0.35)
    depth = np.where(on_object, NEAR, WALL).astype(np.float32)
    rows, cols = np.nonzero(on_object)
    box = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    lifted = lift_region(depth, camera, box=box)
    assert_close(lifted.center, [-0.65, -0.45, NEAR], 0.01)
    pinhole = Intrinsics(camera.fx, camera.fy, camera.cx, camera.cy, 320, 240)
    assert np.linalg.norm(lift_region(depth, pinhole, box=box).center - [-0.65, -0.45, NEAR]) > 0.05


@settings(max_examples=25, deadline=None)
@given(
    depth_m=st.floats(0.4, 6.0),
    left=st.integers(0, 500),
    top=st.integers(0, 350),
    box_size=st.tuples(st.integers(1, 120), st.integers(1, 120)),
    invalid_fraction=st.floats(0.0, 0.6),
    seed=st.integers(0, 2**16),
)
def test_fronto_parallel_patch_is_recovered(depth_m, left, top, box_size, invalid_fraction, seed):
    width, height = box_size
    depth = np.full((480, 640), depth_m * 2.5, np.float32)  # background far behind
    depth[top : top + height, left : left + width] = depth_m
    holes = np.random.default_rng(seed).random((height, width)) < invalid_fraction
    depth[top : top + height, left : left + width][holes] = np.nan
    if holes.all():
        with pytest.raises(RegionLiftError):
            lift_region(depth, KINECT, box=[left, top, left + width, top + height])
        return
    margin_x, margin_y = width // 4, height // 4  # a loose box: background all around the patch
    box = [left - margin_x, top - margin_y, left + width + margin_x, top + height + margin_y]
    lifted = lift_region(depth, KINECT, box=box)
    assert lifted.center[2] == pytest.approx(depth_m, rel=1e-5)
    # Within a pixel (plus 2% of the patch, from the percentile trimming) of the valid pixels' middle.
    rows, cols = np.nonzero(~holes)
    expected = KINECT.backproject((cols.min() + cols.max()) / 2 + left, (rows.min() + rows.max()) / 2 + top, depth_m)
    pixel_at_depth = depth_m / KINECT.fx
    assert np.abs(lifted.center[:2] - expected[:2]).max() <= (0.02 * max(width, height) + 1) * pixel_at_depth


def test_to_dict_is_plain_and_rounded():
    lifted = Lifted3D(center=np.array([0.123456, -1.0, 2.0]), size=np.array([0.5, 0.25, 0.0]), n_points=np.int64(7))
    record = lifted.to_dict()
    assert record == {"center_3d": [0.1235, -1.0, 2.0], "size_3d": [0.5, 0.25, 0.0], "n_points": 7}
    assert all(type(value) is float for value in record["center_3d"] + record["size_3d"])
    json.dumps(record)


def test_speed_640x480_with_200x200_box():
    depth = mug_scene()
    lift_region(depth, KINECT, box=[220, 140, 420, 340])  # builds the cached pixel grid
    timings = []
    for _ in range(15):
        start = time.perf_counter()
        lift_region(depth, KINECT, box=[220, 140, 420, 340], up=(0.0, -0.9, -0.3))
        timings.append(time.perf_counter() - start)
    # About 3 ms on a 2-core CI machine; the bound only catches order-of-magnitude regressions.
    assert float(np.median(timings)) < 0.02


# --- Real frames ------------------------------------------------------------------------------------


@needs_rgbd
def test_real_frames_lift_to_finite_centres():
    tum = Intrinsics(517.306408, 516.469215, 318.643040, 255.313989, 640, 480)  # TUM fr1 (PROVENANCE)
    dice = lift_region(load_depth(OTHER_FORMATS / "TUM_depth.png", TUM_DEPTH_UNIT), tum, box=[124, 192, 172, 244])
    assert np.all(np.isfinite(dice.center)) and 1.8 < dice.center[2] < 2.4 and dice.n_points > 500
    assert np.all(dice.size < 0.5)
    nyu = lift_region(load_nyu_raw_depth(OTHER_FORMATS / "NYU_depth.pgm"), KINECT, box=[250, 180, 390, 320])
    assert np.all(np.isfinite(nyu.center)) and 1.0 < nyu.center[2] < 6.0


# --- Bundled tabletop scene with exact ground truth -------------------------------------------------


def tabletop():
    record = json.loads((TABLETOP / "scenes.jsonl").read_text())
    depth = load_depth(TABLETOP / record["depth"], record["depth_unit"])
    return record, depth, Intrinsics.from_dict(record["intrinsics"])


def test_tabletop_centres_from_masks_and_boxes():
    record, depth, intrinsics = tabletop()
    for obj in record["objects"]:
        mask = cv2.imread(str(TABLETOP / obj["mask"]), cv2.IMREAD_GRAYSCALE) > 0
        from_mask = lift_region(depth, intrinsics, mask=mask, up=record["up"])
        from_box = lift_region(depth, intrinsics, box=obj["bbox_2d"], up=record["up"])
        assert_close(from_mask.center, obj["center_3d"], 0.015)
        assert_close(from_box.center, obj["center_3d"], 0.02)
        np.testing.assert_allclose(from_mask.size, obj["size_3d"], atol=0.04)


def test_tabletop_with_sensor_noise_and_holes():
    record, depth, intrinsics = tabletop()
    rng = np.random.default_rng(5)
    # Structured-light-like noise (sigma = 0.3% of z^2: 1.2 cm at 2 m), millimetre quantisation, 40% holes.
    noisy = np.round((depth + rng.normal(size=depth.shape) * 0.003 * depth**2) * 1000) / 1000
    noisy[rng.random(depth.shape) < 0.4] = np.nan
    for obj in record["objects"]:
        lifted = lift_region(noisy, intrinsics, box=obj["bbox_2d"], up=record["up"])
        assert_close(lifted.center, obj["center_3d"], 0.05)


def test_tabletop_with_flying_pixels_at_depth_edges():
    record, depth, intrinsics = tabletop()
    # Half of the pixels at each horizontal depth jump get a random mix of the two surfaces' depths.
    rows, cols = np.nonzero(np.abs(np.diff(depth, axis=1)) > 0.1)
    rng = np.random.default_rng(3)
    chosen = rng.random(rows.size) < 0.5
    rows, cols, mix = rows[chosen], cols[chosen], rng.random(chosen.sum())
    smeared = depth.copy()
    smeared[rows, cols] = mix * depth[rows, cols] + (1 - mix) * depth[rows, cols + 1]
    for obj in record["objects"]:
        lifted = lift_region(smeared, intrinsics, box=obj["bbox_2d"], up=record["up"])
        assert_close(lifted.center, obj["center_3d"], 0.02)


def test_tabletop_relations_from_lifted_centres_match_the_truth():
    record, depth, intrinsics = tabletop()
    up = record["up"]
    truth = [relations.as_box(obj) for obj in record["objects"]]
    lifted = [lift_region(depth, intrinsics, box=obj["bbox_2d"], up=up) for obj in record["objects"]]
    predicates = [relations.is_left_of, relations.is_above, relations.is_behind, relations.is_taller]
    for i, j in itertools.permutations(range(len(truth)), 2):
        for predicate in predicates:
            assert predicate(lifted[i], lifted[j], up=up) == predicate(truth[i], truth[j], up=up), predicate.__name__
        assert relations.clock_direction(lifted[i], lifted[j], up=up) == relations.clock_direction(
            truth[i], truth[j], up=up
        )
        for measure in (relations.distance, relations.horizontal_distance, relations.vertical_distance):
            assert measure(lifted[i], lifted[j], up=up) == pytest.approx(measure(truth[i], truth[j], up=up), abs=0.03)
