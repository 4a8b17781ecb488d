"""Which parameters train: each module group full, LoRA or frozen (config `trainable`, `lora`).

Groups, by parameter name in `SRRealForConditionalGeneration` (a Qwen2.5-VL checkpoint has the same names):

    vision     model.visual.*  except the merger    (ViT blocks, patch embedding)
    projector  model.visual.merger.*                (the patch merger: vision features -> LLM space)
    region3d   model.region_projector.*, model.point_encoder.*, model.region_norm.*, model.region_point_encoder.*
               (SR-REAL's additions)
    llm        model.language_model.*, lm_head.*

With any group on LoRA, the model becomes a PEFT model: LoRA adapters on the linear layers of the LoRA groups
(except `lm_head`, which stays frozen under LoRA: TRL computes log-probabilities from its weight directly), and
the full groups as PEFT `modules_to_save` (trained copies saved with the adapter, so checkpoints resume
exactly). Without LoRA, frozen groups just stop requiring gradients.
"""
from __future__ import annotations

import re
from collections import Counter

from torch import nn

from sr_real.training.config import MODULE_GROUPS, LoraSettings, TrainableConfig

# Module-name prefixes of each group; the first match wins, so the merger is found before the vision tower.
_GROUP_PREFIXES = (
    ("projector", ("model.visual.merger",)),
    ("vision", ("model.visual",)),
    ("region3d", ("model.region_projector", "model.point_encoder", "model.region_norm",
                  "model.region_point_encoder")),
    ("llm", ("model.language_model", "lm_head")),
)
# The top-level modules of each group, as PEFT `modules_to_save` names (matched as name suffixes).
_SAVE_MODULES = {
    "vision": ("visual.patch_embed", "visual.blocks"),
    "projector": ("visual.merger",),
    "region3d": ("region_projector", "point_encoder", "region_norm", "region_point_encoder"),
    "llm": ("language_model", "lm_head"),
}


def group_of(name: str) -> str:
    """The module group of a parameter or module name (ValueError for a name outside every group)."""
    for group, prefixes in _GROUP_PREFIXES:
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return group
    raise ValueError(f"parameter {name!r} belongs to no module group of {MODULE_GROUPS}")


def prepare_model(model: nn.Module, trainable: TrainableConfig, lora: LoraSettings) -> nn.Module:
    """Set which parameters train; returns the model (a `peft.PeftModel` when a group uses LoRA)."""
    modes = {group: getattr(trainable, group) for group in MODULE_GROUPS}
    lora_groups = [g for g, mode in modes.items() if mode == "lora"]
    if not lora_groups:
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(modes[group_of(name)] == "full")
        return model

    from peft import LoraConfig, get_peft_model

    targets = [name for name, module in model.named_modules()
               if isinstance(module, nn.Linear) and _in_groups(name, lora_groups) and name != "lm_head"]
    full = [name for g, mode in modes.items() if mode == "full" for name in _SAVE_MODULES[g]]
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules="|".join(re.escape(t) for t in targets), modules_to_save=full or None)
    return get_peft_model(model, config)


def _in_groups(name: str, groups: list[str]) -> bool:
    try:
        return group_of(name) in groups
    except ValueError:
        return False


def trainable_summary(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per module group (LoRA and saved-module copies counted in their group)."""
    counts: Counter[str] = Counter()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            counts[group_of(_base_name(name))] += parameter.numel()
    return {group: counts.get(group, 0) for group in MODULE_GROUPS}


def _base_name(name: str) -> str:
    """A PEFT parameter name mapped back to the base model's module path."""
    name = re.sub(r"^base_model\.model\.", "", name)
    name = re.sub(r"\.(lora_[AB]|lora_dropout|lora_embedding_[AB])\.[^.]+", "", name)
    return re.sub(r"\.(modules_to_save\.[^.]+|original_module)\.", ".", name)
