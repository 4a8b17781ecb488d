"""Cold-start SFT on TRL's `SFTTrainer`: the blended mixture of `sr-real data build` (LOR and DTR chains of
thought, 3D and 2D grounding, region QA), loss on the assistant turns only.

The only SR-REAL-specific piece is the data collator: TRL's vision collator calls the processor with images
and text, while SR-REAL's processor also needs each record's regions (for the `<region>` tokens), depth map
and intrinsics (for the 3D positional encoding). `SpatialSFTCollator` makes that call and builds the labels;
TRL does the rest (loss, logging, saving). Which modules train is set by the config (`trainable.py`).
"""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from trl import SFTTrainer

from sr_real.training.runs import AtomicCheckpoints
from sr_real.training.spatial import (IGNORE_INDEX, assistant_header, assistant_labels, encode, record_visuals,
                                     user_turns_with_images)


class SpatialSFTCollator:
    """Conversational mixture records -> model inputs with labels on the assistant turns only.

    An assistant turn is everything after `<|im_start|>assistant\\n` up to and including its `<|im_end|>`
    (so the model learns to stop); the system and user turns, the images and the padding are ignored.
    """

    def __init__(self, processor, use_depth: bool = True, max_length: int | None = None):
        self.processor, self.use_depth, self.max_length = processor, use_depth, max_length
        self.header, self.end = assistant_header(processor.tokenizer)

    def __call__(self, records: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        texts, visuals = [], []
        for record in records:
            messages = user_turns_with_images(record["messages"], len(record["images"]))
            text = self.processor.apply_chat_template(messages, tokenize=False)
            texts.append(text)
            visuals.append(record_visuals(record, text, self.use_depth))
        truncation = {"truncation": True, "max_length": self.max_length} if self.max_length else {}
        batch = encode(self.processor, texts, visuals, padding_side="right", **truncation)
        batch["labels"] = assistant_labels(self.header, self.end, batch["input_ids"], batch["attention_mask"])
        return dict(batch)


class SRRealSFTTrainer(AtomicCheckpoints, SFTTrainer):
    """TRL's SFTTrainer with atomic checkpoints and, optionally, read-out rehearsal: each step's loss also counts
    `rehearsal` made-up read-out sequences (training/pretrain.py), drawn from the run's seed and the step number,
    so a resumed run rehearses what the uninterrupted one would have."""

    def __init__(self, *args, rehearsal: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.rehearsal = rehearsal

    def rehearsal_rng(self) -> random.Random:
        return random.Random(f"{self.args.seed}/{self.state.global_step}")

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        result = super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)
        if not self.rehearsal or not model.training:
            return result
        from sr_real.training.pretrain import readout_loss

        loss, outputs = result if return_outputs else (result, None)
        rehearsal = readout_loss(model, self.processing_class, self.rehearsal_rng(), self.rehearsal)
        self._metrics["train"]["readout_loss"].append(rehearsal.item())  # logged beside the loss, which includes it
        loss = loss + rehearsal
        return (loss, outputs) if return_outputs else loss


def build_sft_trainer(model, processor, args, train_dataset, use_depth: bool, callbacks=(),
                      rehearsal: int = 0) -> SRRealSFTTrainer:
    collator = SpatialSFTCollator(processor, use_depth=use_depth, max_length=args.max_length)
    return SRRealSFTTrainer(model=model, args=args, train_dataset=train_dataset, processing_class=processor,
                            data_collator=collator, callbacks=list(callbacks), rehearsal=rehearsal)


@torch.no_grad()
def record_losses(model, processor, records: Sequence[Mapping[str, Any]], use_depth: bool = True,
                  batch_size: int = 8) -> list[dict[str, Any]]:
    """The SFT loss of each record, teacher-forced through the training collator: {"id", "nll" (summed over the
    record's assistant tokens, nats), "tokens"}. Records are mixture records with decoded images (`load_mixture`)."""
    collator = SpatialSFTCollator(processor, use_depth=use_depth)
    model.eval()
    rows = []
    for start in range(0, len(records), batch_size):
        chunk = [records[i] for i in range(start, min(start + batch_size, len(records)))]
        batch = collator(chunk)
        labels = batch.pop("labels")[:, 1:]  # position t predicts token t + 1, as the model's own loss shifts
        logits = model(**batch).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX,
                                                reduction="none")
        tokens = (labels != IGNORE_INDEX).sum(dim=1)
        rows.extend({"id": record["id"], "nll": float(value), "tokens": int(count)}
                    for record, value, count in zip(chunk, nll.sum(dim=1), tokens))
    return rows
