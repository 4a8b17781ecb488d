"""Frames: the latest approximately synchronised colour + depth + camera info set, nothing older.

Camera callbacks only check messages (O(1) header checks, a sparse probe of depth) and pair stamps; pixels
are decoded later, on the worker, for the one frame a query uses. A new set replaces the previous one; a set
replaced before any query used it counts as dropped, one a query used counts as processed. Memory is
bounded by `HISTORY` messages per stream.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from sr_real_core.geometry import Intrinsics
from sr_real_core.ros.msgs import (camera_info_intrinsics, check_colour_image, check_compressed_image,
                                   check_depth_image, compressed_to_rgb, depth_to_metres, image_to_rgb,
                                   stamp_seconds)

HISTORY = 4  # messages kept per stream for pairing: a few frame periods of the slower stream


class FrameError(ValueError):
    """A message or message set that cannot make a frame; the text says which and why."""


class ImageDecoder(Protocol):
    """Pixels of checked image messages: RGB uint8 (H, W, 3) and depth float32 metres (H, W), NaN = invalid."""

    def colour(self, msg: Any) -> np.ndarray: ...

    def compressed(self, msg: Any) -> np.ndarray: ...

    def depth(self, msg: Any) -> np.ndarray: ...


class CoreImageDecoder:
    """`sr_real_core.ros.msgs`'s decoding (cv_bridge's semantics); the rclpy node may use cv_bridge itself."""

    colour = staticmethod(image_to_rgb)
    compressed = staticmethod(compressed_to_rgb)
    depth = staticmethod(depth_to_metres)


@dataclass(frozen=True)
class Frame:
    """One synchronised set. The messages are kept undecoded; `decode()` turns them into arrays."""

    colour: Any  # sensor_msgs/Image or sensor_msgs/CompressedImage
    compressed: bool
    depth: Any | None  # sensor_msgs/Image or None
    intrinsics: Intrinsics
    received_s: float  # clock time the set was complete (its last message arrived)

    @property
    def stamp(self) -> Any:
        return self.colour.header.stamp

    @property
    def frame_id(self) -> str:
        return str(self.colour.header.frame_id)

    def decode(self, decoder: ImageDecoder) -> tuple[np.ndarray, np.ndarray | None]:
        """(RGB uint8 (H, W, 3), depth float32 metres (H, W) or None); FrameError if they do not fit the
        intrinsics (a compressed image's size is only known here)."""
        rgb = decoder.compressed(self.colour) if self.compressed else decoder.colour(self.colour)
        expected = (self.intrinsics.height, self.intrinsics.width)
        if rgb.shape[:2] != expected:
            raise FrameError(f"the colour image is {rgb.shape[1]}x{rgb.shape[0]} but camera_info describes "
                             f"{expected[1]}x{expected[0]}")
        return rgb, None if self.depth is None else decoder.depth(self.depth)


class FrameSynchroniser:
    """Pairs colour and depth by stamp (within `slop_s`) with the latest camera info. Not thread-safe: the
    caller serialises calls."""

    def __init__(self, *, slop_s: float, with_depth: bool):
        self.slop_s = slop_s
        self.with_depth = with_depth
        self._colour: deque[tuple[int, float, Any, bool]] = deque(maxlen=HISTORY)  # arrival, stamp, msg, compressed
        self._arrivals = 0
        self._latest_arrival = -1
        self._depth: deque[tuple[float, Any]] = deque(maxlen=HISTORY)
        self._intrinsics: Intrinsics | None = None
        self.latest: Frame | None = None
        self._latest_used = False
        self.synchronised = self.processed = self.dropped = 0

    def add_colour(self, msg: Any, *, compressed: bool, now: float) -> None:
        """Raises ImageMessageError (a ValueError) for a bad message, FrameError for one that fits no frame."""
        (check_compressed_image if compressed else check_colour_image)(msg)
        if not compressed:
            self._check_size("colour image", msg)
        self._arrivals += 1
        self._colour.append((self._arrivals, stamp_seconds(msg.header.stamp), msg, compressed))
        self._pair(now)

    def add_depth(self, msg: Any, *, now: float) -> None:
        check_depth_image(msg)
        self._check_size("depth image", msg)
        self._depth.append((stamp_seconds(msg.header.stamp), msg))
        self._pair(now)

    def add_camera_info(self, msg: Any, *, now: float) -> None:
        """Raises CalibrationError (a ValueError) for an unusable calibration."""
        intrinsics = camera_info_intrinsics(msg)
        resized = self._intrinsics is None or _size(intrinsics) != _size(self._intrinsics)
        self._intrinsics = intrinsics
        if resized:  # images received before this calibration must fit it too
            self._colour = deque((entry for entry in self._colour if entry[3] or self._fits(entry[2])),
                                 maxlen=HISTORY)
            self._depth = deque((entry for entry in self._depth if self._fits(entry[1])), maxlen=HISTORY)
        self._pair(now)

    def waiting_for(self) -> str | None:
        """What the first frame still lacks, or None once there is one."""
        if self.latest is not None:
            return None
        missing = [name for name, ok in (("colour image", self._colour), ("camera_info", self._intrinsics),
                                         ("depth image", self._depth or not self.with_depth)) if not ok]
        if missing:
            return "no " + " and no ".join(missing) + " received yet"
        return f"no colour and depth image within {self.slop_s} s of each other yet"

    def take(self) -> Frame | None:
        """The latest frame, counted as processed the first time a query takes it."""
        if self.latest is not None and not self._latest_used:
            self._latest_used = True
            self.processed += 1
        return self.latest

    def _pair(self, now: float) -> None:
        """Make the newest colour image that has its depth (if any) the latest frame. Newest by arrival, not by
        stamp: a camera restart or a looping bag sends stamps back in time. A depth image closer in time to the
        latest frame's colour image replaces its depth (the same frame, better paired)."""
        if self._intrinsics is None:
            return
        for arrival, stamp, colour, compressed in reversed(self._colour):
            if arrival < self._latest_arrival:
                return
            depth = self._closest_depth(stamp) if self.with_depth else None
            if depth is None and self.with_depth:
                continue
            if arrival == self._latest_arrival:
                if depth is not self.latest.depth:
                    self.latest = replace(self.latest, depth=depth, received_s=now)
                return
            if self.latest is not None and not self._latest_used:
                self.dropped += 1
            self.synchronised += 1
            self.latest = Frame(colour, compressed, depth, self._intrinsics, now)
            self._latest_arrival, self._latest_used = arrival, False
            return

    def _closest_depth(self, stamp: float) -> Any | None:
        gap, depth = min(((abs(depth_stamp - stamp), msg) for depth_stamp, msg in self._depth),
                         key=lambda match: match[0], default=(None, None))
        return depth if gap is not None and gap <= self.slop_s else None

    def _fits(self, msg: Any) -> bool:
        return self._intrinsics is None or (int(msg.width), int(msg.height)) == _size(self._intrinsics)

    def _check_size(self, name: str, msg: Any) -> None:
        if not self._fits(msg):
            width, height = _size(self._intrinsics)
            raise FrameError(f"the {name} is {msg.width}x{msg.height} but camera_info describes {width}x{height}")


def _size(intrinsics: Intrinsics) -> tuple[int, int]:
    return intrinsics.width, intrinsics.height
