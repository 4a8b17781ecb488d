"""TensorRT backend: runs the engines `sr-real export tensorrt` built into DEPLOY_DIR/engines on this machine.

Engines are specific to the TensorRT version and the GPU they were built with (and, on Jetson, to JetPack):
`engines/engines.json` records both, and a folder built elsewhere is refused with what differs. Device
memory is held in PyTorch CUDA tensors (PyTorch ships for Jetson), execution is TensorRT 10's
name-based API (`set_input_shape`, `set_tensor_address`, `execute_async_v3`); the decoder has one
execution context per optimization profile (0: prefill, 1: decode). The host loop is the ONNX Runtime
backend's (`sr_real_core.backends.host`).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sr_real_core.backends.host import GreedyDecoder
from sr_real_core.backends.manifest import DeployFolderError, verify_files

ENGINES_DIR = "engines"
SIDECAR_NAME = "engines.json"
PREFILL_PROFILE, DECODE_PROFILE = 0, 1


def missing_requirements() -> list[str]:
    """What this machine lacks to build or run engines (empty: TensorRT and a CUDA GPU are here)."""
    missing = []
    try:
        import tensorrt  # noqa: F401
    except ImportError as error:
        missing.append(f"the TensorRT Python package (import tensorrt: {error}; on Jetson it comes with JetPack, "
                       "elsewhere `pip install tensorrt`)")
    try:
        import torch

        if not torch.cuda.is_available():
            missing.append("a CUDA GPU (torch.cuda.is_available() is False)")
    except ImportError:
        missing.append("PyTorch with CUDA (device buffers)")
    return missing


def platform_description() -> dict[str, Any]:
    """The versions an engine is tied to: TensorRT, CUDA, JetPack (on Jetson), GPU name and compute capability."""
    import tensorrt
    import torch

    major, minor = torch.cuda.get_device_capability()
    return {"tensorrt": tensorrt.__version__, "cuda": torch.version.cuda, "jetpack": jetpack_release(),
            "gpu": torch.cuda.get_device_name(), "compute_capability": f"{major}.{minor}"}


def jetpack_release() -> str | None:
    """The L4T release on a Jetson (/etc/nv_tegra_release, e.g. "R36 (release), REVISION: 4.3"), else None."""
    path = Path("/etc/nv_tegra_release")
    return path.read_text().splitlines()[0].lstrip("# ").strip() if path.is_file() else None


def read_sidecar(folder: Path) -> dict[str, Any]:
    """The engines' sidecar, checked against this machine and the engine files' hashes."""
    path = folder / ENGINES_DIR / SIDECAR_NAME
    if not path.is_file():
        raise DeployFolderError(f"{folder}: no TensorRT engines ({ENGINES_DIR}/{SIDECAR_NAME} is missing); build them "
                                f"on this machine with `sr-real export tensorrt {folder}`")
    sidecar = json.loads(path.read_text())
    here = platform_description()
    differing = [f"{key} {sidecar['platform'].get(key)} (here {here[key]})" for key in
                 ("tensorrt", "gpu", "compute_capability", "jetpack") if sidecar["platform"].get(key) != here[key]]
    if differing:
        raise DeployFolderError(f"{folder}: the TensorRT engines were built elsewhere: {'; '.join(differing)}. "
                                f"Engines are not portable: rebuild with `sr-real export tensorrt {folder}` here")
    verify_files(folder, {f"{ENGINES_DIR}/{name}": digest for name, digest in sidecar["files"].items()})
    return sidecar


class TensorRTBackend:
    """`Backend` over TensorRT engines of the vision, embed and decoder graphs."""

    def __init__(self, folder: str | Path, manifest: Mapping[str, Any], device: str | None = None):
        missing = missing_requirements()
        if missing:
            raise DeployFolderError(f"backend tensorrt cannot run here: missing {' and '.join(missing)}")
        import tensorrt
        import torch

        folder = Path(folder)
        self.device = torch.device(device or "cuda")
        sidecar = read_sidecar(folder)
        self.logger = tensorrt.Logger(tensorrt.Logger.WARNING)
        runtime = tensorrt.Runtime(self.logger)
        self.engines, self.contexts = {}, {}
        for graph, name in sidecar["engines"].items():
            engine = runtime.deserialize_cuda_engine((folder / ENGINES_DIR / name).read_bytes())
            if engine is None:
                raise DeployFolderError(f"{folder}: TensorRT cannot deserialize {ENGINES_DIR}/{name}")
            self.engines[graph] = engine
            self.contexts[graph] = [engine.create_execution_context() for _ in range(engine.num_optimization_profiles)]
        self.stream = torch.cuda.Stream(self.device)
        for graph, contexts in self.contexts.items():
            for profile, context in enumerate(contexts):
                context.set_optimization_profile_async(profile, self.stream.cuda_stream)
        self.decoder = GreedyDecoder(self, manifest)

    def _context(self, graph: str, feeds: Mapping[str, np.ndarray]):
        contexts = self.contexts[graph]
        if graph == "decoder" and len(contexts) > DECODE_PROFILE and feeds["inputs_embeds"].shape[1] == 1 \
                and feeds["past_key_0"].shape[2] > 0:
            return contexts[DECODE_PROFILE]
        return contexts[PREFILL_PROFILE]

    def run(self, graph: str, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        import tensorrt
        import torch

        engine, context = self.engines[graph], self._context(graph, feeds)
        keep = []
        for name, value in feeds.items():
            tensor = torch.from_numpy(np.ascontiguousarray(value)).to(self.device)
            keep.append(tensor)
            context.set_input_shape(name, tuple(tensor.shape))
            context.set_tensor_address(name, tensor.data_ptr())
        outputs = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            if engine.get_tensor_mode(name) != tensorrt.TensorIOMode.OUTPUT:
                continue
            dtype = torch.from_numpy(np.zeros(0, tensorrt.nptype(engine.get_tensor_dtype(name)))).dtype
            tensor = torch.empty(tuple(context.get_tensor_shape(name)), dtype=dtype, device=self.device)
            context.set_tensor_address(name, tensor.data_ptr())
            outputs.append(tensor)
        if not context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError(f"TensorRT failed to run the {graph} engine")
        self.stream.synchronize()
        return [tensor.cpu().numpy() for tensor in outputs]

    def generate(self, inputs: Mapping[str, Any], max_new_tokens: int, constraint=None) -> list[list[int]]:
        return self.decoder.generate(inputs, max_new_tokens, constraint)
