"""Several ``metrics.json`` side by side in one Markdown table (SFT vs RL, LOR vs DTR vs auto, ...).

Rows are the overall figures, then the path shares, then each category's headline score (its kind's
success rate, see ``scoring.headline``); columns are the runs, labelled by the given labels or by the
folder holding each ``metrics.json``. The best value of a row is in bold (the lowest for errors, failure
rates and unparsed counts), every run that shows it when several do, and none when all runs show the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sr_real_core.evaluation.records import EvaluationInputError
from sr_real_core.evaluation.report import OVERALL_ROWS, percent
from sr_real_core.evaluation.scoring import headline

LOWER_IS_BETTER = frozenset({"n_unparsed", "abs_rel", "center_error_median_m", "format_failure_rate"})
NOT_RANKED = frozenset({"n", "path_share"})  # a count of questions, a share of paths: neither better nor worse


def load_metrics(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvaluationInputError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise EvaluationInputError(f"{path}: not JSON ({error.msg})") from None
    if not isinstance(metrics, dict) or "n" not in metrics:
        raise EvaluationInputError(f"{path}: not a metrics.json written by sr-real eval (no 'n')")
    return metrics


def default_label(path: str | Path) -> str:
    path = Path(path)
    return (path if path.is_dir() else path.parent).resolve().name or str(path)


def compare_table(runs: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> str:
    """The Markdown comparison table of ``runs`` (metrics dicts) under ``labels``."""
    if len(runs) != len(labels):
        raise ValueError(f"{len(runs)} runs but {len(labels)} labels")
    rows = [_row(label, [run.get(key) for run in runs], key, fmt) for label, key, fmt in OVERALL_ROWS]
    for path in sorted({path for run in runs for path in run.get("path_shares") or {}}):
        shares = [(run.get("path_shares") or {}).get(path) for run in runs]
        rows.append(_row(f"Path share: {path}", shares, "path_share", percent))
    for category in sorted({category for run in runs for category in run.get("per_category") or {}}):
        scores = [_category_score(run, category) for run in runs]
        rows.append(_row(f"Category: {category}", scores, "category", percent))
    header = "| Figure | " + " | ".join(labels) + " |"
    rule = "|---|" + "|".join("---:" for _ in labels) + "|"
    return "\n".join([header, rule, *rows]) + "\n"


def _category_score(run: Mapping[str, Any], category: str) -> float | None:
    figures = (run.get("per_category") or {}).get(category)
    return headline(figures)[1] if figures else None


def _row(label: str, values: Sequence[Any], key: str, fmt) -> str:
    cells = [fmt(value) for value in values]
    best = _best_cell(values, cells, key)
    cells = [f"**{cell}**" if cell == best else cell for cell in cells]
    return f"| {label} | " + " | ".join(cells) + " |"


def _best_cell(values: Sequence[Any], cells: Sequence[str], key: str) -> str | None:
    """The displayed best value; None when the row is not ranked or every run shows the same value (runs
    that tie at the shown precision are all best)."""
    present = [(value, cell) for value, cell in zip(values, cells) if isinstance(value, (int, float))]
    if key in NOT_RANKED or len({cell for _, cell in present}) < 2:
        return None
    chooser = min if key in LOWER_IS_BETTER else max
    return chooser(present, key=lambda pair: pair[0])[1]
