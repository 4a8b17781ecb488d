"""Per-question verdicts and the benchmark figures of ``metrics.json``.

A verdict reads one completion (``understanding``), compares it with the record's solution by the
protocol of the record's benchmark (``protocol``: Q-Spatial's numeric success is δ < 2, the others' the
0.75-1.25 band; a range is read by the protocol's range rule) and measures the DTR centre errors;
``summarize`` turns verdicts into the figures below through ``sr_real_core.metrics.aggregate``. Every
figure is None when no question of its kind exists.

- ``qualitative_accuracy``: choice and yes/no questions answered right (exact match after understanding).
- ``quantitative_success``: numeric answers with 0.75 * gt <= pred <= 1.25 * gt (SpatialRGPT-Bench).
- ``abs_rel``: mean |pred - gt| / gt over the parsed numeric answers.
- ``qspatial_delta2`` / ``qspatial_delta1_5``: max(pred/gt, gt/pred) < 2 / < 1.5 (Q-Spatial).
- ``mra``: mean relative accuracy (SPAR-Bench, VSI-Bench).
- ``direction_success``: clock hour within one hour of the truth.
- ``center_error_median_m`` (and mean, match rate, share within 0.1/0.25/0.5 m): distance from each
  ground-truth centre to the DTR detection naming its region; only completions that took the DTR path
  count, a region no detection names is a miss (in the match rate, not in the errors).
- ``format_failure_rate``: completions that do not follow the output grammar (a model answering in free
  text fails every time; its answers are still understood and scored).
- ``accuracy``: share of all questions scored correct (numeric: by the record's benchmark protocol).
- ``n``, ``n_unparsed``: questions, and those whose answer was not understood (or had no prediction).
- ``path_shares``: share of completions per path taken (lor, dtr, none).

``metrics.json`` also holds ``per_category`` and ``per_path`` (the same figures for each category and each
path taken), ``per_benchmark`` (each benchmark's official figures by its authors' protocol, and ours,
where a range answer counts only if both of its ends pass), ``unparsed`` (id, category, reason, answer
of every unparsed question; the reason says why a numeric answer was not read, e.g. "not a length
(pixels)"), ``missing_predictions``
and ``unknown_predictions`` (ids of the QA file without a prediction, and the reverse), and ``inputs``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sr_real_core.evaluation.protocol import PROJECT, PROTOCOLS, Protocol, protocol_for
from sr_real_core.evaluation.records import Prediction, QARecord
from sr_real_core.evaluation.understanding import answer_text, read_numeric, understand
from sr_real_core.grammar import ParsedCompletion
from sr_real_core.metrics import (
    abs_rel_error,
    aggregate,
    clock_success,
    delta_success,
    matched_center_errors,
    spatialrgpt_success,
)

NO_PATH = "none"
MISSING_REASON = "missing prediction"
UNPARSED_REASON = "answer not understood"


@dataclass
class Verdict:
    """How one question was answered."""

    id: str
    category: str | None
    answer_type: str
    question: str
    solution: float | int | str
    answer: str | None  # the text read as the answer; None when the prediction is missing
    pred: float | int | str | None  # the understood answer; None when unparsed
    correct: bool
    missing: bool
    path: str | None  # path the completion took: "lor", "dtr", or None
    well_formed: bool
    format_errors: list[str] = field(default_factory=list)
    center_errors: list[float | None] = field(default_factory=list)  # per ground-truth region (DTR only)
    detections: list[dict[str, Any]] = field(default_factory=list)
    reasoning: str | None = None
    abs_rel: float | None = None
    completion: str | None = None
    latency_s: float | None = None
    benchmark: str = PROJECT  # whose protocol scored it (``protocol``)
    pred_range: list[float] | None = None  # [low, high] in metres when the answer gave a range
    correct_strict: bool = False  # ours: a range is correct only if both of its ends are
    unparsed_reason: str | None = None  # why a numeric answer was not read ("not a length (pixels)")

    @property
    def parsed(self) -> bool:
        return self.pred is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- verdicts


def score_record(record: QARecord, prediction: Prediction | None) -> Verdict:
    """The verdict on one question, by its benchmark's protocol; a missing prediction is unparsed and wrong."""
    protocol = protocol_for(record.raw)
    if prediction is None:
        return Verdict(record.id, record.category, record.answer_type, record.question, record.solution,
                       answer=None, pred=None, correct=False, missing=True, path=None, well_formed=False,
                       benchmark=protocol.benchmark)
    text, parsed = answer_text(prediction.completion)
    ends, reason = None, None
    if record.answer_type == "numeric":
        reading = read_numeric(text, record.raw)
        pred, reason = reading.value(protocol.range_rule), reading.reason
        ends = [reading.low, reading.high] if pred is not None and reading.low != reading.high else None
    else:
        pred = understand(text, record.answer_type, record.raw)
    correct = is_correct(pred, record.solution, record.answer_type, protocol.numeric_success)
    strict = all(is_correct(end, record.solution, "numeric", protocol.numeric_success) for end in ends) if (
        ends) else correct
    latency = prediction.extra.get("latency_s")
    return Verdict(
        record.id, record.category, record.answer_type, record.question, record.solution,
        answer=text, pred=pred, correct=correct, missing=False,
        path=parsed.path, well_formed=parsed.well_formed, format_errors=list(parsed.errors),
        center_errors=_center_errors(parsed, record),
        detections=[{"name": d.name, "ref": d.ref, "center": list(d.center)} for d in parsed.detections],
        reasoning=parsed.think,
        abs_rel=_abs_rel(pred, record),
        completion=prediction.completion,
        latency_s=float(latency) if isinstance(latency, (int, float)) else None,
        benchmark=protocol.benchmark, pred_range=ends, correct_strict=strict, unparsed_reason=reason,
    )


def is_correct(pred: Any, solution: Any, answer_type: str, numeric_success: str = "band") -> bool:
    """Numeric: "band" (0.75-1.25 x truth, SpatialRGPT-Bench) or "delta" (within a factor 2, Q-Spatial)."""
    if pred is None:
        return False
    if answer_type == "numeric":
        if numeric_success == "delta":
            return bool(delta_success(pred, solution, 2.0))
        return bool(spatialrgpt_success(pred, solution))
    if answer_type == "direction":
        return clock_success(pred, int(solution))
    return str(pred).casefold() == str(solution).casefold()


def _center_errors(parsed: ParsedCompletion, record: QARecord) -> list[float | None]:
    """Only a DTR completion claims centres; a LOR one has nothing to measure (not a miss)."""
    if parsed.path != "dtr":
        return []
    return matched_center_errors(parsed.detections, record.gt_centers)


def _abs_rel(pred: Any, record: QARecord) -> float | None:
    if record.answer_type != "numeric" or pred is None:
        return None
    return float(abs_rel_error(pred, record.solution))


def score_all(records: Sequence[QARecord], predictions: Mapping[str, Prediction]) -> list[Verdict]:
    """One verdict per record, in the records' order; records without a prediction are marked missing."""
    return [score_record(record, predictions.get(record.id)) for record in records]


# -------------------------------------------------------------------------------------------- figures


def summarize(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """The flat figures of a set of verdicts (see the module docstring)."""
    figures = aggregate(_metric_records(verdicts))
    n = len(verdicts)
    return {
        "n": n,
        "n_unparsed": sum(not verdict.parsed for verdict in verdicts),
        "accuracy": _share(verdict.correct for verdict in verdicts),
        "qualitative_accuracy": figures["qualitative_accuracy"],
        "quantitative_success": figures["numeric_success"],
        "abs_rel": figures["numeric_abs_rel_error"],
        "qspatial_delta2": figures["numeric_delta_2"],
        "qspatial_delta1_5": figures["numeric_delta_1_5"],
        "mra": figures["numeric_mra"],
        "direction_success": figures["direction_success"],
        "center_error_median_m": figures["center_error_median"],
        "center_error_mean_m": figures["center_error_mean"],
        "center_within_0_1m": figures["center_within_0_1"],
        "center_within_0_25m": figures["center_within_0_25"],
        "center_within_0_5m": figures["center_within_0_5"],
        "center_match_rate": figures["center_match_rate"],
        "center_regions": figures["center_matched"] + figures["center_missed"],
        "format_failure_rate": _share(not verdict.well_formed for verdict in verdicts),
        "path_shares": {path: count / n for path, count in sorted(Counter(_path(v) for v in verdicts).items())} or None,
    }


def _metric_records(verdicts: Iterable[Verdict]) -> list[dict[str, Any]]:
    return [
        {"answer_type": v.answer_type, "pred": v.pred, "gt": v.solution, "category": v.category,
         "center_errors": v.center_errors, "path": v.path}
        for v in verdicts
    ]


def _share(flags: Iterable[bool]) -> float | None:
    values = list(flags)
    return sum(values) / len(values) if values else None


def _path(verdict: Verdict) -> str:
    return verdict.path or NO_PATH


def build_metrics(
    verdicts: Sequence[Verdict], unknown_prediction_ids: Sequence[str] = (), inputs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The content of ``metrics.json``: overall figures, per category, per path, and the listings."""
    metrics = summarize(verdicts)
    metrics["per_category"] = {category: summarize(group) for category, group in _grouped(verdicts, _category).items()}
    metrics["per_path"] = {path: summarize(group) for path, group in _grouped(verdicts, _path).items()}
    metrics["per_benchmark"] = {name: benchmark_figures(PROTOCOLS[name], group)
                                for name, group in _grouped(verdicts, _benchmark).items()}
    metrics["unparsed"] = [
        {"id": v.id, "category": v.category, "reason": _unparsed_reason(v), "answer": v.answer}
        for v in verdicts if not v.parsed
    ]
    metrics["missing_predictions"] = [verdict.id for verdict in verdicts if verdict.missing]
    metrics["unknown_predictions"] = list(unknown_prediction_ids)
    latencies = [verdict.latency_s for verdict in verdicts if verdict.latency_s is not None]
    metrics["mean_latency_s"] = sum(latencies) / len(latencies) if latencies else None
    metrics["inputs"] = dict(inputs or {})
    return _json_safe(metrics)


def _unparsed_reason(verdict: Verdict) -> str:
    if verdict.missing:
        return MISSING_REASON
    return f"{UNPARSED_REASON}: {verdict.unparsed_reason}" if verdict.unparsed_reason else UNPARSED_REASON


def _benchmark(verdict: Verdict) -> str:
    return verdict.benchmark


def benchmark_figures(protocol: Protocol, verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """A benchmark's official figures (its authors' protocol) and ours (a range must pass at both ends)."""
    keys = [key for _, key in protocol.official]
    official, ours = _protocol_figures(verdicts, strict=False), _protocol_figures(verdicts, strict=True)
    return {"title": protocol.title, "n": len(verdicts), "official": {key: official[key] for key in keys},
            "ours": {key: ours[key] for key in keys}, "official_rule": protocol.official_rule,
            "our_rule": protocol.our_rule}


def _protocol_figures(verdicts: Sequence[Verdict], *, strict: bool) -> dict[str, float | None]:
    def correct(verdict: Verdict) -> bool:
        return verdict.correct_strict if strict else verdict.correct

    numeric = [v for v in verdicts if v.answer_type == "numeric"]
    # each answer's ends: one value, or a range's low and high when ours must pass at both
    low, high = (np.array([math.nan if v.pred is None else (v.pred_range[end] if strict and v.pred_range else v.pred)
                           for v in numeric], dtype=float) for end in (0, 1))
    gt = np.array([v.solution for v in numeric], dtype=float)
    parsed = np.isfinite(low)
    figures = {
        "accuracy": _share(correct(v) for v in verdicts),
        "qualitative_accuracy": _share(correct(v) for v in verdicts if v.answer_type in ("choice", "yesno")),
        "quantitative_success": _share(correct(v) for v in verdicts if v.answer_type in ("numeric", "direction")),
        "direction_success": _share(v.correct for v in verdicts if v.answer_type == "direction"),
        "abs_rel": float(np.maximum(abs_rel_error(low, gt), abs_rel_error(high, gt))[parsed].mean())
        if parsed.any() else None,
    }
    for name, threshold in (("2", 2.0), ("1_5", 1.5)):
        passed = delta_success(low, gt, threshold) & delta_success(high, gt, threshold)
        figures[f"delta_{name}"] = float(passed.mean()) if numeric else None
    return figures


def _category(verdict: Verdict) -> str:
    return verdict.category or "uncategorised"


def _grouped(verdicts: Sequence[Verdict], key) -> dict[str, list[Verdict]]:
    groups: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in verdicts:
        groups[key(verdict)].append(verdict)
    return dict(sorted(groups.items()))


def _json_safe(value: Any) -> Any:
    """NaN and infinities become None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def headline(figures: Mapping[str, Any]) -> tuple[str, float | None]:
    """The one figure that best describes a group of questions: its kind's success rate, else accuracy."""
    for key in ("qualitative_accuracy", "quantitative_success", "direction_success"):
        if figures.get(key) is not None and _only_kind(figures, key):
            return key, figures[key]
    return "accuracy", figures.get("accuracy")


def _only_kind(figures: Mapping[str, Any], key: str) -> bool:
    kinds = ("qualitative_accuracy", "quantitative_success", "direction_success")
    return all(figures.get(other) is None for other in kinds if other != key)
