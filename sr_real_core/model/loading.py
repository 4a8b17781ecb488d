"""Load an SR-REAL model and processor from a local directory (or the local Hugging Face cache), offline.

A directory holding a plain Qwen2.5-VL checkpoint loads too: its weights fill the backbone, the tokenizer
gains the region token, and the new modules start as no-ops (see modeling.py). Weights are read from
safetensors only; no code is ever taken from the checkpoint (no `trust_remote_code`).
"""
from __future__ import annotations

from pathlib import Path

from sr_real_core.model.safe_loading import corrupt_weights_named, weight_files

# Qwen2.5-VL checkpoints on the Hub (and as transformers saves them) use the older key layout.
QWEN2_5_VL_KEY_MAPPING = {
    r"^visual": "model.visual",
    r"^model(?!\.(language_model|visual))": "model.language_model",
}

_REQUIRED_FILES = {
    "config.json": ("config.json",),
    "safetensors weights": ("model.safetensors", "model.safetensors.index.json"),
    "tokenizer": ("tokenizer.json", "vocab.json"),
    "image processor config": ("processor_config.json", "preprocessor_config.json"),
}


def resolve_checkpoint(path_or_hub_id: str | Path) -> Path:
    """The local directory of a checkpoint; a Hub id must already be in the local cache. Checks its files."""
    directory = Path(path_or_hub_id)
    if not directory.is_dir():
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            directory = Path(snapshot_download(str(path_or_hub_id), local_files_only=True))
        except (LocalEntryNotFoundError, ValueError) as error:
            raise FileNotFoundError(f"{path_or_hub_id!r} is neither a checkpoint directory nor in the local Hugging "
                                    "Face cache (models are never downloaded here)") from error
    missing = [what for what, names in _REQUIRED_FILES.items()
               if not any((directory / name).is_file() for name in names)]
    if missing:
        raise ValueError(f"checkpoint {str(directory)!r} is missing: {', '.join(missing)} (expected one of "
                         + "; ".join(" / ".join(_REQUIRED_FILES[m]) for m in missing) + ")")
    return directory


def load_model(path_or_hub_id: str | Path, *, dtype=None, device: str | None = None,
               attn_implementation: str | None = None):
    """(model, processor) of an SR-REAL checkpoint, or of a plain Qwen2.5-VL checkpoint converted to SR-REAL.

    dtype: e.g. torch.bfloat16 (default: as saved); device: e.g. "cuda" (default: CPU).
    """
    from transformers import AutoConfig

    from sr_real_core.model.processing import SRRealProcessor

    directory = resolve_checkpoint(path_or_hub_id)
    weights = weight_files(directory)  # safetensors by content, before transformers opens any of them
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    processor = SRRealProcessor.from_pretrained(directory, local_files_only=True)
    options = dict(local_files_only=True, use_safetensors=True, dtype=dtype, attn_implementation=attn_implementation)
    with corrupt_weights_named(weights):
        model = _from_pretrained(directory, config, processor, options)
    if device is not None:
        model = model.to(device)
    return model.eval(), processor


def _from_pretrained(directory: Path, config, processor, options: dict):
    from transformers import Qwen2_5_VLConfig

    from sr_real_core.model.configuration import SRRealConfig
    from sr_real_core.model.modeling import SRRealForConditionalGeneration

    if isinstance(config, SRRealConfig):
        model = SRRealForConditionalGeneration.from_pretrained(directory, **options)
    elif isinstance(config, Qwen2_5_VLConfig):
        config = SRRealConfig.from_backbone(config, region_token_id=processor.region_token_id)
        model = SRRealForConditionalGeneration.from_pretrained(directory, config=config,
                                                               key_mapping=QWEN2_5_VL_KEY_MAPPING, **options)
        if len(processor.tokenizer) > model.config.text_config.vocab_size:
            model.resize_token_embeddings(len(processor.tokenizer), pad_to_multiple_of=64)
        model.model.match_region_scale()
    else:
        raise ValueError(f"checkpoint {str(directory)!r} is a {config.model_type!r} model; SR-REAL loads "
                         f"{SRRealConfig.model_type!r} and Qwen2.5-VL ('qwen2_5_vl') checkpoints")
    return model
