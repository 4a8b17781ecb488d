"""The deploy folder: what `sr-real export onnx` writes and the ONNX Runtime / TensorRT backends load.

    DEPLOY_DIR/
      deploy.json            this manifest: format, precision, opset, versions, source checkpoint hash,
                             graph inputs/outputs with symbolic shapes, model constants for the host loop,
                             and the sha256 of every other file in the folder
      vision.onnx embed.onnx decoder.onnx   (+ .onnx.data where a graph is over 2 GB)
      config.json generation_config.json tokenizer.json tokenizer_config.json processor_config.json
      chat_template.jinja
      engines/               TensorRT engines + their build sidecar, when built on the target (`sr-real export
                             tensorrt`), listed in engines/engines.json rather than here

A folder is refused by name when a listed file is missing or its content differs from its hash.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MANIFEST_NAME = "deploy.json"
FORMAT = "sr-real-deploy"
FORMAT_VERSION = 1
GRAPHS = ("vision", "embed", "decoder")
# Additive attention-mask value inside the graphs: finite, so that FP16 (max 65504) never turns it into -inf
# and a fully masked row stays a uniform softmax rather than NaN.
MASK_FILL = -10000.0

VISION_INPUTS = ("pixel_values", "vision_position_ids", "window_index", "reverse_window_index", "cu_seqlens",
                 "cu_window_seqlens", "image_points", "region_weights", "region_points")
VISION_OUTPUTS = ("image_embeds", "region_embeds")
EMBED_INPUTS, EMBED_OUTPUTS = ("input_ids",), ("inputs_embeds",)
DECODER_INPUTS = ("inputs_embeds", "position_ids", "attention_mask")  # then past_key_{i}, past_value_{i}


def cache_names(prefix: str, num_layers: int) -> list[str]:
    """past_key_0, past_value_0, past_key_1, ... (prefix "past") or present_* (prefix "present")."""
    return [f"{prefix}_{kind}_{layer}" for layer in range(num_layers) for kind in ("key", "value")]


class DeployFolderError(ValueError):
    """A deploy folder that cannot be used; the message names the folder and the file."""


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_deploy_folder(path: str | Path) -> bool:
    return (Path(path) / MANIFEST_NAME).is_file()


def read_manifest(folder: str | Path, verify: bool = True) -> dict[str, Any]:
    """The manifest of a deploy folder; with `verify`, every listed file must be there with its recorded hash."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise DeployFolderError(f"{folder}: not a deploy folder ({MANIFEST_NAME} is missing); write one with "
                                "`sr-real export onnx --model CHECKPOINT --out DIR`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeployFolderError(f"{path}: unreadable manifest ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DeployFolderError(f"{path}: not an SR-REAL deploy manifest (format is not {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DeployFolderError(f"{path}: format_version {manifest.get('format_version')!r}, this sr_real reads "
                                f"{FORMAT_VERSION}; re-export the folder")
    missing = [g for g in GRAPHS if g not in manifest.get("graphs", {})]
    if missing:
        raise DeployFolderError(f"{path}: the manifest lists no {', '.join(missing)} graph")
    if verify:
        verify_files(folder, manifest.get("files", {}))
    return manifest


def verify_files(folder: Path, files: dict[str, str]) -> None:
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise DeployFolderError(f"{folder}: file {name} is missing (listed in {MANIFEST_NAME})")
        if sha256_file(path) != expected:
            raise DeployFolderError(f"{folder}: file {name} is corrupt or was modified (sha256 differs from "
                                    f"{MANIFEST_NAME}); re-export the folder")
