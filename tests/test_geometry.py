"""Tests for sr_real_core.geometry: intrinsics, camera_info loading, projection, undistortion, depth."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sr_real_core.geometry import (
    TUM_DEPTH_UNIT,
    CalibrationError,
    DepthFormatError,
    Intrinsics,
    decode_depth,
    decode_nyu_disparity,
    decode_sun_rgbd_depth,
    depth_to_points,
    gravity_frame,
    load_camera_info_yaml,
    load_depth,
    load_nyu_raw_depth,
    normalized_pixel_grid,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAMERA_INFO = SHARED / "camera_info"
RGBD = SHARED / "rgbd" / "open3d_test_data"
needs_camera_info = pytest.mark.skipif(not CAMERA_INFO.is_dir(), reason=f"shared data absent: {CAMERA_INFO}")
needs_rgbd = pytest.mark.skipif(not RGBD.is_dir(), reason=f"shared data absent: {RGBD}")

PROPERTY = settings(max_examples=40, deadline=None)
SIMPLE = Intrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480)
# Real calibrations from the shared camera_info files.
PLUMB_BOB = Intrinsics(
    606.275149, 607.596274, 329.258169, 236.888545, 640, 480,
    distortion_model="plumb_bob", distortion=(0.147967, -0.284919, 0.000827, -0.002587, 0.0),
)  # fmt: skip
EQUIDISTANT = Intrinsics(
    638.0064, 638.9817, 633.75963, 369.88374, 1280, 720, skew=1.0591,
    distortion_model="equidistant", distortion=(-0.019592, -0.056248, 0.075002, -0.043589),
)  # fmt: skip
RATIONAL = Intrinsics(
    600.0, 600.0, 320.0, 240.0, 640, 480,
    distortion_model="rational_polynomial", distortion=(0.1, -0.05, 0.001, -0.002, 0.01, 0.02, -0.01, 0.005),
)  # fmt: skip


# --- Intrinsics construction and validation -------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"fx": -1.0}, "fx"),
        ({"fy": 0.0}, "fy"),
        ({"cx": float("nan")}, "cx"),
        ({"cy": float("inf")}, "cy"),
        ({"width": 0}, "width"),
        ({"height": 480.5}, "height"),
        ({"fx": True}, "fx"),
        ({"skew": "1"}, "skew"),
        ({"distortion_model": "kannala"}, "distortion_model"),
        ({"distortion_model": "plumb_bob", "distortion": (0.1, 0.2, 0.0)}, "distortion"),
        ({"distortion": (0.1, 0.0, 0.0, 0.0, 0.0)}, "distortion"),
    ],
)
def test_invalid_intrinsics_name_the_field(changes, field):
    values = {"fx": 500.0, "fy": 500.0, "cx": 320.0, "cy": 240.0, "width": 640, "height": 480} | changes
    with pytest.raises(CalibrationError, match=rf"^{field}: "):
        Intrinsics(**values)


def test_matrix_forms_agree_and_K_round_trips():
    nested = [[500.0, 0.5, 320.0], [0.0, 510.0, 240.0], [0.0, 0.0, 1.0]]
    flat = [value for row in nested for value in row]
    from_nested = Intrinsics.from_matrix(nested, 640, 480)
    assert from_nested == Intrinsics.from_matrix(flat, 640, 480) == Intrinsics.from_matrix(np.array(nested), 640, 480)
    assert (from_nested.fx, from_nested.fy, from_nested.cx, from_nested.cy, from_nested.skew) == (
        500.0, 510.0, 320.0, 240.0, 0.5,
    )  # fmt: skip
    np.testing.assert_array_equal(from_nested.K, nested)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([0.0] * 9, "uncalibrated"),
        ([500, 0, 320, 0, 500, 240, 0, 0], "9 numbers"),
        ([500, 0, 320, 1, 500, 240, 0, 0, 1], r"\[\[fx, skew, cx\]"),
    ],
)
def test_bad_camera_matrix(matrix, message):
    with pytest.raises(CalibrationError, match=message):
        Intrinsics.from_matrix(matrix, 640, 480)


@needs_rgbd
def test_open3d_column_major_intrinsic_matrix():
    record = json.loads((RGBD / "camera_primesense.json").read_text())
    column_major = np.reshape(record["intrinsic_matrix"], (3, 3))
    with pytest.raises(CalibrationError):  # read row-major by mistake, the last row is not [0, 0, 1]
        Intrinsics.from_matrix(column_major, record["width"], record["height"])
    intrinsics = Intrinsics.from_matrix(column_major.T, record["width"], record["height"])
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (525.0, 525.0, 319.5, 239.5)


def test_dict_round_trip_and_errors():
    for intrinsics in (SIMPLE, PLUMB_BOB, EQUIDISTANT):
        assert Intrinsics.from_dict(json.loads(json.dumps(intrinsics.to_dict()))) == intrinsics
    assert SIMPLE.to_dict() == {"fx": 500.0, "fy": 500.0, "cx": 320.0, "cy": 240.0, "width": 640, "height": 480}
    with pytest.raises(CalibrationError, match="^cy: missing"):
        Intrinsics.from_dict({"fx": 1, "fy": 1, "cx": 1, "width": 2, "height": 2})
    with pytest.raises(CalibrationError, match="^focal: unknown field"):
        Intrinsics.from_dict(SIMPLE.to_dict() | {"focal": 3})


def test_zero_distortion_means_none_and_fisheye_alias():
    zero = Intrinsics(500, 500, 320, 240, 640, 480, distortion_model="plumb_bob", distortion=(0.0,) * 5)
    assert zero.distortion_model == "none" and zero.distortion == () and not zero.has_distortion
    fisheye = Intrinsics(500, 500, 320, 240, 640, 480, distortion_model="fisheye", distortion=(0.1, 0, 0, 0))
    assert fisheye.distortion_model == "equidistant"


# --- ROS camera_info -------------------------------------------------------------------------------

ROS2_INFO = {
    "width": 640,
    "height": 480,
    "distortion_model": "plumb_bob",
    "d": [-0.361976, 0.110510, 0.001014, 0.000505, 0.0],
    "k": [438.783367, 0.0, 305.593336, 0.0, 437.302876, 243.738352, 0.0, 0.0, 1.0],
    "r": [0.999978, 0.002789, -0.006046, -0.002816, 0.999986, -0.004401, 0.006034, 0.004417, 0.999972],
    "p": [393.6538, 0.0, 322.797939, 0.0, 0.0, 393.6538, 241.090902, 0.0, 0.0, 0.0, 1.0, 0.0],
    "binning_x": 0,
    "binning_y": 0,
    "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False},
}


def test_camera_info_mapping_and_message_objects_agree():
    from_dict = Intrinsics.from_camera_info(ROS2_INFO)
    assert (from_dict.fx, from_dict.cy, from_dict.distortion_model) == (438.783367, 243.738352, "plumb_bob")
    # rosbags / rclpy style: attributes holding numpy arrays; ROS 1 style: uppercase names.
    ros2_message = SimpleNamespace(**{k: np.asarray(v) if isinstance(v, list) else v for k, v in ROS2_INFO.items()})
    ros2_message.roi = SimpleNamespace(**ROS2_INFO["roi"])
    ros1_message = SimpleNamespace(
        width=640, height=480, distortion_model="plumb_bob",
        D=tuple(ROS2_INFO["d"]), K=tuple(ROS2_INFO["k"]), R=tuple(ROS2_INFO["r"]), P=tuple(ROS2_INFO["p"]),
    )  # fmt: skip
    assert Intrinsics.from_camera_info(ros2_message) == from_dict == Intrinsics.from_camera_info(ros1_message)


def test_camera_info_rectified_uses_P_without_distortion():
    rectified = Intrinsics.from_camera_info(ROS2_INFO, rectified=True)
    assert (rectified.fx, rectified.fy, rectified.cx, rectified.cy) == (393.6538, 393.6538, 322.797939, 241.090902)
    assert not rectified.has_distortion


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"binning_x": 2}, "binning_x"),
        ({"roi": {"x_offset": 10, "y_offset": 0, "height": 100, "width": 100}}, "roi"),
        ({"k": [0.0] * 9}, "uncalibrated"),
        ({"width": None}, "width"),
    ],
)
def test_camera_info_refusals(changes, message):
    info = {key: value for key, value in (ROS2_INFO | changes).items() if value is not None}
    with pytest.raises(CalibrationError, match=message):
        Intrinsics.from_camera_info(info)


# (file name prefix, expected fx, model, skew) for the real ost.yaml files; JeyP4 files are ROS 2 params.
REAL_YAMLS = {
    "ADVRHumanoids": (416.65053, "plumb_bob", 0.0),
    "CircuitLaunch": (540.41493, "plumb_bob", 0.0),
    "Gunreben": (638.0064, "equidistant", 1.0591),
    "ROBOTIS-GIT": (164.595714370777, "plumb_bob", 0.0),
    "SHARATHbhushan": (613.287086, "plumb_bob", 0.0),
    "iit-DLSLab": (606.275149, "plumb_bob", 0.0),
    "ros-drivers": (438.783367, "plumb_bob", 0.0),
}


@needs_camera_info
def test_all_real_camera_info_yamls():
    paths = sorted(CAMERA_INFO.glob("*.yaml"))
    assert len(paths) == 9
    for path in paths:
        owner = path.name.split("__")[0]
        if owner == "JeyP4":
            with pytest.raises(CalibrationError, match="not a ROS camera_info.*frontCamera"):
                load_camera_info_yaml(path)
            continue
        fx, model, skew = REAL_YAMLS[owner]
        intrinsics = load_camera_info_yaml(path)
        assert (intrinsics.fx, intrinsics.distortion_model, intrinsics.skew) == (fx, model, skew), path.name
        assert len(intrinsics.distortion) == (4 if model == "equidistant" else 5)
        rectified = load_camera_info_yaml(path, rectified=True)
        assert not rectified.has_distortion and (rectified.width, rectified.height) == (
            intrinsics.width, intrinsics.height,
        )  # fmt: skip
    usb_cam = load_camera_info_yaml(CAMERA_INFO / "ros-drivers__usb_cam__config_camera_info.yaml", rectified=True)
    assert usb_cam.fx == 393.6538 and usb_cam.cx == 322.797939


def test_camera_info_yaml_errors(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("camera_matrix: [1, 2\n")
    with pytest.raises(CalibrationError, match="not valid YAML"):
        load_camera_info_yaml(broken)
    no_width = tmp_path / "no_width.yaml"
    no_width.write_text("image_height: 480\ncamera_matrix: {rows: 3, cols: 3, data: [1, 0, 1, 0, 1, 1, 0, 0, 1]}\n")
    with pytest.raises(CalibrationError, match="image_width: missing"):
        load_camera_info_yaml(no_width)
    short = tmp_path / "short.yaml"
    short.write_text("image_width: 4\nimage_height: 4\ncamera_matrix: {rows: 3, cols: 3, data: [1, 0, 1, 0, 1]}\n")
    with pytest.raises(CalibrationError, match=r"camera_matrix\.data: expected 9 numbers"):
        load_camera_info_yaml(short)


# --- Scaling, projection, back-projection -----------------------------------------------------------


def test_scaled_keeps_pixel_edges():
    half = SIMPLE.scaled(320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (250.0, 250.0, 159.75, 119.75)
    point = np.array([[0.3, -0.1, 2.0]])
    # A pixel coordinate u maps to (u + 0.5) * s - 0.5 under cv2.resize's pixel-area alignment.
    np.testing.assert_allclose(half.project(point), (SIMPLE.project(point) + 0.5) * 0.5 - 0.5)
    with pytest.raises(CalibrationError, match="new_width"):
        SIMPLE.scaled(0, 240)


def test_project_and_backproject_worked_numbers():
    np.testing.assert_allclose(SIMPLE.project([[0.1, -0.2, 2.0]]), [[345.0, 190.0]])
    np.testing.assert_allclose(SIMPLE.backproject(345.0, 190.0, 2.0), [0.1, -0.2, 2.0])
    behind = SIMPLE.project([[0.1, 0.1, -1.0], [0.0, 0.0, 0.0]])
    assert np.isnan(behind).all()
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        SIMPLE.project([1.0, 2.0])


finite = st.floats(-1.0, 1.0)


@PROPERTY
@given(x=finite, y=finite, z=st.floats(0.1, 20.0), skew=st.floats(-2.0, 2.0))
def test_backproject_inverts_project(x, y, z, skew):
    intrinsics = Intrinsics(520.0, 515.0, 318.0, 250.0, 640, 480, skew=skew)
    point = np.array([[x * z, y * z, z]])
    uv = intrinsics.project(point)
    np.testing.assert_allclose(intrinsics.backproject(uv[:, 0], uv[:, 1], z), point, atol=1e-9)


def _distort(intrinsics: Intrinsics, normalized: np.ndarray) -> np.ndarray:
    """Raw pixels of ideal normalized points, distorted by OpenCV's own projection functions."""
    points = np.concatenate([normalized, np.ones((len(normalized), 1))], axis=1).reshape(-1, 1, 3)
    coefficients = np.asarray(intrinsics.distortion)
    zero = np.zeros(3)
    if intrinsics.distortion_model == "equidistant":
        alpha = intrinsics.skew / intrinsics.fx
        pixels, _ = cv2.fisheye.projectPoints(points, zero, zero, intrinsics.K, coefficients, alpha=alpha)
    else:
        pixels, _ = cv2.projectPoints(points, zero, zero, intrinsics.K, coefficients)
    return pixels.reshape(-1, 2)


@PROPERTY
@given(
    model=st.sampled_from([PLUMB_BOB, EQUIDISTANT, RATIONAL]),
    normalized=st.lists(st.tuples(st.floats(-0.5, 0.5), st.floats(-0.4, 0.4)), min_size=1, max_size=8),
)
def test_undistort_inverts_opencv_distortion(model, normalized):
    ideal_normalized = np.array(normalized)
    raw = _distort(model, ideal_normalized)
    ideal_pixels = model.project(np.concatenate([ideal_normalized, np.ones((len(raw), 1))], axis=1))
    np.testing.assert_allclose(model.undistort_pixels(raw), ideal_pixels, atol=1e-4)


def test_undistortion_matters_and_grid_is_cached():
    corner = np.array([[20.0, 20.0]])
    assert np.linalg.norm(PLUMB_BOB.undistort_pixels(corner) - corner) > 5.0  # really corrects the corner
    np.testing.assert_array_equal(SIMPLE.undistort_pixels(corner), corner)
    grid = normalized_pixel_grid(PLUMB_BOB)
    assert grid.shape == (2, 480, 640) and not grid.flags.writeable
    assert normalized_pixel_grid(PLUMB_BOB) is grid
    ideal = PLUMB_BOB.undistort_pixels(corner)[0]
    expected = PLUMB_BOB.backproject(ideal[0], ideal[1], 1.0)[:2]
    np.testing.assert_allclose(grid[:, 20, 20], expected, rtol=1e-6)


# --- Depth ---------------------------------------------------------------------------------------------


def test_decode_depth_units_and_invalid_values():
    np.testing.assert_allclose(decode_depth(np.array([[1000, 2500]], np.uint16), 0.001), [[1.0, 2.5]])
    np.testing.assert_allclose(decode_depth(np.array([[5000]], np.uint16), TUM_DEPTH_UNIT), [[1.0]])
    metres = decode_depth(np.array([[1.5, 0.0, -1.0, np.nan, np.inf]], np.float32), 1.0)
    assert metres.dtype == np.float32 and metres[0, 0] == 1.5 and np.isnan(metres[0, 1:]).all()
    with pytest.raises(DepthFormatError, match="depth_unit"):
        decode_depth(np.ones((2, 2)), 0.0)
    with pytest.raises(DepthFormatError, match="2D numeric"):
        decode_depth(np.ones((2, 2, 3)), 1.0)


def test_load_depth_formats(tmp_path):
    raw = np.array([[0, 1000], [2000, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "depth.png"), raw)
    loaded = load_depth(tmp_path / "depth.png")
    assert np.isnan(loaded[0, 0]) and loaded[1, 0] == pytest.approx(2.0)
    assert load_depth(tmp_path / "depth.png", TUM_DEPTH_UNIT)[1, 0] == pytest.approx(0.4)
    np.save(tmp_path / "depth.npy", np.array([[1.25, 0.0]], np.float32))
    from_npy = load_depth(tmp_path / "depth.npy")
    assert from_npy[0, 0] == 1.25 and np.isnan(from_npy[0, 1])
    cv2.imwrite(str(tmp_path / "eight_bit.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(DepthFormatError, match="16-bit or float32.*uint8"):
        load_depth(tmp_path / "eight_bit.png")
    cv2.imwrite(str(tmp_path / "colour16.png"), np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(DepthFormatError, match="single-channel"):
        load_depth(tmp_path / "colour16.png")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        load_depth(tmp_path / "objects.npy")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DepthFormatError, match="cannot read"):
        load_depth(tmp_path / "text.png")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_depth(tmp_path / "missing.png")


def test_odd_dataset_decoders(tmp_path):
    millimetres = np.array([[1000, 0]], np.uint16)
    rotated = ((millimetres.astype(np.uint32) << 3) | (millimetres.astype(np.uint32) >> 13)) & 0xFFFF
    sun = decode_sun_rgbd_depth(rotated.astype(np.uint16))
    assert sun[0, 0] == pytest.approx(1.0) and np.isnan(sun[0, 1])
    nyu = decode_nyu_disparity(np.array([[741, 2047, 1100]], np.uint16))
    assert nyu[0, 0] == pytest.approx(351.3 / 351.5) and np.isnan(nyu[0, 1:]).all()
    pgm = tmp_path / "nyu.pgm"
    pgm.write_bytes(b"P5 2 1 65535\n" + np.array([741, 2047], "<u2").tobytes())
    loaded = load_nyu_raw_depth(pgm)
    assert loaded.shape == (1, 2) and loaded[0, 0] == pytest.approx(351.3 / 351.5) and np.isnan(loaded[0, 1])
    pgm.write_bytes(b"P2 2 1 65535\n1 2\n")
    with pytest.raises(DepthFormatError, match="P5"):
        load_nyu_raw_depth(pgm)


@needs_rgbd
@pytest.mark.parametrize(
    ("name", "expected_median"),
    [("TUM", 2.4), ("SUN", 2.7), ("NYU", 3.3)],
)
def test_real_frames_decode_to_plausible_metres(name, expected_median):
    folder = RGBD / "RGBD" / "other_formats"
    if name == "TUM":
        metres = load_depth(folder / "TUM_depth.png", TUM_DEPTH_UNIT)
    elif name == "SUN":
        metres = decode_sun_rgbd_depth(cv2.imread(str(folder / "SUN_depth.png"), cv2.IMREAD_UNCHANGED))
    else:
        metres = load_nyu_raw_depth(folder / "NYU_depth.pgm")
    assert metres.shape == (480, 640) and metres.dtype == np.float32
    assert np.isfinite(metres).mean() > 0.7
    assert abs(float(np.nanmedian(metres)) - expected_median) < 0.1
    assert np.nanmin(metres) > 0.3 and np.nanmax(metres) < 10.0


@needs_rgbd
def test_synthetic_rgbd_sequence_depth():
    metres = load_depth(RGBD / "RGBD" / "depth" / "00000.png")
    assert metres.shape == (480, 640) and 1.0 < float(np.nanmedian(metres)) < 3.0


def test_depth_to_points_worked_numbers_and_shape_check():
    depth = np.full((480, 640), 2.0, np.float32)
    depth[0, 0] = 0.0
    points = depth_to_points(depth, SIMPLE)
    assert points.shape == (480, 640, 3) and points.dtype == np.float32
    np.testing.assert_allclose(points[190, 345], [0.1, -0.2, 2.0], rtol=1e-6)
    assert np.isnan(points[0, 0]).all()
    with pytest.raises(DepthFormatError, match=r"\(240, 320\).*\(480, 640\)"):
        depth_to_points(np.ones((240, 320)), SIMPLE)


# --- Gravity frame ---------------------------------------------------------------------------------


def test_gravity_frame_default_and_pitched():
    np.testing.assert_array_equal(gravity_frame(), np.eye(3))
    np.testing.assert_array_equal(gravity_frame(None), np.eye(3))  # a scene record without "up"
    pitch = math.radians(30.0)
    up = (0.0, -math.cos(pitch), -math.sin(pitch))  # camera pitched 30 degrees down
    frame = gravity_frame(up)
    np.testing.assert_allclose(frame[1], -np.array(up))  # down
    np.testing.assert_allclose(frame[2], [0.0, -math.sin(pitch), math.cos(pitch)], atol=1e-12)  # forward
    np.testing.assert_allclose(frame[0], [1.0, 0.0, 0.0], atol=1e-12)
    for bad, message in [((0, 0, 0), "not all zero"), ((0, 0, 1), "parallel"), ((1, 2), "3 finite")]:
        with pytest.raises(ValueError, match=message):
            gravity_frame(bad)


@PROPERTY
@given(up=st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1)))
def test_gravity_frame_is_a_rotation(up):
    vector = np.array(up)
    if np.linalg.norm(vector) < 1e-3 or np.linalg.norm(vector[:2]) < 1e-2 * np.linalg.norm(vector):
        return  # degenerate: no up, or up along the optical axis
    frame = gravity_frame(up)
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(frame) == pytest.approx(1.0)
    assert frame[2] @ vector == pytest.approx(0.0, abs=1e-9)  # forward is horizontal
