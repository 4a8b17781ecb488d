"""`sr-real export onnx`: an SR-REAL checkpoint (LoRA adapters merged first) -> a deploy folder.

Three graphs with dynamic batch, sequence, past length and image-grid sizes (see graphs.py), exported with
the dynamo-based `torch.onnx.export`, plus the tokenizer, processor config, chat template and a manifest
(`sr_real_core.backends.manifest`). The folder is written next to its destination and renamed when complete.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sr_real_core.backends.host import vision_feeds
from sr_real_core.backends.manifest import (
    DECODER_INPUTS,
    EMBED_INPUTS,
    EMBED_OUTPUTS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_NAME,
    VISION_INPUTS,
    VISION_OUTPUTS,
    cache_names,
    sha256_file,
)
from sr_real_core.errors import staged_output

from .graphs import DecoderGraph, EmbedGraph, VisionGraph

OPSET = 18  # TensorRT 10 (JetPack 6.x / 7.x) parses opsets up to 20+; 18 is what every runtime here agrees on
EXTERNAL_DATA_BYTES = 1 << 30  # graphs with more weights than this keep them in a .onnx.data file (protobuf: 2 GB)


def host_constants(model, processor) -> dict[str, Any]:
    """What the host loop needs to know about the model (kept in the manifest, so no config parsing at run time)."""
    text, vision = model.config.text_config, model.config.vision_config
    eos = model.generation_config.eos_token_id
    return {
        "num_layers": text.num_hidden_layers, "num_kv_heads": text.num_key_value_heads,
        "head_dim": text.hidden_size // text.num_attention_heads, "hidden_size": text.hidden_size,
        "vocab_size": text.vocab_size, "image_token_id": model.config.image_token_id,
        "region_token_id": model.config.region_token_id, "spatial_merge_size": vision.spatial_merge_size,
        "window_size": vision.window_size, "patch_size": vision.patch_size,
        "patch_dim": vision.in_channels * vision.temporal_patch_size * vision.patch_size ** 2,
        "eos_token_ids": sorted(eos if isinstance(eos, list) else [eos]),
        "pad_token_id": model.generation_config.pad_token_id if model.generation_config.pad_token_id is not None
        else processor.tokenizer.pad_token_id,
    }


# Dynamic axes of each graph input, by name; every other axis is fixed by the model.
DYNAMIC_AXES = {
    "pixel_values": {0: "patches"}, "vision_position_ids": {0: "patches"}, "window_index": {0: "image_tokens"},
    "reverse_window_index": {0: "image_tokens"}, "cu_seqlens": {0: "images_plus_1"},
    "cu_window_seqlens": {0: "windows_plus_1"}, "image_points": {0: "image_tokens"},
    "region_weights": {0: "regions", 1: "image_tokens"}, "region_points": {0: "regions"}, "input_ids": {0: "batch", 1: "sequence"},
    "inputs_embeds": {0: "batch", 1: "sequence"}, "position_ids": {1: "batch", 2: "sequence"},
    "attention_mask": {0: "batch", 1: "total_length"}, "past": {0: "batch", 2: "past_length"},
}


def example_inputs(constants: dict[str, Any]) -> dict[str, tuple[dict[str, torch.Tensor], tuple[str, ...]]]:
    """Example inputs and output names of each graph, sized away from 0 and 1 so no dimension is specialised."""
    generator = torch.Generator().manual_seed(0)
    grid = torch.tensor([[1, 6, 8], [1, 4, 6]])
    patches = int(grid.prod(-1).sum())
    merged = patches // constants["spatial_merge_size"] ** 2
    fake = {"pixel_values": torch.randn(patches, constants["patch_dim"], generator=generator),
            "image_grid_thw": grid, "image_points": torch.randn(merged, 3, generator=generator),
            "region_weights": torch.rand(3, merged, generator=generator),
            "region_points": torch.randn(3, 6, generator=generator)}
    vision = {k: torch.from_numpy(v) for k, v in vision_feeds(fake, constants).items()}
    batch, new, past = 2, 3, 5
    kv = (batch, constants["num_kv_heads"], past, constants["head_dim"])
    decoder = {"inputs_embeds": torch.randn(batch, new, constants["hidden_size"], generator=generator),
               "position_ids": torch.arange(past, past + new).expand(3, batch, new).contiguous(),
               "attention_mask": torch.ones(batch, past + new, dtype=torch.long)}
    decoder |= {name: torch.randn(kv, generator=generator) for name in cache_names("past", constants["num_layers"])}
    return {"vision": (vision, VISION_OUTPUTS),
            "embed": ({"input_ids": torch.randint(0, 100, (batch, new), generator=generator)}, EMBED_OUTPUTS),
            "decoder": (decoder, ("logits", *cache_names("present", constants["num_layers"])))}


def _axes(name: str) -> dict[int, str]:
    return DYNAMIC_AXES["past" if name.startswith("past_") else name]


def _arguments(inputs: dict[str, torch.Tensor], fixed: int) -> tuple[tuple, tuple]:
    """Positional arguments and their dynamic shapes; inputs after the first `fixed` go in one tuple (the
    decoder's `past_key_values`)."""
    tensors = list(inputs.values())
    shapes = [dict.fromkeys(_axes(name), torch.export.Dim.AUTO) for name in inputs]
    if len(tensors) == fixed:
        return tuple(tensors), tuple(shapes)
    return (*tensors[:fixed], tuple(tensors[fixed:])), (*shapes[:fixed], tuple(shapes[fixed:]))


def name_dimensions(path: Path, inputs: dict[str, torch.Tensor]) -> None:
    """Replace the exporter's symbols (s0, s12 + s3, ...) by the axis names of DYNAMIC_AXES, in and out."""
    import re

    import onnx

    model = onnx.load(str(path), load_external_data=False)
    symbols: dict[str, str] = {}
    for value in model.graph.input:
        for axis, name in _axes(value.name).items():
            symbols.setdefault(value.type.tensor_type.shape.dim[axis].dim_param, name)
    pattern = re.compile(r"\bs\d+\b")
    for value in [*model.graph.input, *model.graph.output]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = pattern.sub(lambda m: symbols.get(m.group(0), m.group(0)), dim.dim_param)
    onnx.save(model, str(path))


def export_graph(module: torch.nn.Module, inputs: dict[str, torch.Tensor], output_names, path: Path,
                 opset: int = OPSET) -> None:
    external = sum(p.numel() * p.element_size() for p in module.parameters()) > EXTERNAL_DATA_BYTES
    fixed = len(DECODER_INPUTS) if isinstance(module, DecoderGraph) else len(inputs)
    arguments, dynamic_shapes = _arguments(inputs, fixed)
    program = torch.onnx.export(module, arguments, dynamic_shapes=dynamic_shapes,
                                input_names=list(inputs), output_names=list(output_names), opset_version=opset,
                                dynamo=True, optimize=True, verbose=False)
    program.save(str(path), external_data=external)
    if not external:
        name_dimensions(path, inputs)


def graph_signature(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Inputs and outputs of an ONNX graph: element type and shape (symbolic dims as names)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def describe(values):
        return {v.name: {"dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
                         "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]}
                for v in values}

    return {"inputs": describe(model.graph.input), "outputs": describe(model.graph.output)}


def source_hashes(checkpoint: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(checkpoint.glob("*.safetensors"))}


PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16}


def write_deploy_folder(model, processor, out: Path, source: dict[str, Any], opset: int = OPSET,
                        precision: str = "fp32") -> Path:
    """Export `model` (an `SRRealForConditionalGeneration`) into the deploy folder `out`, in FP32 or FP16
    (FP16: the half-precision model's own dtype rules keep norms, softmax and rotary angles in FP32)."""
    import onnx
    import transformers

    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new --out (deploy folders are never overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    model = model.to(dtype).eval()
    constants = host_constants(model, processor)
    with staged_output(out, folder=True) as staging:  # renamed into place only when complete
        graphs = {"vision": VisionGraph(model), "embed": EmbedGraph(model), "decoder": DecoderGraph(model)}
        with torch.no_grad():
            for name, (inputs, outputs) in example_inputs(constants).items():
                inputs = {k: v.to(dtype) if v.is_floating_point() else v for k, v in inputs.items()}
                export_graph(graphs[name].eval(), inputs, outputs, staging / f"{name}.onnx", opset)
        processor.save_pretrained(staging)
        model.config.to_json_file(staging / "config.json")
        model.generation_config.save_pretrained(staging)
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "backend": "onnxruntime", "precision": precision,
            "io_dtype": str(dtype).removeprefix("torch."), "opset": opset,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "onnx": onnx.__version__},
            "source": source, "model": constants,
            "graphs": {name: {"file": f"{name}.onnx", **graph_signature(staging / f"{name}.onnx")}
                       for name in graphs},
        }
        write_manifest(staging, manifest)
    return out


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Record the hash of every file in the folder (engines/ excepted: built later, on the target) and save."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_NAME
                   and p.relative_to(folder).parts[0] != "engines")
    manifest["files"] = {str(p.relative_to(folder)): sha256_file(p) for p in files}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def load_for_export(checkpoint: str | Path, base: str | Path | None = None):
    """(model, processor, source) of a checkpoint, or of a LoRA adapter folder merged into its base
    (`merge_and_unload`: the deploy folder holds plain weights)."""
    from sr_real_core.model.loading import load_model, resolve_checkpoint

    adapter = Path(checkpoint)
    if (adapter / "adapter_config.json").is_file():
        if base is None:
            raise ValueError(f"{adapter} is a LoRA adapter: give --base, the checkpoint it was trained on")
        from peft import PeftModel

        directory = resolve_checkpoint(base)
        model, processor = load_model(directory, dtype=torch.float32)
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        source = {"checkpoint": str(directory), "weights_sha256": source_hashes(directory),
                  "adapter": str(adapter), "adapter_sha256": source_hashes(adapter)}
        return model, processor, source
    directory = resolve_checkpoint(checkpoint)
    model, processor = load_model(directory, dtype=torch.float32)
    return model, processor, {"checkpoint": str(directory), "weights_sha256": source_hashes(directory)}


def export_checkpoint(checkpoint: str | Path, out: str | Path, opset: int = OPSET, precision: str = "fp32",
                      base: str | Path | None = None) -> Path:
    """`sr-real export onnx`: a checkpoint (SR-REAL or Qwen2.5-VL; a LoRA adapter with its base) -> deploy folder."""
    model, processor, source = load_for_export(checkpoint, base)
    return write_deploy_folder(model, processor, Path(out), source, opset, precision)
