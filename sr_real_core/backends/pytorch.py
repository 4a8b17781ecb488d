"""The PyTorch runtime: a checkpoint's model generating through Hugging Face transformers."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class TorchBackend:
    """Hugging Face transformers `generate` on an `SRRealForConditionalGeneration`."""

    def __init__(self, model):
        self.model = model

    def generate(self, inputs: Mapping[str, Any], max_new_tokens: int, constraint=None) -> list[list[int]]:
        import torch

        from sr_real_core.constrained import logits_processor

        inputs = {k: v.to(self.model.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        processors = [logits_processor(constraint)] if constraint is not None else None
        with torch.inference_mode():
            sequences = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                            logits_processor=processors)
        return sequences[:, inputs["input_ids"].shape[1]:].tolist()
