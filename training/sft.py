"""Cold-start SFT on TRL's `SFTTrainer`: the blended mixture of `sr-real data build` (LOR and DTR chains of
thought, 3D and 2D grounding, region QA), loss on the assistant turns only.

The only SR-REAL-specific piece is the data collator: TRL's vision collator calls the processor with images
and text, while SR-REAL's processor also needs each record's regions (for the `<region>` tokens), depth map
and intrinsics (for the 3D positional encoding). `SpatialSFTCollator` makes that call and builds the labels;
TRL does the rest (loss, logging, saving). Which modules train is set by the config (`trainable.py`).

Optionally the loss also counts the decision tokens on their own (`decision_weight`): the opening words of
`<think>` (which step the reasoning takes) and the answer. A chain of thought is ~250 tokens, most of them copied
names and numbers, and the few that decide are drowned in its mean: the tiny model opens every DTR chain the same
way whatever the question asks. Measured in training/README.md ("Decision tokens"); off in every recipe.
"""
from __future__ import annotations

import itertools
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from trl import SFTTrainer

from sr_real.training.runs import AtomicCheckpoints
from sr_real.training.spatial import (IGNORE_INDEX, assistant_header, assistant_labels, encode, record_visuals,
                                     user_turns_with_images)


DECISION_CHARS = 20  # the opening of <think>, which names its step: "Reading x off the de", "Since the camera lo"
_THINK_RE = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.S)
_TAG_RE = re.compile(r"</?(?:think|answer|detect)>")


def decision_spans(turn: str) -> list[tuple[int, int]]:
    """Character spans of an assistant turn where it decides: the first DECISION_CHARS characters of its
    `<think>` (the step the reasoning takes) and the content of its `<answer>`; a turn without tags is a bare answer
    and decides throughout; a 3D-grounding turn (`<detect>` only) decides nowhere."""
    if not _TAG_RE.search(turn):
        return [(0, len(turn))]
    spans = [(think.start(1), min(think.start(1) + DECISION_CHARS, think.end(1))) for think in _THINK_RE.finditer(turn)]
    return spans + [answer.span(1) for answer in _ANSWER_RE.finditer(turn)]


def decision_labels(tokenizer, labels: torch.Tensor, end: int) -> torch.Tensor:
    """`labels` kept only on the tokens that overlap a `decision_spans` span of their assistant turn (a run of
    labelled tokens; its closing `end` token is not part of the text)."""
    decisions = torch.full_like(labels, IGNORE_INDEX)
    for row, ids in enumerate(labels.tolist()):
        labelled = (index for index, token in enumerate(ids) if token != IGNORE_INDEX)
        for _, run in itertools.groupby(enumerate(labelled), lambda pair: pair[1] - pair[0]):
            positions = [index for _, index in run if ids[index] != end]
            pieces = [tokenizer.decode([ids[index]]) for index in positions]
            offsets = list(itertools.accumulate(map(len, pieces), initial=0))
            for low, high in decision_spans("".join(pieces)):
                for k, index in enumerate(positions):
                    if offsets[k] < high and offsets[k + 1] > low:
                        decisions[row, index] = ids[index]
    return decisions


class SpatialSFTCollator:
    """Conversational mixture records -> model inputs with labels on the assistant turns only.

    An assistant turn is everything after `<|im_start|>assistant\\n` up to and including its `<|im_end|>`
    (so the model learns to stop); the system and user turns, the images and the padding are ignored. With
    `decisions`, the batch also holds `decision_labels` (the labels on the decision tokens alone), which the
    trainer takes out.
    """

    def __init__(self, processor, use_depth: bool = True, max_length: int | None = None, decisions: bool = False):
        self.processor, self.use_depth, self.max_length = processor, use_depth, max_length
        self.decisions = decisions
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
        if self.decisions:
            batch["decision_labels"] = decision_labels(self.processor.tokenizer, batch["labels"], self.end)
        return dict(batch)


class SRRealSFTTrainer(AtomicCheckpoints, SFTTrainer):
    """TRL's SFTTrainer with atomic checkpoints and two optional terms in each step's loss: `decision_weight` x the
    mean loss of the batch's decision tokens (`decision_labels`, from the collator), and read-out rehearsal:
    `rehearsal` made-up read-out sequences (training/pretrain.py), drawn from the run's seed and the step number,
    so a resumed run rehearses what the uninterrupted one would have."""

    def __init__(self, *args, rehearsal: int = 0, rehearsal_keywords: float = 0.0, decision_weight: float = 0.0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.rehearsal, self.rehearsal_keywords, self.decision_weight = rehearsal, rehearsal_keywords, decision_weight

    def rehearsal_rng(self) -> random.Random:
        return random.Random(f"{self.args.seed}/{self.state.global_step}")

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        decisions = inputs.pop("decision_labels", None)
        if self.decision_weight and decisions is not None and model.training and not return_outputs:
            result = self.decision_weighted_loss(model, inputs, decisions, kwargs.get("num_items_in_batch"))
        else:
            result = super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)
        if not self.rehearsal or not model.training:
            return result
        from sr_real.training.pretrain import readout_loss

        loss, outputs = result if return_outputs else (result, None)
        rehearsal = readout_loss(model, self.processing_class, self.rehearsal_rng(), self.rehearsal,
                                 keyword_fraction=self.rehearsal_keywords)
        self._metrics["train"]["readout_loss"].append(rehearsal.item())  # logged beside the loss, which includes it
        loss = loss + rehearsal
        return (loss, outputs) if return_outputs else loss

    def decision_weighted_loss(self, model, inputs, decisions: torch.Tensor, num_items_in_batch=None):
        """TRL's SFT loss (the mean log-loss of the labelled tokens, from TRL's fused LM head) plus
        `decision_weight` x the mean log-loss of the decision tokens. TRL's loss has no per-token weights: its
        `compute_loss_func` hook gets the full logits and then runs the forward a second time for its metrics."""
        outputs = model(**inputs, use_cache=False, fused_lm_head=True)
        labelled = outputs.label_mask.sum().clamp(min=1)
        chosen = decisions[:, 1:] != IGNORE_INDEX  # position t scores token t + 1, as the fused head does
        count = labelled if num_items_in_batch is None else num_items_in_batch
        decision = -outputs.log_probs[chosen].sum() / chosen.sum().clamp(min=1)
        metrics = self._metrics["train"]
        metrics["decision_loss"].append(decision.item())  # logged beside the loss, which includes it
        metrics["entropy"].append((outputs.entropy.detach().sum() / labelled).item())
        metrics["mean_token_accuracy"].append((outputs.is_top1.sum() / labelled).item())
        self._total_train_tokens += int(inputs["attention_mask"].sum())
        metrics["num_tokens"] = [self._total_train_tokens]
        return -outputs.log_probs.sum() / torch.as_tensor(count).clamp(min=1) + self.decision_weight * decision


def build_sft_trainer(model, processor, args, train_dataset, use_depth: bool, callbacks=(),
                      rehearsal: int = 0, rehearsal_keywords: float = 0.0,
                      decision_weight: float = 0.0) -> SRRealSFTTrainer:
    collator = SpatialSFTCollator(processor, use_depth=use_depth, max_length=args.max_length,
                                  decisions=decision_weight > 0)
    return SRRealSFTTrainer(model=model, args=args, train_dataset=train_dataset, processing_class=processor,
                            data_collator=collator, callbacks=list(callbacks), rehearsal=rehearsal,
                            rehearsal_keywords=rehearsal_keywords, decision_weight=decision_weight)


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
