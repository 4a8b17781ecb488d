"""Depth for images without a depth sensor: a monocular depth estimator from a local transformers checkpoint.

Any `AutoModelForDepthEstimation` checkpoint works (Depth Anything V2 Small is a good default), loaded from a
local directory only: download it on a machine with network access and pass its path.

Relative checkpoints (Depth Anything's default) predict relative inverse depth, known only up to scale and
shift. `MonocularDepthEstimator` turns it into relative depth (larger = farther, max 1), which the processor
uses through the reference's pseudo-3D encoding: pass it WITHOUT intrinsics, because back-projecting a
relative depth with real intrinsics would give points in wrong units. Metric checkpoints
(`depth_estimation_type == "metric"`) return metres, usable with intrinsics like a sensor's depth.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class MonocularDepthEstimator:
    """`estimator(image) -> (H, W) float32 depth` of a PIL image or (H, W, 3) RGB array; see `metric`."""

    def __init__(self, model_path: str | Path, device: str = "cpu"):
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"no depth-estimation checkpoint at {str(path)!r} (it needs config.json and safetensors weights): "
                "download one, e.g. Depth Anything V2 Small, on a machine with network access and pass its "
                "directory; without it, images without a depth map get no 3D encoding")
        self.image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True,
                                                                 use_safetensors=True).to(device).eval()
        self.metric = getattr(self.model.config, "depth_estimation_type", "relative") == "metric"

    def __call__(self, image) -> np.ndarray:
        import torch

        array = np.asarray(image)
        inputs = self.image_processor(images=image, return_tensors="pt").to(self.model.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        prediction = self.image_processor.post_process_depth_estimation(outputs, target_sizes=[array.shape[:2]])
        depth = prediction[0]["predicted_depth"].float().cpu().numpy()
        if self.metric:
            return depth.astype(np.float32)
        return relative_depth_from_disparity(depth)


def relative_depth_from_disparity(disparity: np.ndarray) -> np.ndarray:
    """Relative depth in (0, 1] (1 = farthest) from relative inverse depth; NaN where disparity <= 0."""
    depth = np.full(disparity.shape, np.nan, dtype=np.float32)
    positive = np.isfinite(disparity) & (disparity > 0)
    if positive.any():
        depth[positive] = 1.0 / disparity[positive]
        depth[positive] /= depth[positive].max()
    return depth
