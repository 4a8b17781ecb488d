"""`sr-real export tensorrt`: TensorRT engines of a deploy folder, built on the machine that will run them.

TensorRT 10 Python API: the ONNX parser fills a strongly typed network (the graph's own types: with the FP16
export, FP16 everywhere except the FP32 norms, softmax and rotary angles PyTorch kept), optimization
profiles bound every dynamic axis (the decoder gets two: prefill with an empty cache, and one-token decode
with a long one), a timing cache makes rebuilds fast, and engines/engines.json records the TensorRT / CUDA /
JetPack versions and the GPU so that `TensorRTBackend` refuses an engine built elsewhere.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from sr_real_core.backends.manifest import cache_names, read_manifest, sha256_file
from sr_real_core.backends.tensorrt import (
    ENGINES_DIR,
    SIDECAR_NAME,
    missing_requirements,
    platform_description,
)

TIMING_CACHE = "timing.cache"


class MissingRequirement(RuntimeError):
    """TensorRT or a GPU is not here; the message says which."""


@dataclass(frozen=True)
class BuildSettings:
    max_batch: int = 1
    max_sequence: int = 2048  # prompt + generated tokens
    max_image_tokens: int = 1280  # merged tokens per batch (x4 patches)
    max_images: int = 4
    max_regions: int = 8
    workspace_gib: float = 4.0


def profiles(graph: str, settings: BuildSettings, model: dict) -> list[dict[str, tuple[tuple, tuple, tuple]]]:
    """(min, opt, max) shape of every input, per optimization profile."""
    b, s = settings.max_batch, settings.max_sequence
    hidden, heads, head_dim = model["hidden_size"], model["num_kv_heads"], model["head_dim"]
    if graph == "embed":
        return [{"input_ids": ((1, 1), (1, 256), (b, s))}]
    if graph == "vision":
        t, unit = settings.max_image_tokens, model["spatial_merge_size"] ** 2
        opt = t // 2
        return [{"pixel_values": ((unit, model["patch_dim"]), (opt * unit, model["patch_dim"]),
                                  (t * unit, model["patch_dim"])),
                 "vision_position_ids": ((unit, 2), (opt * unit, 2), (t * unit, 2)),
                 "window_index": ((1,), (opt,), (t,)), "reverse_window_index": ((1,), (opt,), (t,)),
                 "cu_seqlens": ((2,), (2,), (settings.max_images + 1,)),
                 "cu_window_seqlens": ((2,), (opt // 16 + 2,), (t + 1,)),
                 "image_points": ((1, 3), (opt, 3), (t, 3)),
                 "region_weights": ((1, 1), (2, opt), (settings.max_regions, t))}]
    past = cache_names("past", model["num_layers"])

    def decoder_profile(new: tuple[int, int, int], cached: tuple[int, int, int]):
        shapes = {"inputs_embeds": tuple((1 if i == 0 else b, n, hidden) for i, n in enumerate(new)),
                  "position_ids": tuple((3, 1 if i == 0 else b, n) for i, n in enumerate(new)),
                  "attention_mask": tuple((1 if i == 0 else b, n + c) for i, (n, c) in enumerate(zip(new, cached)))}
        kv = tuple((1 if i == 0 else b, heads, c, head_dim) for i, c in enumerate(cached))
        return shapes | dict.fromkeys(past, kv)

    return [decoder_profile((1, 512, s), (0, 0, 0)),  # prefill: the whole prompt, empty cache
            decoder_profile((1, 1, 1), (1, 512, s - 1))]  # decode: one token, the cache so far


def build_engine(onnx_path: Path, engine_path: Path, graph: str, settings: BuildSettings, model: dict,
                 cache_path: Path) -> None:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"TensorRT's ONNX parser rejects {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings.workspace_gib * (1 << 30)))
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    for shapes in profiles(graph, settings, model):
        profile = builder.create_optimization_profile()
        for name, (low, opt, high) in shapes.items():
            profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ValueError(f"TensorRT could not build an engine from {onnx_path.name} (see the log above)")
    engine_path.write_bytes(bytes(serialized))
    cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))


def build_engines(folder: str | Path, settings: BuildSettings = BuildSettings()) -> Path:
    """Build all engines into DEPLOY_DIR/engines (replaced as a whole when complete); returns that folder."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if "tensorrt" not in manifest.get("backends", ["onnxruntime", "tensorrt"]):
        raise ValueError(f"{folder} is a {manifest['precision']} folder for ONNX Runtime only; build engines from "
                         "the fp16 (or fp32) export")
    missing = missing_requirements()
    if missing:
        raise MissingRequirement(f"cannot build TensorRT engines here: missing {' and '.join(missing)}. Build on "
                                 "the target itself (engines are tied to its GPU, TensorRT and JetPack)")
    target = folder / ENGINES_DIR
    staging = Path(tempfile.mkdtemp(prefix=".engines.", dir=folder))
    try:
        if (target / TIMING_CACHE).is_file():
            shutil.copy2(target / TIMING_CACHE, staging / TIMING_CACHE)
        engines = {}
        for graph, spec in manifest["graphs"].items():
            engines[graph] = f"{graph}.plan"
            build_engine(folder / spec["file"], staging / engines[graph], graph, settings, manifest["model"],
                         staging / TIMING_CACHE)
        sidecar = {"platform": platform_description(), "settings": asdict(settings), "engines": engines,
                   "built_from": {g: manifest["files"][s["file"]] for g, s in manifest["graphs"].items()},
                   "files": {name: sha256_file(staging / name) for name in engines.values()}}
        (staging / SIDECAR_NAME).write_text(json.dumps(sidecar, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
