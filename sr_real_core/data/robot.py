"""Robot datasets: what the robot saw, as scene records (`sr_real_core.scenes`), written by the bag importer
(`data.from_bag`) and the node's recorder (`ros.recorder`), read by the label converter (`data.labels`).

A robot dataset folder:

    scenes.jsonl     one scene record per frame; paths relative to the folder
    images/NAME      the colour frame: the camera's own JPEG/PNG bytes when it sent compressed images, else PNG
    depth/NAME.png   16-bit millimetres (depth_unit 0.001), 0 = invalid, registered to the colour frame
    feedback.jsonl   (recorder) operator feedback: {id, answer} or {id, verdict}, one per line

Extra scene fields (kept by the scene loader as `extra`): `stamp` (the frame's header stamp, seconds),
`labels_3d` ("measured": object centres and sizes lifted from the depth map by `region3d.lift_region`, not
ground truth; "unavailable": no depth, objects carry boxes only), `queries` (the recorded questions asked
about this frame: `{id, question, answer, path, value_m, answer_type, regions, feedback}`). Objects carry
`source` ("detections" or "query") and, when lifted, `measured: true` and `n_points`.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sr_real_core.geometry import Intrinsics
from sr_real_core.region3d import RegionLiftError, lift_region
from sr_real_core.ros.msgs import byte_buffer
from sr_real_core.scenes import Scene, SceneObject

SCENES_FILE = "scenes.jsonl"
FEEDBACK_FILE = "feedback.jsonl"
IMAGES_DIR, DEPTH_DIR = "images", "depth"
DEPTH_UNIT = 0.001  # depth PNGs hold millimetres
PNG_MAGIC = b"\x89PNG"
MEASURED, UNAVAILABLE = "measured", "unavailable"
MIN_LIFT_POINTS = 20  # fewer valid depth pixels in a box: no 3D label rather than a noisy one


@dataclass(frozen=True)
class BoxObject:
    """A 2D object of a frame before lifting: a name and a pixel box, from a detector or a query region."""

    name: str
    box: Sequence[float]
    source: str  # "detections" or "query"
    extra: dict[str, Any] = field(default_factory=dict)


def encode_colour(rgb: np.ndarray, compressed: Any | None = None) -> tuple[str, bytes]:
    """(file suffix, bytes) of a frame: the camera's own bytes when `compressed` (a CompressedImage, JPEG or
    PNG) is given, so no second lossy encoding; else a PNG."""
    if compressed is not None:
        data = bytes(byte_buffer(compressed.data))
        return (".png" if data.startswith(PNG_MAGIC) else ".jpg"), data
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("could not encode the colour frame as PNG")
    return ".png", encoded.tobytes()


def encode_depth(depth_m: np.ndarray) -> bytes:
    """A 16-bit millimetre PNG (0 = invalid) of float metres (NaN = invalid)."""
    millimetres = np.nan_to_num(depth_m / DEPTH_UNIT, nan=0.0, posinf=0.0, neginf=0.0)
    ok, encoded = cv2.imencode(".png", np.clip(np.rint(millimetres), 0, np.iinfo(np.uint16).max).astype(np.uint16))
    if not ok:
        raise OSError("could not encode the depth map as PNG")
    return encoded.tobytes()


def save_colour(folder: Path, stem: str, rgb: np.ndarray, compressed: Any | None = None) -> str:
    """Write a frame (`encode_colour`) under `folder/images`; returns the path relative to `folder`."""
    suffix, data = encode_colour(rgb, compressed)
    relative = f"{IMAGES_DIR}/{stem}{suffix}"
    (folder / relative).write_bytes(data)
    return relative


def save_depth(folder: Path, stem: str, depth_m: np.ndarray) -> str:
    """Write a depth map (`encode_depth`) under `folder/depth`; returns the path relative to `folder`."""
    relative = f"{DEPTH_DIR}/{stem}.png"
    (folder / relative).write_bytes(encode_depth(depth_m))
    return relative


def clip_box(box: Sequence[float], intrinsics: Intrinsics) -> list[float] | None:
    """The box clipped to the image, rounded to 0.1 px; None when nothing of it is inside."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, x2 = max(x1, 0.0), min(x2, float(intrinsics.width))
    y1, y2 = max(y1, 0.0), min(y2, float(intrinsics.height))
    return [round(v, 1) for v in (x1, y1, x2, y2)] if x2 - x1 >= 1 and y2 - y1 >= 1 else None


def scene_objects(objects: Sequence[BoxObject], depth_m: np.ndarray | None, intrinsics: Intrinsics,
                  counts: Counter) -> list[SceneObject]:
    """Scene objects with their boxes and, when there is depth, centre and size lifted from it (marked as
    measured). `counts` gains objects, lifted, lift_failed and outside_image."""
    result = []
    for item in objects:
        box = clip_box(item.box, intrinsics)
        if box is None:
            counts["objects_outside_image"] += 1
            continue
        counts[f"objects_from_{item.source}"] += 1
        obj = SceneObject(name=item.name, bbox_2d=box, extra={"source": item.source, **item.extra})
        if depth_m is not None:
            try:
                lifted = lift_region(depth_m, intrinsics, box=box, min_points=MIN_LIFT_POINTS).to_dict()
            except RegionLiftError:
                counts["objects_lift_failed"] += 1
            else:
                obj.center_3d, obj.size_3d = lifted["center_3d"], lifted["size_3d"]
                obj.extra |= {"measured": True, "n_points": lifted["n_points"]}
                counts["objects_lifted"] += 1
        result.append(obj)
    return result


def frame_scene(scene_id: str, image: str, intrinsics: Intrinsics, depth: str | None, objects: list[SceneObject],
                stamp: float, **extra: Any) -> Scene:
    """The scene record of one robot frame (see the module docstring for the extra fields)."""
    return Scene(scene_id=scene_id, image=image, intrinsics=intrinsics, depth=depth,
                 depth_unit=DEPTH_UNIT if depth else None, objects=objects,
                 extra={"stamp": round(stamp, 9), "labels_3d": MEASURED if depth else UNAVAILABLE, **extra})


def query_record(answer: dict[str, Any]) -> dict[str, Any]:
    """What a dataset keeps of a node answer (`~/answer` JSON, status ok)."""
    keys = ("id", "question", "answer", "path", "value_m", "answer_type", "regions")
    return {key: answer.get(key) for key in keys}


def feedback_for(query: dict[str, Any], feedback: dict[str, Any]) -> Any:
    """The feedback ({query id: feedback}) on a recorded query; None for a query asked without an id (feedback
    names its query by id, so such a query cannot be labelled; its frame is still a scene record)."""
    return None if query.get("id") is None else feedback.get(str(query["id"]))


def query_objects(answer: dict[str, Any]) -> list[BoxObject]:
    """The regions of an answered query as objects, named by the model's detection for that region when it
    gave one (else "object"; the mark, e.g. "red bbox", stays in `ref`)."""
    names = {d.get("ref"): d.get("name") for d in answer.get("detections") or [] if isinstance(d, dict)}
    objects = []
    for region in answer.get("regions") or []:
        box, ref = region.get("box"), region.get("ref")
        if isinstance(box, list) and len(box) == 4:
            objects.append(BoxObject(names.get(ref) or "object", box, "query", {"ref": ref}))
    return objects
