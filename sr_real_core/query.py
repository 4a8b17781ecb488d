"""One request type for the whole project: a question about images and the regions it names.

Every edge builds a `Query` and nothing else: `sr-real ask`, the evaluation (`Query.from_record`), the training
showcase, training's visual inputs (`sr_real.training.spatial`) and the ROS wing's query service. The engine
(`inference.SpatialReasoner`) answers it; the processor (`model.processing.SRRealProcessor`) turns its
`Region`s into `region_weights`.

The vocabularies live here, once: the reasoning paths, what a prompt may ask for, the path modes a caller may
request, the answer types, the inference backends, the region token, and the defaults shared by the edges.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PATHS: tuple[str, ...] = ("lor", "dtr")  # the two ways a completion reasons (grammar)
PROMPT_PATHS: tuple[str, ...] = (*PATHS, "auto")  # what a prompt asks for; auto: the policy picks
PATH_MODES: tuple[str, ...] = (*PROMPT_PATHS, "reference")  # what a caller requests; see `prompt_path`
DEFAULT_PATH_MODE = "reference"
ANSWER_TYPES: tuple[str, ...] = ("numeric", "choice", "yesno", "direction")
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt")
MAX_NEW_TOKENS = 512  # most tokens generated per answer, unless the caller says otherwise
# Names a region in the text ("the red bbox <region>"); the model replaces its embedding by the region's features.
REGION_TOKEN = "<region>"


def reference_path(has_regions: bool) -> str:
    """The reference's rule for choosing the prompt's path: DTR when the sample has regions, else LOR."""
    return "dtr" if has_regions else "lor"


def prompt_path(path: str, has_regions: bool) -> str:
    """The path to ask for in the prompt ("lor", "dtr" or "auto") for a path mode of `PATH_MODES`."""
    if path not in PATH_MODES:
        raise ValueError(f"path must be one of {PATH_MODES}, got {path!r}")
    return reference_path(has_regions) if path == "reference" else path


@dataclass(frozen=True, kw_only=True)
class Region:
    """A region of one of the query's images: a box `(x1, y1, x2, y2)` or an (H, W) mask, in pixels of the
    original image. `ref` is its mark name ("red bbox", "blue point": `marks.region_ref`) when known; a region
    given by a point keeps the pixel in `point` (its box is a small box around it, `marks.point_box`)."""

    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = field(default=None, compare=False)
    image_index: int = 0
    ref: str | None = None
    point: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if (self.box is None) == (self.mask is None):
            raise ValueError("a region needs exactly one of 'box' and 'mask'")
        if self.box is not None:
            object.__setattr__(self, "box", tuple(float(value) for value in self.box))
        if self.mask is not None:
            object.__setattr__(self, "mask", np.asarray(self.mask))

    @classmethod
    def from_value(cls, value: Region | Mapping[str, Any]) -> Region:
        """A Region, or a mapping with `box` or `mask` (and optionally `image_index`, `ref`, `point`)."""
        if isinstance(value, Region):
            return value
        if (value.get("box") is None) == (value.get("mask") is None):
            raise ValueError(f"a region needs exactly one of 'box' and 'mask', got keys {sorted(value)}")
        return cls(box=value.get("box"), mask=value.get("mask"), image_index=int(value.get("image_index", 0)),
                   ref=value.get("ref"), point=value.get("point"))

    @classmethod
    def from_annotation(cls, region: Mapping[str, Any]) -> Region:
        """A record's region annotation `{ref, bbox_2d, ...}` (scene, QA and mixture records) on its first image."""
        return cls(box=region["bbox_2d"], ref=region.get("ref"))

    def bounds(self) -> list[float] | None:
        """The pixel box of the region (of its mask's pixels for a mask); None for an empty mask."""
        if self.box is not None:
            return list(self.box)
        rows, cols = np.nonzero(self.mask)
        if rows.size == 0:
            return None
        return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (a mask is left out)."""
        result: dict[str, Any] = {"image_index": self.image_index}
        if self.box is not None:
            result["box"] = list(self.box)
        result.update({key: value for key, value in (("ref", self.ref), ("point", self.point)) if value})
        return result


@dataclass
class Query:
    """One question about one or more images (PIL images or (H, W, 3) RGB arrays).

    depths: per image, an (H, W) depth map or None (metres with intrinsics; relative depth without).
    intrinsics: per image, None or `geometry.Intrinsics` / {fx, fy, cx, cy[, width, height]} / 3x3 K.
    regions: `Region`s (or mappings `Region.from_value` reads) in pixels of their image; one `<region>` token
    in the question per region, in order.
    path: a path mode of `PATH_MODES`.
    answer_type: one of `ANSWER_TYPES` if known (sharpens the prompt and the parsing).
    """

    question: str
    images: Sequence[Any]
    depths: Sequence[Any] | None = None
    intrinsics: Sequence[Any] | None = None
    regions: Sequence[Region] = ()
    path: str = DEFAULT_PATH_MODE
    answer_type: str | None = None

    def __post_init__(self) -> None:
        self.regions = [Region.from_value(region) for region in self.regions]

    @property
    def prompt_path(self) -> str:
        """The path the prompt asks for ("lor", "dtr" or "auto")."""
        return prompt_path(self.path, bool(self.regions))

    @classmethod
    def from_record(cls, record: Mapping[str, Any], base_dir: str | Path | None = None, *,
                    question: str | None = None, regions: Sequence[Region | Mapping[str, Any]] | None = None,
                    path: str = DEFAULT_PATH_MODE, use_depth: bool = True, images_key: str | None = None) -> Query:
        """The query of a scene, QA or mixture record: its images (`images`: PIL images or paths, or one
        `image` path), its depth (`depth` + `depth_unit`) and intrinsics, which belong to its first image, its
        regions (`regions`: `{ref, bbox_2d}` on the first image) and its `answer_type`. Relative paths are
        resolved against `base_dir`. `question` and `regions` replace the record's own (e.g. a prompt with
        `<region>` tokens inserted)."""
        from sr_real_core.geometry import load_depth

        base = Path(base_dir) if base_dir is not None else None
        images = [_rgb(_path(image, base)) for image in _images(record, images_key)]
        depths: list[Any] = [None] * len(images)
        intrinsics: list[Any] = [None] * len(images)
        if images:
            # Tabular datasets fill a field some records lack with None; drop those.
            intrinsics[0] = {k: v for k, v in (record.get("intrinsics") or {}).items() if v is not None} or None
        if use_depth and record.get("depth") and images:
            depths[0] = load_depth(_path(record["depth"], base), record.get("depth_unit"))
        if regions is None:
            regions = [Region.from_annotation(region) for region in record.get("regions") or []]
        return cls(record["question"] if question is None else question, images, depths=depths,
                   intrinsics=intrinsics, regions=regions, path=path, answer_type=record.get("answer_type"))


def _images(record: Mapping[str, Any], images_key: str | None) -> list[Any]:
    if images_key is not None:
        return list(record[images_key])
    return list(record["images"]) if "images" in record else [record["image"]]


def _path(value: Any, base: Path | None) -> Any:
    return base / value if base is not None and isinstance(value, (str, Path)) else value


def _rgb(image: Any):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as opened:
        return opened.convert("RGB")
