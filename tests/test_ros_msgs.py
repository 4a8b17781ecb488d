"""Image, depth and camera-info conversion of ROS messages (built with rosbags), with cv_bridge's semantics:
row padding, big-endian data, colour encodings; bad messages raise errors that name the field."""
import array
import math

import cv2
import numpy as np
import pytest
from rosbags.image import message_to_cvimage

from sr_real_core.geometry import CalibrationError
from sr_real_core.ros.msgs import (ImageMessageError, byte_buffer, camera_info_intrinsics, check_colour_image,
                                   check_compressed_image, check_depth_image, compressed_to_rgb, depth_to_metres,
                                   detection_box, detection_label, image_to_rgb)
from sr_real_core.ros.types import rosbags_message

HEADER = {"stamp": {"sec": 3, "nanosec": 500}, "frame_id": "camera_color_optical_frame"}
RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)


def image_msg(pixels, encoding, *, padding=0, bigendian=False, **fields):
    """sensor_msgs/Image with `padding` bytes after each row and the samples in the given byte order."""
    pixels = np.asarray(pixels)
    height, width = pixels.shape[:2]
    ordered = pixels.astype(pixels.dtype.newbyteorder(">" if bigendian else "<"))
    rows = ordered.reshape(height, -1).view(np.uint8).reshape(height, -1)
    rows = np.concatenate([rows, np.full((height, padding), 0xAB, np.uint8)], axis=1)
    values = {"header": HEADER, "height": height, "width": width, "encoding": encoding,
              "is_bigendian": int(bigendian), "step": rows.shape[1], "data": rows.tobytes(), **fields}
    return rosbags_message("sensor_msgs/msg/Image", values)


def camera_info_msg(width=10, height=6, k=(50, 0, 4.5, 0, 50, 2.5, 0, 0, 1), **fields):
    return rosbags_message("sensor_msgs/msg/CameraInfo", {
        "header": HEADER, "width": width, "height": height, "distortion_model": "plumb_bob", "d": [0.0] * 5,
        "k": list(k), "r": [1, 0, 0, 0, 1, 0, 0, 0, 1], "p": [50, 0, 4.5, 0, 0, 50, 2.5, 0, 0, 0, 1, 0], **fields})


@pytest.mark.parametrize("padding", [0, 3, 64])
@pytest.mark.parametrize("encoding, pixels", [
    ("rgb8", RGB), ("bgr8", RGB[..., ::-1]), ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)])),
    ("bgra8", np.dstack([RGB[..., ::-1], np.full(RGB.shape[:2], 9, np.uint8)])),
])
def test_colour_encodings_with_row_padding(encoding, pixels, padding):
    assert np.array_equal(image_to_rgb(image_msg(pixels, encoding, padding=padding)), RGB)


@pytest.mark.parametrize("bigendian", [False, True])
def test_sixteen_bit_colour_is_scaled_like_cv_bridge(bigendian):
    wide = RGB.astype(np.uint16) * 257  # 8-bit value v as 16-bit v * 257
    assert np.array_equal(image_to_rgb(image_msg(wide, "rgb16", padding=4, bigendian=bigendian)), RGB)
    assert np.array_equal(image_to_rgb(image_msg(wide[..., ::-1], "bgr16", bigendian=bigendian)), RGB)
    mono = image_to_rgb(image_msg(wide[..., 0], "mono16", padding=2, bigendian=bigendian))
    assert np.array_equal(mono, np.repeat(RGB[..., :1], 3, axis=2))


def test_mono_bayer_and_yuv():
    grey = RGB[..., 1]
    assert np.array_equal(image_to_rgb(image_msg(grey, "mono8", padding=5)), np.dstack([grey] * 3))
    raw = RNG.integers(0, 256, (8, 12), dtype=np.uint8)
    expected = cv2.cvtColor(raw, cv2.COLOR_BayerBG2RGB)  # ROS rggb = OpenCV BayerBG
    assert np.array_equal(image_to_rgb(image_msg(raw, "bayer_rggb8", padding=4)), expected)
    uyvy = np.zeros((4, 6, 2), np.uint8)
    uyvy[..., 0], uyvy[..., 1] = 128, 200  # chroma neutral, luma 200 -> grey
    yuyv = uyvy[..., ::-1].copy()
    for encoding, pixels in (("yuv422", uyvy), ("uyvy", uyvy), ("yuv422_yuy2", yuyv), ("yuyv", yuyv)):
        rgb = image_to_rgb(image_msg(pixels, encoding, padding=2))
        assert rgb.shape == (4, 6, 3) and np.ptp(rgb) <= 1 and abs(int(rgb[0, 0, 0]) - 200) <= 20


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("encoding, channels, dtype", [
    ("rgb8", 3, np.uint8), ("bgr8", 3, np.uint8), ("rgba8", 4, np.uint8), ("bgra8", 4, np.uint8),
    ("mono8", 1, np.uint8), ("bayer_rggb8", 1, np.uint8), ("bayer_gbrg8", 1, np.uint8), ("yuv422", 2, np.uint8),
    ("yuv422_yuy2", 2, np.uint8), ("rgb16", 3, np.uint16), ("mono16", 1, np.uint16),
])
def test_agrees_with_rosbags_image_on_unpadded_messages(encoding, channels, dtype, bigendian):
    """rosbags-image as an independent reference (it ignores `step`, so only unpadded rows). It truncates
    16-bit values to 8 bits where cv_bridge (and this module) rounds: one level apart at most."""
    pixels = RNG.integers(0, np.iinfo(dtype).max, (8, 12, channels), dtype=dtype).squeeze(axis=2 if channels == 1
                                                                                            else ())
    msg = image_msg(pixels, encoding, bigendian=bigendian)
    reference = message_to_cvimage(msg, "rgb8")
    assert np.abs(image_to_rgb(msg).astype(int) - reference).max() <= (1 if dtype == np.uint16 else 0)
    if encoding == "mono16":  # and as depth: the same samples, in metres
        depth = image_msg(pixels, "16UC1", bigendian=bigendian)
        millimetres = message_to_cvimage(depth).astype(np.float32)
        assert np.allclose(depth_to_metres(depth), np.where(millimetres > 0, millimetres / 1000, np.nan),
                           equal_nan=True)


@pytest.mark.parametrize("bigendian", [False, True])
def test_depth_16uc1_and_32fc1_with_padding_and_byte_order(bigendian):
    millimetres = RNG.integers(1, 6000, (6, 10)).astype(np.uint16)
    millimetres[0, 0] = 0
    metres = depth_to_metres(image_msg(millimetres, "16UC1", padding=6, bigendian=bigendian))
    assert metres.dtype == np.float32 and np.isnan(metres[0, 0])
    assert np.allclose(metres[1:], millimetres[1:] * 0.001)
    floats = RNG.uniform(0.3, 5.0, (6, 10)).astype(np.float32)
    floats[1, 1], floats[2, 2], floats[3, 3] = np.nan, np.inf, -1.0
    decoded = depth_to_metres(image_msg(floats, "32FC1", padding=8, bigendian=bigendian))
    assert np.isnan(decoded[[1, 2, 3], [1, 2, 3]]).all()
    valid = np.isfinite(floats) & (floats > 0)
    assert np.array_equal(decoded[valid], floats[valid])


def test_depth_without_valid_pixels_is_refused_cheaply():
    check_depth_image(image_msg(np.full((16, 16), 1.5, np.float32), "32FC1"))
    for bad in (np.full((16, 16), np.nan, np.float32), np.zeros((16, 16), np.float32)):
        with pytest.raises(ImageMessageError, match="no valid depth"):
            check_depth_image(image_msg(bad, "32FC1"))


@pytest.mark.parametrize("fields, message", [
    ({"encoding": "weird8"}, "encoding 'weird8' is not supported"),
    ({"step": 29}, "step 29: shorter than one row"),
    ({"step": 40}, r"data: 180 bytes, expected step x height = 40 x 6 = 240"),
    ({"height": 0, "data": b""}, "at least one pixel"),
])
def test_inconsistent_colour_messages_name_the_field(fields, message):
    msg = image_msg(RGB, "rgb8")
    for name, value in fields.items():
        setattr(msg, name, np.frombuffer(value, np.uint8) if name == "data" else value)
    with pytest.raises(ImageMessageError, match=message):
        check_colour_image(msg)
    with pytest.raises(ImageMessageError, match=message):
        image_to_rgb(msg)


def test_depth_step_must_hold_whole_samples_and_colour_encodings_are_not_depth():
    msg = image_msg(np.ones((4, 4), np.uint16), "16UC1", padding=1)
    with pytest.raises(ImageMessageError, match="not a multiple of the 2-byte sample size"):
        depth_to_metres(msg)
    with pytest.raises(ImageMessageError, match="not supported for depth images"):
        check_depth_image(image_msg(RGB, "rgb8"))


def test_byte_fields_of_every_library_are_read_without_copies_where_possible():
    data = bytes(range(12))
    for value in (data, bytearray(data), memoryview(data), array.array("B", data), list(data),
                  np.frombuffer(data, np.uint8)):
        assert bytes(byte_buffer(value)) == data


def test_compressed_images():
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(np.full((32, 48, 3), (200, 40, 10), np.uint8), cv2.COLOR_RGB2BGR))
    msg = rosbags_message("sensor_msgs/msg/CompressedImage", {"header": HEADER, "format": "jpeg",
                                                              "data": jpeg.tobytes()})
    rgb = compressed_to_rgb(msg)
    assert rgb.shape == (32, 48, 3) and np.abs(rgb.astype(int) - (200, 40, 10)).max() < 8
    _, png = cv2.imencode(".png", np.zeros((5, 7, 3), np.uint8))
    assert compressed_to_rgb(rosbags_message("sensor_msgs/msg/CompressedImage",
                                             {"format": "png", "data": png.tobytes()})).shape == (5, 7, 3)
    for fmt, data, message in (("jpeg", b"GIF89a....", "neither JPEG nor PNG"),
                               ("16UC1; compressedDepth png", png.tobytes(), "compressedDepth is not supported")):
        with pytest.raises(ImageMessageError, match=message):
            check_compressed_image(rosbags_message("sensor_msgs/msg/CompressedImage", {"format": fmt, "data": data}))
    truncated = rosbags_message("sensor_msgs/msg/CompressedImage", {"format": "jpeg", "data": jpeg.tobytes()[:20]})
    with pytest.raises(ImageMessageError, match="could not be decoded"):
        compressed_to_rgb(truncated)


def test_camera_info():
    intrinsics = camera_info_intrinsics(camera_info_msg())
    assert (intrinsics.fx, intrinsics.cx, intrinsics.width, intrinsics.height) == (50, 4.5, 10, 6)
    with pytest.raises(CalibrationError, match="uncalibrated"):
        camera_info_intrinsics(camera_info_msg(k=[0] * 9))


def test_detection2d_boxes_and_labels():
    detection = rosbags_message("vision_msgs/msg/Detection2D", {
        "bbox": {"center": {"position": {"x": 50, "y": 40}, "theta": math.pi / 2}, "size_x": 20, "size_y": 10},
        "results": [{"hypothesis": {"class_id": "cup", "score": 0.4}},
                    {"hypothesis": {"class_id": "mug", "score": 0.9}}], "id": "7"})
    assert np.allclose(detection_box(detection), [45, 30, 55, 50])  # rotated a quarter turn
    assert detection_label(detection) == "mug"
    assert detection_label(rosbags_message("vision_msgs/msg/Detection2D", {})) is None
