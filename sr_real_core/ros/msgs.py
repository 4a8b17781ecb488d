"""ROS 2 messages <-> numpy, without ROS: images, depth, camera info, stamps, 2D detections.

Messages are read by field name, so the same functions take rclpy messages, `rosbags` messages and the DDS
transport's messages (`sr_real_core.ros.dds`); byte fields may be bytes, bytearray, memoryview, array.array,
a numpy array or a list of ints. Messages built for publishing are plain dicts with the ROS field names
(missing fields take their defaults); each transport turns them into its own message objects.

Image semantics follow cv_bridge: rows are `step` bytes apart (row padding is skipped), multi-byte pixels
honour `is_bigendian`, colour images come out as RGB uint8. Unlike cv_bridge, an inconsistent message (a
step shorter than a row, a data size other than step x height, an unknown encoding) raises
`ImageMessageError` instead of being reinterpreted.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from sr_real_core.geometry import Intrinsics, decode_depth

DEPTH_UNITS = {"16UC1": 0.001, "mono16": 0.001, "32FC1": 1.0}  # metres per stored unit (REP 118)
_JPEG_MAGIC, _PNG_MAGIC = b"\xff\xd8\xff", b"\x89PNG"
# Depth images are checked for valid pixels on a sparse grid: cheap enough for every frame at 30 Hz.
_DEPTH_PROBE_STRIDE = 8


class ImageMessageError(ValueError):
    """An image message that cannot be decoded; the message says which field is wrong."""


@dataclass(frozen=True)
class _Encoding:
    dtype: str
    channels: int
    to_rgb: int | None  # cv2 colour conversion code; None when already RGB


_COLOUR_ENCODINGS = {
    "rgb8": _Encoding("uint8", 3, None),
    "bgr8": _Encoding("uint8", 3, cv2.COLOR_BGR2RGB),
    "rgba8": _Encoding("uint8", 4, cv2.COLOR_RGBA2RGB),
    "bgra8": _Encoding("uint8", 4, cv2.COLOR_BGRA2RGB),
    "mono8": _Encoding("uint8", 1, cv2.COLOR_GRAY2RGB),
    "rgb16": _Encoding("uint16", 3, None),
    "bgr16": _Encoding("uint16", 3, cv2.COLOR_BGR2RGB),
    "mono16": _Encoding("uint16", 1, cv2.COLOR_GRAY2RGB),
    # ROS names Bayer patterns by their first row, OpenCV by the second row's middle pair.
    "bayer_rggb8": _Encoding("uint8", 1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": _Encoding("uint8", 1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": _Encoding("uint8", 1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": _Encoding("uint8", 1, cv2.COLOR_BayerGB2RGB),
    "yuv422": _Encoding("uint8", 2, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": _Encoding("uint8", 2, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": _Encoding("uint8", 2, cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": _Encoding("uint8", 2, cv2.COLOR_YUV2RGB_YUY2),
}
_DEPTH_ENCODINGS = {
    "16UC1": _Encoding("uint16", 1, None),
    "mono16": _Encoding("uint16", 1, None),
    "32FC1": _Encoding("float32", 1, None),
}


def byte_buffer(data: Any) -> memoryview:
    """A flat byte view of a message's uint8[] field, copying only when it is a list of ints."""
    if isinstance(data, list):
        data = bytes(data)
    view = memoryview(data)
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _encoding(msg: Any, table: dict[str, _Encoding], kind: str) -> _Encoding:
    encoding = str(msg.encoding)
    if encoding not in table:
        raise ImageMessageError(f"encoding {encoding!r} is not supported for {kind} images; "
                                f"supported: {', '.join(table)}")
    return table[encoding]


def _checked_buffer(msg: Any, encoding: _Encoding) -> memoryview:
    """The message's pixel bytes after checking height, width, step and data size against each other."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageMessageError(f"height x width {height}x{width}: an image needs at least one pixel")
    itemsize = np.dtype(encoding.dtype).itemsize
    row_bytes = width * encoding.channels * itemsize
    if step < row_bytes:
        raise ImageMessageError(f"step {step}: shorter than one row of {width} {msg.encoding} pixels "
                                f"({row_bytes} bytes)")
    if step % itemsize:
        raise ImageMessageError(f"step {step}: not a multiple of the {itemsize}-byte sample size")
    data = byte_buffer(msg.data)
    if len(data) != step * height:
        raise ImageMessageError(f"data: {len(data)} bytes, expected step x height = {step} x {height} "
                                f"= {step * height}")
    return data


def check_colour_image(msg: Any) -> None:
    """Raise ImageMessageError unless `msg` (sensor_msgs/Image) decodes as a colour image. O(1)."""
    _checked_buffer(msg, _encoding(msg, _COLOUR_ENCODINGS, "colour"))


def _wire_view(msg: Any, encoding: _Encoding) -> np.ndarray:
    """(H, W, C) zero-copy view of the samples in the message's byte order, row padding stepped over."""
    data = _checked_buffer(msg, encoding)
    dtype = np.dtype(encoding.dtype).newbyteorder(">" if msg.is_bigendian else "<")
    return np.ndarray((int(msg.height), int(msg.width), encoding.channels), dtype=dtype, buffer=data,
                      strides=(int(msg.step), encoding.channels * dtype.itemsize, dtype.itemsize))


def _pixels(msg: Any, encoding: _Encoding) -> np.ndarray:
    """(H, W, C) contiguous native-endian copy of the samples."""
    return _wire_view(msg, encoding).astype(np.dtype(encoding.dtype), copy=True)


def image_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) RGB uint8 (16-bit images scaled to 8 bits, as cv_bridge does)."""
    encoding = _encoding(msg, _COLOUR_ENCODINGS, "colour")
    pixels = _pixels(msg, encoding)
    if pixels.dtype == np.uint16:
        pixels = (pixels.astype(np.float32) * (255.0 / 65535.0)).round().astype(np.uint8)
    if encoding.channels == 1:
        pixels = pixels[..., 0]
    rgb = pixels if encoding.to_rgb is None else cv2.cvtColor(pixels, encoding.to_rgb)
    return np.ascontiguousarray(rgb)


def check_compressed_image(msg: Any) -> None:
    """Raise ImageMessageError unless `msg` (sensor_msgs/CompressedImage) holds JPEG or PNG data. O(1)."""
    fmt = str(msg.format)
    if "compressedDepth" in fmt:
        raise ImageMessageError(f"format {fmt!r}: compressedDepth is not supported; subscribe to the raw "
                                "depth topic")
    head = bytes(byte_buffer(msg.data)[:4])
    if not (head.startswith(_JPEG_MAGIC) or head.startswith(_PNG_MAGIC)):
        raise ImageMessageError(f"format {fmt!r}: the data is neither JPEG nor PNG (starts with {head.hex()})")


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG or PNG) -> (H, W, 3) RGB uint8."""
    check_compressed_image(msg)
    bgr = cv2.imdecode(np.frombuffer(byte_buffer(msg.data), dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageMessageError(f"format {str(msg.format)!r}: the data could not be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_depth_image(msg: Any) -> None:
    """Raise ImageMessageError unless `msg` is a decodable depth image with some valid pixels. Cheap: the
    validity check reads a sparse grid of pixels."""
    probe = _wire_view(msg, _encoding(msg, _DEPTH_ENCODINGS, "depth"))[::_DEPTH_PROBE_STRIDE, ::_DEPTH_PROBE_STRIDE]
    with np.errstate(invalid="ignore"):
        if not np.any(np.isfinite(probe) & (probe > 0)):
            raise ImageMessageError(f"data: no valid depth (every {msg.encoding} sample probed is 0, NaN or inf)")


def depth_to_metres(msg: Any) -> np.ndarray:
    """sensor_msgs/Image depth (16UC1 / mono16 millimetres or 32FC1 metres) -> (H, W) float32 metres,
    NaN where invalid (0, negative, NaN, inf)."""
    encoding = _encoding(msg, _DEPTH_ENCODINGS, "depth")
    return decode_depth(_pixels(msg, encoding)[..., 0], DEPTH_UNITS[str(msg.encoding)])


def camera_info_intrinsics(msg: Any) -> Intrinsics:
    """sensor_msgs/CameraInfo -> Intrinsics of the raw image (K + D); CalibrationError names a bad field."""
    return Intrinsics.from_camera_info(msg)


def stamp_seconds(stamp: Any) -> float:
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def header_dict(stamp: Any, frame_id: str) -> dict[str, Any]:
    """std_msgs/Header for a builtin_interfaces/Time-like `stamp` (anything with sec and nanosec)."""
    return {"stamp": {"sec": int(stamp.sec), "nanosec": int(stamp.nanosec)}, "frame_id": frame_id}


def time_dict(seconds: float) -> dict[str, int]:
    """builtin_interfaces/Time or Duration of a number of seconds (non-negative)."""
    nanoseconds = round(seconds * 1e9)
    return {"sec": nanoseconds // 1_000_000_000, "nanosec": nanoseconds % 1_000_000_000}


def image_dict(rgb: np.ndarray, header: dict[str, Any]) -> dict[str, Any]:
    """sensor_msgs/Image (rgb8, no padding) of an (H, W, 3) uint8 array."""
    height, width = rgb.shape[:2]
    return {"header": header, "height": height, "width": width, "encoding": "rgb8", "is_bigendian": 0,
            "step": width * 3, "data": np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()}


def detection_box(detection: Any) -> list[float]:
    """Axis-aligned [x1, y1, x2, y2] pixel box of a vision_msgs/Detection2D (its BoundingBox2D may be rotated
    by `center.theta` about its centre)."""
    box = detection.bbox
    cx, cy, theta = float(box.center.position.x), float(box.center.position.y), float(box.center.theta)
    half_w, half_h = float(box.size_x) / 2, float(box.size_y) / 2
    extent_x = abs(math.cos(theta)) * half_w + abs(math.sin(theta)) * half_h
    extent_y = abs(math.sin(theta)) * half_w + abs(math.cos(theta)) * half_h
    return [cx - extent_x, cy - extent_y, cx + extent_x, cy + extent_y]


def detection_label(detection: Any) -> str | None:
    """The best-scoring class id of a vision_msgs/Detection2D, or None without results."""
    results: Sequence[Any] = detection.results
    if not results:
        return None
    best = max(results, key=lambda result: float(result.hypothesis.score))
    return str(best.hypothesis.class_id)
