"""ONNX Runtime backend: runs a deploy folder's graphs (CPU; CUDA where onnxruntime-gpu and a GPU are present)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sr_real_core.backends.host import GreedyDecoder
from sr_real_core.backends.manifest import DeployFolderError


def providers_for(device: str | None) -> list[str]:
    """Execution providers for a device: "cpu", "cuda[:N]", or None (CUDA if this onnxruntime has it, else CPU).
    TensorRT is reached through the tensorrt backend (engines built and checked on the target), not the EP."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if device is None:
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise DeployFolderError(f"device {device}: this onnxruntime has no CUDA execution provider (available: "
                                    f"{', '.join(available)}); install onnxruntime-gpu or use device cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ValueError(f"device {device!r}: the onnxruntime backend runs on cpu or cuda[:N]")


class OnnxRuntimeBackend:
    """`Backend` over the vision, embed and decoder graphs of a deploy folder (see `sr_real_core.backends.host`)."""

    def __init__(self, folder: str | Path, manifest: Mapping[str, Any], device: str | None = None,
                 threads: int | None = None):
        import onnxruntime

        folder = Path(folder)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or int(os.environ.get("SR_REAL_ORT_THREADS", "0"))
        options.log_severity_level = 3
        providers = providers_for(device)
        self.sessions = {}
        for name, graph in manifest["graphs"].items():
            try:
                self.sessions[name] = onnxruntime.InferenceSession(str(folder / graph["file"]), options,
                                                                   providers=providers)
            except Exception as error:  # onnxruntime raises its own exception types, all meaning "cannot load"
                raise DeployFolderError(f"{folder}: onnxruntime cannot load {graph['file']}: "
                                        f"{str(error).splitlines()[0]}") from None
        self.decoder = GreedyDecoder(self, manifest)

    def run(self, graph: str, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self.sessions[graph].run(None, dict(feeds))

    def generate(self, inputs: Mapping[str, Any], max_new_tokens: int, constraint=None) -> list[list[int]]:
        return self.decoder.generate(inputs, max_new_tokens, constraint)
