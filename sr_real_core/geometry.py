"""Camera geometry: intrinsics, projection, undistortion, depth decoding and the gravity frame.

Conventions (the contract the rest of ``sr_real_core`` relies on):

- Camera frame is OpenCV's: +x right, +y down, +z forward. Metres everywhere.
- Pixel coordinates are ``(u, v) = (column, row)``; integer values are pixel *centres* (OpenCV).
- ``Intrinsics`` describes the image the pixels come from. ``K = [[fx, skew, cx], [0, fy, cy], [0, 0, 1]]``
  maps normalized coordinates ``(x/z, y/z)`` to pixels. Lens distortion acts on the normalized
  coordinates *before* K (OpenCV/ROS model; for ``equidistant`` the skew is OpenCV's ``alpha * fx``).
- ``project`` and ``backproject`` are the ideal pinhole. Pixels of a distorted (raw) image must go
  through ``undistort_pixels`` first; ``normalized_pixel_grid`` and ``depth_to_points`` do that.
- ROS CameraInfo: ``K`` + ``D`` describe the raw image (``image_raw``); ``P`` (with ``R``) describes the
  rectified image (``image_rect``). ``from_camera_info``/``load_camera_info_yaml`` use K + D by default;
  ``rectified=True`` uses ``P[:, :3]`` without distortion, for pixels/depth of the rectified image
  (3D points are then in the rectified camera frame, which is rotated by R from the raw one).
- Depth maps in memory are float32 metres with NaN wherever the sensor gave no valid value.
- Gravity: ``gravity_frame(up)`` gives the axes (right, down, forward) of the gravity-aligned frame, with
  forward = the camera's optical axis projected onto the horizontal plane. ``up`` defaults to ``-y``;
  every function taking ``up`` also accepts ``None`` for that default.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from numpy.typing import ArrayLike

DISTORTION_MODELS = ("none", "plumb_bob", "rational_polynomial", "equidistant")
# Names seen in the wild for the same models.
_DISTORTION_ALIASES = {"": "none", "pinhole": "none", "fisheye": "equidistant"}
# Coefficient counts OpenCV accepts: radial-tangential k1 k2 p1 p2 [k3 [k4 k5 k6 [s1..s4 [tx ty]]]].
_COEFFICIENT_COUNTS = {
    "plumb_bob": (4, 5, 8, 12, 14),
    "rational_polynomial": (8, 12, 14),
    "equidistant": (4,),
}
# Default undistortPoints stops after 5 iterations, too few for strong wide-angle lenses.
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)

DEFAULT_UP = (0.0, -1.0, 0.0)
PNG_DEPTH_UNIT = 0.001  # millimetres, the usual uint16 depth PNG
NPY_DEPTH_UNIT = 1.0  # float metres
TUM_DEPTH_UNIT = 1.0 / 5000.0
NYU_INVALID_DISPARITY = 2047


class CalibrationError(ValueError):
    """Invalid intrinsics or camera calibration; the message starts with the offending field."""


class DepthFormatError(ValueError):
    """A depth map that cannot be read or does not fit the camera."""


def _real(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CalibrationError(f"{field}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise CalibrationError(f"{field}: expected a finite number, got {number!r}")
    return number


def _positive_int(value: Any, field: str) -> int:
    number = _real(value, field)
    if number <= 0 or number != int(number):
        raise CalibrationError(f"{field}: expected a positive whole number of pixels, got {value!r}")
    return int(number)


def _matrix(values: Any, rows: int, cols: int, field: str) -> np.ndarray:
    """A rows x cols float matrix from a nested list, a flat row-major list or an array."""
    try:
        flat = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as error:
        raise CalibrationError(f"{field}: expected {rows}x{cols} numbers, got {values!r}") from error
    if flat.size != rows * cols:
        raise CalibrationError(f"{field}: expected {rows * cols} numbers ({rows}x{cols}), got {flat.size}")
    if not np.all(np.isfinite(flat)):
        raise CalibrationError(f"{field}: contains non-finite values {flat.tolist()}")
    return flat.reshape(rows, cols)


def _normalize_distortion(model: Any, coefficients: Any) -> tuple[str, tuple[float, ...]]:
    if not isinstance(model, str):
        raise CalibrationError(f"distortion_model: expected a string, got {model!r}")
    name = _DISTORTION_ALIASES.get(model.strip().lower(), model.strip().lower())
    if name not in DISTORTION_MODELS:
        raise CalibrationError(f"distortion_model: unknown model {model!r}; expected one of {DISTORTION_MODELS}")
    if isinstance(coefficients, (str, bytes)) or not isinstance(coefficients, (Sequence, np.ndarray)):
        raise CalibrationError(f"distortion: expected a list of numbers, got {coefficients!r}")
    values = tuple(_real(c, f"distortion[{i}]") for i, c in enumerate(coefficients))
    # All-zero coefficients (common in driver output, e.g. plumb_bob [0,0,0,0,0] or an empty D) mean no distortion.
    if not any(values):
        return "none", ()
    if name == "none":
        raise CalibrationError(f"distortion: non-zero coefficients {list(values)} with distortion_model 'none'")
    if len(values) not in _COEFFICIENT_COUNTS[name]:
        raise CalibrationError(
            f"distortion: model {name!r} takes {' or '.join(map(str, _COEFFICIENT_COUNTS[name]))} coefficients, "
            f"got {len(values)}"
        )
    return name, values


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one image size, with optional lens distortion (see the module docstring)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    skew: float = 0.0
    distortion_model: str = "none"
    distortion: tuple[float, ...] = ()

    _REQUIRED_KEYS = ("fx", "fy", "cx", "cy", "width", "height")
    _OPTIONAL_KEYS = ("skew", "distortion_model", "distortion")

    def __post_init__(self) -> None:
        for name in ("fx", "fy"):
            value = _real(getattr(self, name), name)
            if value <= 0:
                raise CalibrationError(f"{name}: focal length must be positive, got {value!r}")
            object.__setattr__(self, name, value)
        for name in ("cx", "cy", "skew"):
            object.__setattr__(self, name, _real(getattr(self, name), name))
        for name in ("width", "height"):
            object.__setattr__(self, name, _positive_int(getattr(self, name), name))
        model, coefficients = _normalize_distortion(self.distortion_model, self.distortion)
        object.__setattr__(self, "distortion_model", model)
        object.__setattr__(self, "distortion", coefficients)

    @classmethod
    def from_matrix(
        cls,
        K: ArrayLike,
        width: int,
        height: int,
        *,
        distortion_model: str = "none",
        distortion: Sequence[float] = (),
    ) -> Intrinsics:
        """From a 3x3 camera matrix given as nested lists, a flat row-major list or an array."""
        matrix = _matrix(K, 3, 3, "K")
        if not matrix.any():
            raise CalibrationError("K: all zeros (ROS publishes this for an uncalibrated camera)")
        if not np.allclose(matrix[2], (0.0, 0.0, 1.0)) or matrix[1, 0] != 0.0:
            raise CalibrationError(f"K: expected [[fx, skew, cx], [0, fy, cy], [0, 0, 1]], got {matrix.tolist()}")
        return cls(
            fx=matrix[0, 0],
            fy=matrix[1, 1],
            cx=matrix[0, 2],
            cy=matrix[1, 2],
            width=width,
            height=height,
            skew=matrix[0, 1],
            distortion_model=distortion_model,
            distortion=tuple(distortion),
        )

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Intrinsics:
        """From the scene-record form ``{fx, fy, cx, cy, width, height}`` plus optional
        ``skew``, ``distortion_model``, ``distortion``. Unknown keys are rejected (they are usually typos)."""
        if not isinstance(record, Mapping):
            raise CalibrationError(f"expected an object with keys {', '.join(cls._REQUIRED_KEYS)}, got {record!r}")
        for key in cls._REQUIRED_KEYS:
            if key not in record:
                raise CalibrationError(f"{key}: missing (required: {', '.join(cls._REQUIRED_KEYS)})")
        allowed = cls._REQUIRED_KEYS + cls._OPTIONAL_KEYS
        for key in record:
            if key not in allowed:
                raise CalibrationError(f"{key}: unknown field (allowed: {', '.join(allowed)})")
        return cls(**{key: record[key] for key in allowed if key in record})

    def to_dict(self) -> dict[str, Any]:
        """The scene-record form; optional keys only when they carry information."""
        record: dict[str, Any] = {
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "width": self.width,
            "height": self.height,
        }
        if self.skew:
            record["skew"] = self.skew
        if self.has_distortion:
            record["distortion_model"] = self.distortion_model
            record["distortion"] = list(self.distortion)
        return record

    @classmethod
    def from_camera_info(cls, info: Any, *, rectified: bool = False) -> Intrinsics:
        """From ROS ``sensor_msgs/CameraInfo`` fields: a mapping or a message object (rosbags, rclpy,
        rospy), with ROS 2 names ``k d r p`` or ROS 1 names ``K D R P``. Uses K + D (raw image) unless
        ``rectified`` (then ``P[:, :3]``, no distortion). Binned or ROI images are refused rather than
        silently mis-scaled."""
        width, height = _message_field(info, "width"), _message_field(info, "height")
        for name in ("binning_x", "binning_y"):
            if _real(_message_field(info, name, default=0), name) > 1:
                raise CalibrationError(f"{name}: binned images are not supported; use Intrinsics.scaled()")
        roi = _message_field(info, "roi", default=None)
        if roi is not None:
            roi_size = tuple(_real(_message_field(roi, name, default=0), f"roi.{name}") for name in ("width", "height"))
            if any(roi_size) and roi_size != (width, height):
                raise CalibrationError(f"roi: region-of-interest images are not supported, got roi size {roi_size}")
        if rectified:
            projection = _matrix(_message_field(info, "p", "P"), 3, 4, "p")
            return cls.from_matrix(projection[:, :3], width, height)
        return cls.from_matrix(
            _message_field(info, "k", "K"),
            width,
            height,
            distortion_model=_message_field(info, "distortion_model", default=""),
            distortion=tuple(_message_field(info, "d", "D", default=())),
        )

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the standard name of the camera matrix
        return np.array([[self.fx, self.skew, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def has_distortion(self) -> bool:
        return self.distortion_model != "none"

    def scaled(self, new_width: int, new_height: int) -> Intrinsics:
        """Intrinsics of the same camera after resizing the image to ``new_width x new_height``.
        Pixel centres sit at integer coordinates, so the image edge -0.5 stays at -0.5:
        ``c' = (c + 0.5) * s - 0.5``. Distortion acts on normalized coordinates and is unchanged."""
        new_width = _positive_int(new_width, "new_width")
        new_height = _positive_int(new_height, "new_height")
        sx, sy = new_width / self.width, new_height / self.height
        return replace(
            self,
            fx=self.fx * sx,
            fy=self.fy * sy,
            skew=self.skew * sx,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
            width=new_width,
            height=new_height,
        )

    def project(self, points: ArrayLike) -> np.ndarray:
        """Ideal pinhole projection of camera-frame points ``(..., 3)`` to pixels ``(..., 2)``;
        NaN for points with z <= 0 (behind the camera)."""
        xyz = _last_axis(points, 3, "points")
        z = xyz[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            x, y = xyz[..., 0] / z, xyz[..., 1] / z
        uv = np.stack([self.fx * x + self.skew * y + self.cx, self.fy * y + self.cy], axis=-1)
        uv[~(z > 0)] = np.nan
        return uv

    def backproject(self, u: ArrayLike, v: ArrayLike, z: ArrayLike) -> np.ndarray:
        """Ideal pinhole back-projection of pixels (u, v) at depth z (broadcast together) to ``(..., 3)``."""
        u, v, z = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (u, v, z)))
        y = (v - self.cy) / self.fy
        x = (u - self.cx - self.skew * y) / self.fx
        return np.stack([x * z, y * z, z], axis=-1)

    def undistort_pixels(self, uv: ArrayLike) -> np.ndarray:
        """Map raw (distorted) pixels ``(..., 2)`` to the ideal pinhole pixels of the same K."""
        pixels = _last_axis(uv, 2, "uv")
        if not self.has_distortion or pixels.size == 0:
            return pixels.copy()
        # Remove K ourselves: OpenCV's undistortPoints ignores the skew term of the input matrix.
        normalized = self.backproject(pixels[..., 0], pixels[..., 1], 1.0)[..., :2]
        distorted = np.ascontiguousarray(normalized.reshape(-1, 1, 2))  # OpenCV misreads strided views
        coefficients = np.asarray(self.distortion)
        if self.distortion_model == "equidistant":
            ideal = cv2.fisheye.undistortPoints(distorted, np.eye(3), coefficients, criteria=_UNDISTORT_CRITERIA)
        else:
            ideal = cv2.undistortPointsIter(distorted, np.eye(3), coefficients, None, None, _UNDISTORT_CRITERIA)
        ideal = ideal.reshape(pixels.shape)
        return self.project(np.concatenate([ideal, np.ones_like(ideal[..., :1])], axis=-1))


def _message_field(message: Any, *names: str, default: Any = ...) -> Any:
    for name in names:
        if isinstance(message, Mapping):
            if name in message:
                return message[name]
        elif hasattr(message, name):
            return getattr(message, name)
    if default is ...:
        raise CalibrationError(f"{names[0]}: missing from the camera info")
    return default


def _last_axis(values: ArrayLike, size: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] != size:
        raise ValueError(f"{name}: expected an array of shape (..., {size}), got {array.shape}")
    return array


def load_camera_info_yaml(path: str | Path, *, rectified: bool = False) -> Intrinsics:
    """Load a ROS ``camera_calibration`` ost.yaml / ``camera_info_manager`` YAML file.

    Reads ``image_width``, ``image_height``, ``camera_matrix.data``, ``distortion_model`` and
    ``distortion_coefficients.data`` (or ``projection_matrix.data`` when ``rectified``). Anything else,
    e.g. a ROS 2 parameter file that merely contains an intrinsic matrix, raises ``CalibrationError``.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise CalibrationError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, Mapping) or "camera_matrix" not in data:
        keys = ", ".join(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
        raise CalibrationError(
            f"{path}: not a ROS camera_info / ost.yaml file (no top-level 'camera_matrix'; found: {keys})"
        )
    try:
        size = {"width": _yaml_field(data, "image_width"), "height": _yaml_field(data, "image_height")}
        if rectified:
            return Intrinsics.from_matrix(_yaml_matrix(data, "projection_matrix", 3, 4)[:, :3], **size)
        coefficients = data.get("distortion_coefficients")
        return Intrinsics.from_matrix(
            _yaml_matrix(data, "camera_matrix", 3, 3),
            **size,
            distortion_model=data.get("distortion_model") or "none",
            distortion=() if coefficients is None else tuple(_yaml_field(coefficients, "data") or ()),
        )
    except CalibrationError as error:
        raise CalibrationError(f"{path}: {error}") from error


def _yaml_field(node: Mapping[str, Any], key: str) -> Any:
    if not isinstance(node, Mapping) or key not in node:
        raise CalibrationError(f"{key}: missing")
    return node[key]


def _yaml_matrix(data: Mapping[str, Any], key: str, rows: int, cols: int) -> np.ndarray:
    node = _yaml_field(data, key)
    declared = (node.get("rows", rows), node.get("cols", cols)) if isinstance(node, Mapping) else None
    if declared != (rows, cols):
        raise CalibrationError(f"{key}: expected a {rows}x{cols} matrix with 'data', got {node!r}")
    return _matrix(_yaml_field(node, "data"), rows, cols, f"{key}.data")


@functools.lru_cache(maxsize=8)
def normalized_pixel_grid(intrinsics: Intrinsics) -> np.ndarray:
    """Ideal normalized coordinates of every pixel centre as float32 ``(2, H, W)``: ``x/z`` then
    ``y/z``, undistorted when the intrinsics have distortion. Cached per intrinsics and read-only;
    one contiguous plane per coordinate keeps masked gathers fast."""
    v, u = np.mgrid[0 : intrinsics.height, 0 : intrinsics.width].astype(np.float64)
    ideal = intrinsics.undistort_pixels(np.stack([u, v], axis=-1))
    rays = intrinsics.backproject(ideal[..., 0], ideal[..., 1], 1.0)
    grid = np.ascontiguousarray(np.moveaxis(rays[..., :2], -1, 0), dtype=np.float32)
    grid.setflags(write=False)
    return grid


def check_depth_shape(depth_m: np.ndarray, intrinsics: Intrinsics) -> None:
    """Raise DepthFormatError unless the depth map is (height, width) of the intrinsics."""
    expected = (intrinsics.height, intrinsics.width)
    if np.shape(depth_m) != expected:
        raise DepthFormatError(
            f"depth map shape {np.shape(depth_m)} does not match the intrinsics' (height, width) {expected}; "
            "resize the depth map or use Intrinsics.scaled()"
        )


def depth_to_points(depth_m: ArrayLike, intrinsics: Intrinsics) -> np.ndarray:
    """Camera-frame points ``(H, W, 3)`` float32 of a metric depth map (z-depth), NaN where invalid."""
    depth = np.asarray(depth_m, dtype=np.float32)
    check_depth_shape(depth, intrinsics)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(np.nan))
    x_over_z, y_over_z = normalized_pixel_grid(intrinsics)
    points = np.empty(depth.shape + (3,), dtype=np.float32)
    points[..., 0] = x_over_z * depth
    points[..., 1] = y_over_z * depth
    points[..., 2] = depth
    return points


def decode_depth(raw: ArrayLike, depth_unit: float) -> np.ndarray:
    """Raw depth values times ``depth_unit`` (metres per unit) as float32 metres; 0, negative,
    NaN and inf become NaN. E.g. uint16 mm: 0.001; TUM: 1/5000; float32 metres: 1.0."""
    unit = _real(depth_unit, "depth_unit")
    if unit <= 0:
        raise DepthFormatError(f"depth_unit: must be positive metres per unit, got {unit!r}")
    values = np.asarray(raw)
    if values.ndim != 2 or values.dtype.kind not in "uif":
        raise DepthFormatError(f"expected a 2D numeric depth map, got dtype {values.dtype} and shape {values.shape}")
    metres = values.astype(np.float32) * np.float32(unit)
    metres[~(np.isfinite(metres) & (metres > 0))] = np.nan
    return metres


def default_depth_unit(path: str | Path) -> float:
    """Metres per stored unit when none is given: 1.0 for ``.npy`` (float metres), else 0.001 (uint16 mm)."""
    return NPY_DEPTH_UNIT if Path(path).suffix.lower() == ".npy" else PNG_DEPTH_UNIT


def load_depth(path: str | Path, depth_unit: float | None = None) -> np.ndarray:
    """Load a depth map as float32 metres (NaN = invalid).

    ``.npy``: a 2D numeric array (``allow_pickle=False``). Anything else is read with OpenCV
    unchanged and must be single-channel uint16 (e.g. 16-bit PNG) or float32 (e.g. TIFF); an 8-bit
    image is refused because it cannot hold metric depth. ``depth_unit`` defaults per
    ``default_depth_unit``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"depth file not found: {path}")
    if path.suffix.lower() == ".npy":
        raw = np.load(path, allow_pickle=False)
    else:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise DepthFormatError(f"{path}: OpenCV cannot read this file as an image")
        if raw.ndim != 2 or raw.dtype not in (np.uint16, np.float32):
            raise DepthFormatError(
                f"{path}: expected a single-channel 16-bit or float32 depth image, got {raw.dtype} "
                f"with shape {raw.shape}"
            )
    try:
        return decode_depth(raw, default_depth_unit(path) if depth_unit is None else depth_unit)
    except (DepthFormatError, CalibrationError) as error:
        raise DepthFormatError(f"{path}: {error}") from error


def decode_sun_rgbd_depth(raw: np.ndarray) -> np.ndarray:
    """SUN RGB-D depth PNGs store millimetres rotated left by 3 bits; rotate back, return metres."""
    if raw.dtype != np.uint16:
        raise DepthFormatError(f"SUN RGB-D depth must be uint16, got {raw.dtype}")
    bits = raw.astype(np.uint32)
    millimetres = ((bits >> 3) | (bits << 13)) & 0xFFFF
    return decode_depth(millimetres, PNG_DEPTH_UNIT)


def decode_nyu_disparity(raw: np.ndarray) -> np.ndarray:
    """NYU Depth raw Kinect disparity to metres: ``351.3 / (1092.5 - raw)`` (Open3D's convention);
    2047 means no return."""
    disparity = np.asarray(raw, dtype=np.float64)
    with np.errstate(divide="ignore"):
        metres = 351.3 / (1092.5 - disparity)
    metres[disparity == NYU_INVALID_DISPARITY] = np.nan
    return decode_depth(metres, 1.0)


def load_nyu_raw_depth(path: str | Path) -> np.ndarray:
    """Read an NYU raw-depth PGM (``P5 W H 65535``) as metres. NYU's dumps store the uint16 payload
    little-endian although PGM prescribes big-endian, so the payload is parsed here, not by OpenCV."""
    data = Path(path).read_bytes()
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    if header is None:
        raise DepthFormatError(f"{path}: not a binary PGM (P5) file")
    width, height, max_value = map(int, header.groups())
    if max_value < 256 or len(data) - header.end() < 2 * width * height:
        raise DepthFormatError(f"{path}: expected a 16-bit payload of {width}x{height} values")
    payload = np.frombuffer(data, dtype="<u2", count=width * height, offset=header.end())
    return decode_nyu_disparity(payload.reshape(height, width))


def gravity_frame(up: ArrayLike | None = DEFAULT_UP) -> np.ndarray:
    """Rotation whose rows are the gravity-aligned axes (right, down, forward) in camera coordinates,
    so ``R @ p_camera`` gives gravity-frame coordinates. forward = the optical axis projected onto the
    horizontal plane, down = -up, right = down x forward. ``up`` need not be unit length; ``None``
    (a scene record without ``up``) means the default, for which this is the identity."""
    vector = np.asarray(DEFAULT_UP if up is None else up, dtype=np.float64)
    if vector.shape != (3,) or not np.all(np.isfinite(vector)) or not vector.any():
        raise ValueError(f"up: expected 3 finite numbers, not all zero, got {up!r}")
    unit_up = vector / np.linalg.norm(vector)
    forward = np.array([0.0, 0.0, 1.0]) - unit_up[2] * unit_up
    if np.linalg.norm(forward) < 1e-6:
        raise ValueError(f"up: {up!r} is parallel to the optical axis; the horizontal viewing direction is undefined")
    forward /= np.linalg.norm(forward)
    down = -unit_up
    return np.stack([np.cross(down, forward), down, forward])
