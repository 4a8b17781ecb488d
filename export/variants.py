"""The INT8 variant of a deploy folder (`sr-real export quantize`): a new, complete deploy folder.

The decoder's MatMul / Gemm weights are quantized to INT8 per channel with dynamic activation quantization
(onnxruntime.quantization.quantize_dynamic), for robots without a GPU; the vision and embedding graphs stay
FP32. ONNX Runtime only: the integer ops (MatMulInteger, DynamicQuantizeLinear) are not a TensorRT input.
(FP16 is exported directly from the half-precision model, `sr-real export onnx --precision fp16`: PyTorch's
own dtype rules then keep norms, softmax and rotary angles in FP32, the strongly typed graph TensorRT takes.)
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from sr_real_core.backends.manifest import read_manifest
from sr_real_core.errors import staged_output

from .onnx_export import graph_signature, write_manifest


def to_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gemm"])


def derive_folder(source: Path, out: Path, precision: str, convert: Callable[[Path, Path], None],
                  graphs: tuple[str, ...]) -> Path:
    """Copy a deploy folder to `out` with `graphs` rewritten by `convert`; written aside, renamed when complete."""
    manifest = read_manifest(source)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new --out (deploy folders are never overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with staged_output(out, folder=True) as staging:  # renamed into place only when complete
        for name in manifest["files"]:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, staging / name)
        for graph in graphs:
            path = staging / manifest["graphs"][graph]["file"]
            convert(source / manifest["graphs"][graph]["file"], path)
            manifest["graphs"][graph].update(graph_signature(path))
        manifest["precision"] = precision
        manifest["derived_from"] = {"precision": "fp32", "files": dict(manifest["files"])}
        manifest["backends"] = ["onnxruntime"]  # integer ops: not a TensorRT input
        write_manifest(staging, manifest)
    return out


def quantize_folder(source: str | Path, out: str | Path) -> Path:
    """`sr-real export quantize`: the INT8 (decoder) variant of an FP32 deploy folder."""
    source, out = Path(source), Path(out)
    precision = read_manifest(source, verify=False).get("precision")
    if precision != "fp32":
        raise ValueError(f"{source}: quantize the FP32 export (this folder is {precision})")
    return derive_folder(source, out, "int8", to_int8, ("decoder",))


def folder_bytes(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
