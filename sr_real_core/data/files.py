"""Writing the data engine's outputs: images that must not fail silently, JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB (H, W, 3) uint8 image or a single-channel (uint8/uint16) one; raise if OpenCV cannot
    (cv2.imwrite only returns False, e.g. for a missing directory)."""
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    if not cv2.imwrite(str(path), pixels):
        raise OSError(f"could not write image {path}")


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    Path(path).write_text(text, encoding="utf-8")
