"""Predictions from our own model: run the inference engine over QA records (``sr-real eval --model DIR``).

Each record becomes one ``query.Query`` (``Query.from_record``): its image, its depth (``depth`` + ``depth_unit``) and
intrinsics when present, its regions as the benchmark's protocol says (``protocol.region_field``: the mask
the importer wrote for SpatialRGPT-Bench, else the box ``bbox_2d``), its answer type, and the requested
path mode (lor | dtr | auto | reference). The engine refers to the i-th region by the i-th ``<region>``
token of the question: a question that already has ``<region>`` tokens gets the regions in record order; otherwise a
token is inserted after each mention of a region in the question ("Is Region [0] <region> to the left of
Region [1] <region>?", "the chair (red bbox) <region>"), in order of mention. Regions without a box and
questions that mention none are asked without region tokens.

The result is one prediction per record, ``{id, completion, path, requested_path, latency_s}`` (latency: the
batch's time divided by its size), which the evaluation writes to ``predictions.jsonl`` and then scores
exactly like predictions from any other model. Missing image, depth or mask files are reported, all of
them by id, before the model is loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sr_real_core.evaluation.protocol import protocol_for
from sr_real_core.evaluation.records import EvaluationInputError, QARecord
from sr_real_core.evaluation.understanding import make_participant
from sr_real_core.inference import SpatialReasoner
from sr_real_core.inputs import InputError
from sr_real_core.query import DEFAULT_PATH_MODE, MAX_NEW_TOKENS, PATH_MODES, REGION_TOKEN, Query


@dataclass(frozen=True)
class ModelRunConfig:
    path_mode: str = DEFAULT_PATH_MODE
    batch_size: int = 4
    max_new_tokens: int = MAX_NEW_TOKENS
    backend: str | None = None  # None: from the deploy folder's manifest, torch for a checkpoint
    device: str | None = None
    depth_model: str | None = None  # depth estimator for records without depth
    constrain_answer: bool = True  # decode an answer of the record's answer_type only (`sr_real_core.constrained`)

    def __post_init__(self) -> None:
        if self.path_mode not in PATH_MODES:
            raise ValueError(f"path_mode must be one of {PATH_MODES}, got {self.path_mode!r}")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be positive")


def region_prompt(record: QARecord) -> tuple[str, list[dict[str, Any]]]:
    """The question with one ``<region>`` token per region mention, and the engine's region list."""
    boxed = [region for region in record.raw.get("regions") or [] if _box(region) is not None]
    question = record.question
    if REGION_TOKEN in question:
        if question.count(REGION_TOKEN) != len(boxed):
            raise EvaluationInputError(
                f"record {record.id!r}: the question has {question.count(REGION_TOKEN)} {REGION_TOKEN} tokens "
                f"but {len(boxed)} regions with a bbox_2d"
            )
        return question, [_engine_region(region, record) for region in boxed]
    pieces, regions, cursor = [], [], 0
    for end, region in _region_mentions(question, boxed):
        pieces += [question[cursor:end], f" {REGION_TOKEN}"]
        regions.append(_engine_region(region, record))
        cursor = end
    return "".join(pieces) + question[cursor:], regions


def _region_mentions(question: str, regions: Sequence[Mapping[str, Any]]) -> list[tuple[int, Mapping[str, Any]]]:
    """(end of mention, region) in order of mention; the end moves past a closing bracket, so that the
    token follows "Region [0]" and "(red bbox)" rather than landing inside them."""
    mentions = []
    for region in regions:
        participant = make_participant(str(region.get("ref", "")), [])
        for match in participant.pattern.finditer(question) if participant else ():
            end = match.end() + 1 if question[match.end():match.end() + 1] in ("]", ")") else match.end()
            mentions.append((end, region))
    return sorted(mentions, key=lambda mention: mention[0])


def _box(region: Any) -> list[float] | None:
    box = region.get("bbox_2d") if isinstance(region, Mapping) else None
    return [float(value) for value in box] if isinstance(box, (list, tuple)) and len(box) == 4 else None


def _engine_region(region: Mapping[str, Any], record: QARecord) -> dict[str, Any]:
    """The region the benchmark's protocol gives the model: its mask (SpatialRGPT-Bench) or its box."""
    mask = region.get("mask") if protocol_for(record.raw).region_field == "mask" else None
    if isinstance(mask, str) and mask:
        from PIL import Image

        with Image.open(record.base_dir / mask) as opened:
            return {"image_index": 0, "mask": np.asarray(opened.convert("L")) > 0}
    return {"image_index": 0, "box": _box(region)}


def check_inputs(records: Sequence[QARecord]) -> None:
    """Fail before loading a model if any record's image (or depth, when it names one) is not on disk."""
    faults = [record.id for record in records if not _readable(record, "image", required=True)
              or not _readable(record, "depth", required=False) or not _masks_readable(record)]
    if faults:
        shown = ", ".join(map(repr, faults[:10])) + (" ..." if len(faults) > 10 else "")
        raise EvaluationInputError(f"{len(faults)} record(s) lack their image, depth or mask file: {shown}")


def _masks_readable(record: QARecord) -> bool:
    masks = [region.get("mask") for region in record.raw.get("regions") or [] if isinstance(region, Mapping)]
    return all((record.base_dir / mask).is_file() for mask in masks if isinstance(mask, str) and mask)


def _readable(record: QARecord, key: str, *, required: bool) -> bool:
    path = record.resolve(key)
    return path.is_file() if path is not None else not required


def predict_with_model(
    records: Sequence[QARecord], model_dir: str, config: ModelRunConfig = ModelRunConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """One prediction per record from the model in ``model_dir`` (see the module docstring)."""
    check_inputs(records)
    reasoner = SpatialReasoner.from_pretrained(model_dir, backend=config.backend, device=config.device,
                                               max_new_tokens=config.max_new_tokens, depth_model=config.depth_model,
                                               constrain_answer=config.constrain_answer)
    predictions = []
    for start in range(0, len(records), config.batch_size):
        batch = records[start:start + config.batch_size]
        try:
            answers = reasoner.ask_batch([_query(record, config.path_mode) for record in batch])
        except InputError as error:  # name the records: the message names only the input
            raise EvaluationInputError(f"record(s) {', '.join(r.id for r in batch)}: {error}") from None
        predictions += [
            {"id": record.id, "completion": answer.completion, "path": answer.path,
             "requested_path": answer.requested_path, "latency_s": answer.latency_s / len(batch)}
            for record, answer in zip(batch, answers)
        ]
        if progress:
            progress(len(predictions), len(records))
    return predictions


def _query(record: QARecord, path_mode: str) -> Query:
    question, regions = region_prompt(record)
    return Query.from_record(record.raw, record.base_dir, question=question, regions=regions, path=path_mode)


def print_progress(done: int, total: int) -> None:
    print(f"\r{done}/{total} questions answered", end="\n" if done == total else "", file=sys.stderr, flush=True)
