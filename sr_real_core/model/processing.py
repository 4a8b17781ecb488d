"""SR-REAL processor: Qwen2.5-VL's processor plus regions, depth and intrinsics.

Besides Qwen2.5-VL's inputs it returns, per batch:
- `region_weights` (num_region_tokens, num_image_tokens): for each `<region>` token of the text, in reading
  order, the fraction of each image token's area that the region covers (a box or a mask, in pixels of the
  original image). Image tokens are the merged patches, in the order the model receives them.
- `image_points` (num_image_tokens, 3): the mean 3D point of each image token's valid depth pixels; metric
  camera-frame metres (OpenCV: +x right, +y down, +z forward; `geometry.depth_to_points`, lens distortion
  included) with intrinsics, the reference's pseudo-3D without; NaN where unknown (no depth for that image,
  or no valid pixel in the token's cell), and the model adds nothing there.
- `region_points` (num_region_tokens, 6), with depth: each region's 3D evidence, its centre (x, y, z) and
  extent (x, y, z) from its own depth pixels: with intrinsics the region's metric lift
  (`region3d.lift_region`: the dominant surface, flying pixels and the support surface dropped); without, the
  per-axis median and 10th-90th percentile range of its pseudo-3D points. NaN for a region without depth or
  without valid pixels. The model reads it through a direct learned path (`modeling.RegionPointEncoder`).
- with `evidence_text` (a processor setting, off by default, saved in processor_config.json), each
  `<region>` whose evidence is metric (depth with intrinsics) is also followed in the text by that evidence
  written out, ` (measured: centre x,y,z m, size w,h,d m)` with two decimals, the numbers of
  `<3d_box center=...>`: something a decoder can copy token by token. It is the visible surface's lift
  (`region3d.lift_region`), not the answer: the policy still writes the object's centre in `<detect>` and
  reasons from there. Relative depth (no intrinsics) is not written: its numbers are not metres. Off by
  default: the random-init tiny model did not learn to copy it within the quickstart (training/README.md).
The image processor resizes each image to multiples of patch_size * merge_size; a token's cell in the original
image is the same fraction of the image as in the resized one, so everything is computed on the original pixels.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers import AddedToken, AutoProcessor, Qwen2_5_VLProcessor
from transformers.image_utils import get_image_size, make_flat_list_of_images, to_numpy_array

from sr_real_core.geometry import Intrinsics, depth_to_points
from sr_real_core.inputs import fit_intrinsics
from sr_real_core.model.configuration import SRRealConfig
from sr_real_core.query import REGION_TOKEN, Region
from sr_real_core.region3d import RegionLiftError, lift_region


def to_intrinsics(value: Any, width: int, height: int) -> Intrinsics:
    """`Intrinsics` of an image of width x height (`inputs.fit_intrinsics`: rescaled only when calibrated at
    another resolution of the same aspect ratio)."""
    return fit_intrinsics(value, width, height)[0]


def cell_index(height: int, width: int, grid_h: int, grid_w: int) -> np.ndarray:
    """(H, W) index of the image token whose cell contains each pixel."""
    rows = np.arange(height) * grid_h // height
    cols = np.arange(width) * grid_w // width
    return rows[:, None] * grid_w + cols[None, :]


def box_weights(box: Sequence[float], height: int, width: int, grid_h: int, grid_w: int) -> np.ndarray:
    """Fraction of each token cell's area inside the box (exact, so a box smaller than a cell still counts)."""
    x1, y1, x2, y2 = box
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise ValueError(f"region box {tuple(box)} is not a box inside the {width}x{height} image "
                         "(need 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, absolute pixels)")

    def coverage(lo: float, hi: float, size: int, cells: int) -> np.ndarray:
        edges = np.arange(cells + 1) * size / cells
        return np.clip(np.minimum(hi, edges[1:]) - np.maximum(lo, edges[:-1]), 0, None) / (size / cells)

    return np.outer(coverage(y1, y2, height, grid_h), coverage(x1, x2, width, grid_w)).ravel()


def mask_weights(mask: np.ndarray, height: int, width: int, grid_h: int, grid_w: int) -> np.ndarray:
    """Mean of the mask over each token cell."""
    if mask.shape != (height, width):
        raise ValueError(f"region mask has shape {mask.shape}, the image is {height}x{width} (H x W)")
    mask = mask.astype(np.float64)
    if not mask.any():
        raise ValueError("region mask is empty")
    cells = cell_index(height, width, grid_h, grid_w).ravel()
    return np.bincount(cells, mask.ravel(), grid_h * grid_w) / np.bincount(cells, minlength=grid_h * grid_w)


def pseudo_points(depth: np.ndarray) -> np.ndarray:
    """The reference's pseudo-3D of a relative depth map, (H, W, 3): pixel coordinates normalised to [-1, 1]
    times z, and z = 2 * depth / max(depth) - 1. NaN where the depth is invalid."""
    height, width = depth.shape
    valid = np.isfinite(depth) & (depth > 0)
    z = np.where(valid, 2.0 * depth / (depth[valid].max() if valid.any() else 1.0) - 1.0, np.nan)
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    x = (2.0 * u / max(width - 1, 1) - 1.0) * z
    y = (2.0 * v / max(height - 1, 1) - 1.0) * z
    return np.stack([x, y, z], axis=-1)


def token_points(points: np.ndarray, grid_h: int, grid_w: int) -> np.ndarray:
    """(grid_h * grid_w, 3) mean of each token cell's valid (finite) points of an (H, W, 3) map; NaN if none."""
    height, width, _ = points.shape
    valid = np.isfinite(points).all(-1)
    cells = cell_index(height, width, grid_h, grid_w)[valid]
    counts = np.bincount(cells, minlength=grid_h * grid_w)
    means = np.full((grid_h * grid_w, 3), np.nan)
    seen = counts > 0
    for axis in range(3):
        sums = np.bincount(cells, points[..., axis][valid], grid_h * grid_w)
        means[seen, axis] = sums[seen] / counts[seen]
    return means


def region_evidence(region: Region, depth: np.ndarray, camera: Intrinsics | None,
                    pixels: np.ndarray) -> np.ndarray:
    """(6,) centre and extent of one region from its image's depth (see the module doc); NaN if unknown.
    pixels: the image's (H, W, 3) points (metric or pseudo-3D)."""
    unknown = np.full(6, np.nan)
    if camera is not None:
        try:
            lifted = lift_region(depth, camera, box=region.box, mask=region.mask)
        except RegionLiftError:
            return unknown
        return np.concatenate([lifted.center, lifted.size])
    if region.mask is not None:
        inside = np.asarray(region.mask) != 0
    else:
        x1, y1, x2, y2 = region.box
        inside = np.zeros(depth.shape, bool)
        inside[int(y1):int(np.ceil(y2)), int(x1):int(np.ceil(x2))] = True
    points = pixels[inside]
    points = points[np.isfinite(points).all(-1)]
    if not len(points):
        return unknown
    low, centre, high = np.percentile(points, (10, 50, 90), axis=0)
    return np.concatenate([centre, high - low])


def evidence_words(row: np.ndarray) -> str:
    """The text that follows a `<region>` token for its metric evidence row (centre, extent); '' if unknown."""
    if not np.isfinite(row).all():
        return ""
    centre, size = (",".join(f"{value:.2f}" for value in part) for part in (row[:3], row[3:]))
    return f" (measured: centre {centre} m, size {size} m)"


def _per_image(values: Any, num_images: int, name: str) -> list:
    """One entry per image of the batch (a single value is allowed for a single image)."""
    if values is None:
        return [None] * num_images
    if not isinstance(values, (list, tuple)) or (num_images == 1 and len(values) != 1):
        values = [values]
    if len(values) != num_images:
        raise ValueError(f"got {len(values)} {name} for {num_images} images (give one per image, None for none)")
    return list(values)


def _per_sample(regions: Any, num_samples: int) -> list[list[Region]]:
    """Regions as one list per sample; a flat list of regions is allowed for a single sample."""
    if regions is None:
        return [[] for _ in range(num_samples)]
    regions = list(regions)
    if num_samples == 1 and all(isinstance(r, (Region, Mapping)) for r in regions):
        regions = [regions]
    if len(regions) != num_samples:
        raise ValueError(f"got regions for {len(regions)} samples, the batch has {num_samples}")
    return [[Region.from_value(r) for r in sample or []] for sample in regions]


class SRRealProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor (image processor, tokenizer, chat template) plus regions, depth and intrinsics."""

    def __init__(self, image_processor=None, tokenizer=None, video_processor=None, chat_template=None,
                 evidence_text: bool = False, **kwargs):
        if REGION_TOKEN not in tokenizer.get_vocab():  # a plain Qwen2.5-VL tokenizer gains the region token
            tokenizer.add_tokens([AddedToken(REGION_TOKEN, special=True, normalized=False)], special_tokens=True)
        super().__init__(image_processor, tokenizer, video_processor, chat_template=chat_template, **kwargs)
        self.region_token = REGION_TOKEN
        self.region_token_id = tokenizer.convert_tokens_to_ids(REGION_TOKEN)
        self.evidence_text = bool(evidence_text)

    @property
    def model_input_names(self):
        return super().model_input_names + ["region_weights", "region_points", "image_points"]

    def chat_prompt(self, text: str, num_images: int = 1) -> str:
        """One user turn (the images, then the text) in the chat template, ready for the assistant's answer."""
        content = [{"type": "image"}] * num_images + [{"type": "text", "text": text}]
        return self.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                        add_generation_prompt=True)

    def __call__(self, images=None, text=None, videos=None, regions=None, depths=None, intrinsics=None,
                 **kwargs):
        """Qwen2.5-VL's inputs plus `region_weights` and `image_points` (torch tensors; see the module doc).

        regions: per sample, a list of `sr_real_core.query.Region` (or a mapping `Region.from_value` reads);
            `image_index` counts the sample's own images. The i-th region fills the sample's i-th `<region>` token.
        depths: per image of the batch, an (H, W) depth map of the original image or None; metric metres with
            intrinsics, relative depth without. NaN or <= 0 marks invalid pixels.
        intrinsics: per image, None or fx, fy, cx, cy (+ width, height if calibrated at another resolution).
        """
        texts = [text] if isinstance(text, str) else list(text or [])
        flat_images = make_flat_list_of_images(images) if images is not None else []
        sizes = [get_image_size(to_numpy_array(image)) for image in flat_images]
        images_per_sample = [t.count(self.image_token) for t in texts]
        regions = _per_sample(regions, len(texts))
        for index, (t, sample_regions) in enumerate(zip(texts, regions)):
            if t.count(self.region_token) != len(sample_regions):
                raise ValueError(f"sample {index} has {t.count(self.region_token)} {self.region_token} tokens but "
                                 f"{len(sample_regions)} regions")
        depths = _per_image(depths, len(flat_images), "depth maps")
        intrinsics = _per_image(intrinsics, len(flat_images), "intrinsics")

        if not flat_images and (any(regions) or any(d is not None for d in depths)):
            raise ValueError("regions and depth maps need the images they belong to")
        has_depth = any(d is not None for d in depths)
        if has_depth:
            depths, cameras, pixels = self._pixel_points(depths, intrinsics, sizes)
            if any(regions):
                region_points = self._region_points(regions, images_per_sample, depths, cameras, pixels)
                if self.evidence_text:
                    texts = self._with_evidence_text(texts, regions, images_per_sample, region_points, cameras)
                    text = texts[0] if isinstance(text, str) else texts

        kwargs.setdefault("return_tensors", "pt")
        batch = super().__call__(images=images, text=text, videos=videos, **kwargs)
        if not flat_images:
            return batch
        merge = self.image_processor.merge_size
        grids = [(int(h) // merge, int(w) // merge) for _, h, w in batch["image_grid_thw"].tolist()]
        offsets = np.cumsum([0] + [h * w for h, w in grids])
        if any(regions):
            batch["region_weights"] = self._region_weights(regions, images_per_sample, sizes, grids, offsets)
        if has_depth:
            batch["image_points"] = self._image_points(pixels, grids, offsets)
            if any(regions):
                batch["region_points"] = region_points
        return batch

    def _with_evidence_text(self, texts, regions, images_per_sample, region_points, cameras) -> list[str]:
        """Each sample's text with every metric region's evidence written after its `<region>` (module doc)."""
        rows = iter(zip(region_points.numpy(), self._region_images(regions, images_per_sample)))
        result = []
        for sample_text, sample_regions in zip(texts, regions):
            pieces = sample_text.split(self.region_token)
            for index in range(len(sample_regions)):
                row, (_, image) = next(rows)
                words = evidence_words(row) if cameras[image] is not None else ""
                pieces[index + 1] = words + pieces[index + 1]
            result.append(self.region_token.join(pieces))
        return result

    @staticmethod
    def _region_images(regions, images_per_sample):
        """(region, index of its image in the batch) for every region, in reading order."""
        first_image = np.cumsum([0] + images_per_sample)
        for sample, sample_regions in enumerate(regions):
            for region in sample_regions:
                if not 0 <= region.image_index < images_per_sample[sample]:
                    raise ValueError(f"region of sample {sample} refers to image {region.image_index}, the sample "
                                     f"has {images_per_sample[sample]} images")
                yield region, first_image[sample] + region.image_index

    @classmethod
    def _region_weights(cls, regions, images_per_sample, sizes, grids, offsets) -> torch.Tensor:
        rows = []
        for region, image in cls._region_images(regions, images_per_sample):
            (height, width), (grid_h, grid_w) = sizes[image], grids[image]
            cells = (box_weights(region.box, height, width, grid_h, grid_w) if region.box is not None
                     else mask_weights(region.mask, height, width, grid_h, grid_w))
            row = np.zeros(offsets[-1])
            row[offsets[image]:offsets[image + 1]] = cells
            rows.append(row)
        return torch.tensor(np.stack(rows), dtype=torch.float32)

    @staticmethod
    def _pixel_points(depths, intrinsics, sizes) -> tuple[list, list, list]:
        """Per image: the depth map (float32), its `Intrinsics` (None: relative depth) and its (H, W, 3) points,
        metric with intrinsics, pseudo-3D without; Nones for an image without depth."""
        maps, cameras, pixels = [], [], []
        for image, (depth, camera) in enumerate(zip(depths, intrinsics)):
            if depth is None:
                maps.append(None), cameras.append(None), pixels.append(None)
                continue
            depth = np.asarray(depth, dtype=np.float32).squeeze()
            height, width = sizes[image]
            if depth.shape != (height, width):
                raise ValueError(f"depth map of image {image} has shape {depth.shape}, the image is "
                                 f"{height}x{width} (H x W): give depth at the image's resolution")
            camera = None if camera is None else to_intrinsics(camera, width, height)
            maps.append(depth)
            cameras.append(camera)
            pixels.append(pseudo_points(depth) if camera is None else depth_to_points(depth, camera))
        return maps, cameras, pixels

    @staticmethod
    def _image_points(pixels, grids, offsets) -> torch.Tensor:
        points = np.full((offsets[-1], 3), np.nan)
        for image, image_pixels in enumerate(pixels):
            if image_pixels is not None:
                points[offsets[image]:offsets[image + 1]] = token_points(image_pixels, *grids[image])
        return torch.tensor(points, dtype=torch.float32)

    @classmethod
    def _region_points(cls, regions, images_per_sample, depths, cameras, pixels) -> torch.Tensor:
        rows = [np.full(6, np.nan) if depths[image] is None
                else region_evidence(region, depths[image], cameras[image], pixels[image])
                for region, image in cls._region_images(regions, images_per_sample)]
        return torch.tensor(np.stack(rows), dtype=torch.float32)


AutoProcessor.register(SRRealConfig, SRRealProcessor, exist_ok=True)
