"""Region marks: how a question's regions are named in its text and drawn on its image. The convention is
shared by the data engine (which writes marked images), the inference engine (which marks a query's regions
on the fly, as training did) and the ROS wing (debug image, marker colours).

A record's region is ``{ref, object_index, bbox_2d, kind}``: ``kind`` is "bbox" (the object's 2D box) or "point" (a
small box around a point inside the object, the reference's point prompt); ``ref`` is "<colour> <kind>"
("red bbox", "blue point"), the name a DTR completion's ``3d_box`` label carries and the detection reward
matches. Colours go red, blue, green, yellow in the order the regions appear in the question. The text
names a region as "the red bbox <region>": the model replaces ``REGION_TOKEN``'s embedding by the
region's pooled image features, while the drawn mark lets it see which region is which.

Marked images are written by ``sr-real data qa`` (``marked/<question id>.png``); ``draw_regions`` is the
same drawing for a trainer that marks images on the fly.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from sr_real_core.query import REGION_TOKEN, Region

MARK_COLOURS: dict[str, tuple[int, int, int]] = {  # RGB
    "red": (255, 0, 0),
    "blue": (0, 90, 255),
    "green": (0, 200, 0),
    "yellow": (255, 230, 0),
}
MAX_REGIONS = len(MARK_COLOURS)
POINT_BOX_FRACTION = 0.03  # a point mark's box side, as a fraction of the image's shorter side


def region_ref(index: int, kind: str) -> str:
    return f"{list(MARK_COLOURS)[index]} {kind}"


def mention(ref: str) -> str:
    """How a question names a marked region."""
    return f"the {ref} {REGION_TOKEN}"


def point_box(mask: np.ndarray | None, bbox: Sequence[float], width: int, height: int) -> list[int]:
    """A small box (pixel-edge coordinates) around the object's most interior mask pixel (farthest from
    the mask's border), or around the 2D box's centre when there is no mask."""
    if mask is not None and mask.any():
        distance = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
        u, v = col + 0.5, row + 0.5
    else:
        u, v = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    half = max(2, round(POINT_BOX_FRACTION * min(width, height) / 2))
    x1, y1 = int(np.clip(round(u) - half, 0, width - 1)), int(np.clip(round(v) - half, 0, height - 1))
    return [x1, y1, int(min(x1 + 2 * half, width)), int(min(y1 + 2 * half, height))]


def draw_regions(image_rgb: np.ndarray, regions: Sequence[Region]) -> np.ndarray:
    """A copy of an RGB image with each region's box outlined in the colour its `ref` names (a point is a
    small box)."""
    marked = np.ascontiguousarray(image_rgb).copy()
    thickness = max(1, round(min(marked.shape[:2]) / 160))
    for region in regions:
        colour = MARK_COLOURS[region.ref.split(" ", 1)[0]]
        x1, y1, x2, y2 = (int(round(value)) for value in region.box)
        cv2.rectangle(marked, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), colour, thickness)
    return marked
