"""A checkpoint's figures per path mode on held-out questions, through the evaluation harness.

`evaluate_paths(model, qa, out)` runs `sr_real_core.evaluation` once per path mode (lor, dtr, auto: the
prompt asks for that path, or lets the policy choose) and returns, per mode, the figures the quickstart
reports (`PathMetrics`): qualitative accuracy, quantitative success (0.75-1.25), mean abs-rel error, the
median DTR centre error (None for LOR), the mean total reward of the completions (`rewards.reward_breakdown`
with the requested path: auto completions are scored on the path they took), the share of completions taking
the DTR path, overall accuracy, format failures, the share of the most frequent yes/no answer, the number of
questions, and a 95% bootstrap interval of each figure a target uses (`heldout.figures_with_intervals`).
Each mode's full evaluation (metrics.json, verdicts, report, gallery) stays in `out/<mode>/`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sr_real.training.heldout import figures_with_intervals
from sr_real_core.query import PROMPT_PATHS


@dataclass
class PathMetrics:
    qualitative_accuracy: float | None
    quantitative_success: float | None
    abs_rel: float | None
    center_error_median_m: float | None  # None for LOR: no centres are predicted
    mean_reward: float | None
    path_share_dtr: float | None
    accuracy: float | None
    direction_success: float | None
    format_failure_rate: float | None
    qualitative_unparsed: float | None  # yes/no and choice answers not understood as a yes/no or a letter
    n: int
    top_yesno_share: float | None = None  # the most frequent parsed yes/no answer's share of them
    # Share of the questions' objects given a <detect> centre under their name or mark: the centre error is the
    # median over those alone (None for LOR)
    center_match_rate: float | None = None
    intervals: dict[str, list[float] | None] | None = None  # figure -> 95% bootstrap interval

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_paths(model_dir: str | Path, qa: str | Path, out: str | Path, paths=PROMPT_PATHS, batch_size: int = 16,
                   max_new_tokens: int = 384, constrain_answer: bool = True) -> dict[str, dict[str, Any]]:
    """Figures per path mode of the checkpoint `model_dir` on the QA file `qa` (see the module docstring)."""
    from sr_real_core.evaluation.pipeline import EvalConfig, evaluate
    from sr_real_core.evaluation.run_model import ModelRunConfig

    results = {}
    for path in paths:
        run = ModelRunConfig(path_mode=path, batch_size=batch_size, max_new_tokens=max_new_tokens,
                             constrain_answer=constrain_answer)
        result = evaluate(EvalConfig(qa=Path(qa), out=Path(out) / path, model=str(model_dir), model_run=run))
        results[path] = path_metrics(result, qa, path).to_dict()
    (Path(out) / "summary.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def path_metrics(result, qa: str | Path, path: str) -> PathMetrics:
    """The `PathMetrics` of one evaluation result (`sr_real_core.evaluation.pipeline.EvaluationResult`)."""
    metrics = result.metrics
    qualitative = [v for v in result.verdicts if v.answer_type in ("choice", "yesno")]
    figures = figures_with_intervals([v.to_dict() for v in result.verdicts])
    return PathMetrics(
        qualitative_accuracy=metrics["qualitative_accuracy"],
        quantitative_success=metrics["quantitative_success"],
        abs_rel=metrics["abs_rel"],
        center_error_median_m=None if path == "lor" else metrics["center_error_median_m"],
        mean_reward=mean_reward(result.files["predictions"], qa),
        path_share_dtr=(metrics["path_shares"] or {}).get("dtr", 0.0),
        accuracy=metrics["accuracy"],
        direction_success=metrics["direction_success"],
        format_failure_rate=metrics["format_failure_rate"],
        qualitative_unparsed=sum(v.pred is None for v in qualitative) / len(qualitative) if qualitative else None,
        n=metrics["n"],
        top_yesno_share=figures["top_yesno_share"]["value"],
        center_match_rate=None if path == "lor" else metrics.get("center_match_rate"),
        intervals={name: figure["ci"] for name, figure in figures.items()},
    )


def mean_reward(predictions: str | Path, qa: str | Path) -> float | None:
    """The mean total training reward of a predictions file against its QA records."""
    from sr_real_core.evaluation.records import load_predictions, load_qa
    from sr_real_core.rewards import reward_breakdown

    records = {record.id: record for record in load_qa(qa)}
    totals = []
    for identifier, prediction in load_predictions(predictions).items():
        record = records[identifier]
        totals.append(reward_breakdown(prediction.completion, solution=record.raw["solution"],
                                       answer_type=record.answer_type, path=prediction.extra.get("requested_path"),
                                       gt_centers=record.raw.get("gt_centers"))["total"])
    return sum(totals) / len(totals) if totals else None
