"""One evaluation run: QA records + (a model or predictions) -> verdicts, metrics.json, report, gallery.

Files written to the output folder:

- ``metrics.json``: the figures (``scoring``), per category and per path, and the listings of unparsed
  answers, missing predictions and unknown prediction ids;
- ``verdicts.jsonl``: one line per question (the answer read, what it was understood as, correct or not,
  path, format errors, centre errors, reasoning);
- ``predictions.jsonl``: only with a model, its completions (re-score them with ``--predictions``);
- ``report.md`` + ``plots/``: the Markdown report (``report``);
- ``gallery.html`` + ``gallery/``: the examples (``gallery``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_real_core.errors import check_output_dir, staged_output
from sr_real_core.evaluation.gallery import GalleryConfig, write_gallery
from sr_real_core.evaluation.records import Prediction, QARecord, load_predictions, load_qa
from sr_real_core.evaluation.report import write_report
from sr_real_core.evaluation.run_model import ModelRunConfig
from sr_real_core.evaluation.scoring import Verdict, build_metrics, score_all


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate (``predictions`` xor ``model``) and where to write the results."""

    qa: Path
    out: Path
    predictions: Path | None = None
    model: str | None = None
    model_run: ModelRunConfig = field(default_factory=ModelRunConfig)
    gallery: GalleryConfig = field(default_factory=GalleryConfig)

    def __post_init__(self) -> None:
        if (self.predictions is None) == (self.model is None):
            raise ValueError("give exactly one of predictions (a JSON Lines file) or model (a checkpoint folder)")


@dataclass
class EvaluationResult:
    metrics: dict[str, Any]
    verdicts: list[Verdict]
    files: dict[str, Path]


def evaluate(config: EvalConfig, progress: Callable[[int, int], None] | None = None) -> EvaluationResult:
    """Run the evaluation described by ``config`` and write its files (see the module docstring); they appear
    in ``config.out`` only once all are written."""
    records = load_qa(config.qa)
    with staged_output(check_output_dir(config.out), folder=True) as staging:
        result = _evaluate(records, config, staging, progress)
    result.files = {name: Path(config.out) / path.relative_to(staging) for name, path in result.files.items()}
    return result


def _evaluate(records: Sequence[QARecord], config: EvalConfig, out: Path,
              progress: Callable[[int, int], None] | None) -> EvaluationResult:
    files: dict[str, Path] = {}
    if config.model is not None:
        predictions = _model_predictions(records, config, out / "predictions.jsonl", progress)
        files["predictions"] = out / "predictions.jsonl"
    else:
        predictions = load_predictions(config.predictions)
    verdicts = score_all(records, predictions)
    known = {record.id for record in records}
    unknown = [identifier for identifier in predictions if identifier not in known]
    metrics = build_metrics(verdicts, unknown, _inputs(config, len(records)))
    files["metrics"] = _write_json(out / "metrics.json", metrics)
    files["verdicts"] = _write_lines(out / "verdicts.jsonl", [verdict.to_dict() for verdict in verdicts])
    gallery = write_gallery(out, records, verdicts, config.gallery)
    if gallery is not None:
        files["gallery"] = gallery
    files["report"] = write_report(out, metrics, verdicts, gallery.name if gallery else None)
    return EvaluationResult(metrics, verdicts, files)


def _model_predictions(records: Sequence[QARecord], config: EvalConfig, target: Path,
                       progress: Callable[[int, int], None] | None) -> dict[str, Prediction]:
    from sr_real_core.evaluation.run_model import predict_with_model

    lines = predict_with_model(records, config.model, config.model_run, progress)
    _write_lines(target, lines)
    return load_predictions(target)


def _inputs(config: EvalConfig, record_count: int) -> dict[str, Any]:
    inputs: dict[str, Any] = {"qa": str(config.qa), "questions": record_count}
    if config.model is not None:
        inputs |= {"model": str(config.model), "path_mode": config.model_run.path_mode}
    else:
        inputs["predictions"] = str(config.predictions)
    return inputs


def _write_json(path: Path, value: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _write_lines(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
