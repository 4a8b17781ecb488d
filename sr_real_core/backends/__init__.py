"""Runtimes behind `SpatialReasoner`: PyTorch (a checkpoint) or ONNX Runtime / TensorRT (a deploy folder).

`load_backend(path, backend)` picks the backend named, or for `backend=None` the one the path calls for (a
deploy folder's manifest, else PyTorch), and fails at load time with the reason when it cannot run here.
Nothing here imports `export/`: exporting needs PyTorch tracing, running a deploy folder does not.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sr_real_core.backends.manifest import DeployFolderError, is_deploy_folder, read_manifest
from sr_real_core.query import BACKENDS

__all__ = ["BACKENDS", "DeployFolderError", "load_backend"]


def choose_backend(path: str | Path, backend: str | None) -> str:
    """The backend to run `path` with: the one asked for, else the deploy folder's, else torch; checked."""
    deploy = is_deploy_folder(path)
    if backend is None:
        backend = read_manifest(path, verify=False).get("backend", "onnxruntime") if deploy else "torch"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
    if backend == "torch" and deploy:
        raise DeployFolderError(f"{path} is a deploy folder (ONNX graphs, no PyTorch weights): use backend "
                                "onnxruntime or tensorrt, or give the checkpoint it was exported from")
    if backend != "torch" and not deploy:
        raise DeployFolderError(f"backend {backend} runs a deploy folder, and {path} is not one (no deploy.json): "
                                "write one with `sr-real export onnx --model CHECKPOINT --out DIR`")
    return backend


def load_backend(path: str | Path, backend: str | None = None, device: str | None = None,
                 dtype: Any = None) -> tuple[Any, Any]:
    """(processor, backend) for a checkpoint or deploy folder."""
    backend = choose_backend(path, backend)
    if backend == "torch":
        from sr_real_core.backends.pytorch import TorchBackend
        from sr_real_core.model.loading import load_model

        model, processor = load_model(path, dtype=dtype, device=device)
        return processor, TorchBackend(model)
    from sr_real_core.model.processing import SRRealProcessor

    manifest = read_manifest(path)  # every file checked before any runtime opens one
    if backend == "onnxruntime":
        from sr_real_core.backends.onnxruntime import OnnxRuntimeBackend

        runtime = OnnxRuntimeBackend(path, manifest, device=device)
    else:
        from sr_real_core.backends.tensorrt import TensorRTBackend

        runtime = TensorRTBackend(path, manifest, device=device)
    return SRRealProcessor.from_pretrained(path, local_files_only=True), runtime
