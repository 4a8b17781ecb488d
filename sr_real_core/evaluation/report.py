"""The Markdown report of one evaluation, with its plots (matplotlib, written as PNG beside it).

``report.md`` holds: the inputs; the overall figures; each benchmark's figures by its authors' protocol
beside ours (``protocol``); a table per category; the paths taken (shares and
figures per path); the DTR centre errors; three plots (``plots/accuracy_per_category.png``,
``plots/error_histograms.png``, ``plots/path_shares.png``); and the listings of unparsed answers, missing
predictions and predictions for unknown ids, so that nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sr_real_core.evaluation.protocol import PROTOCOLS
from sr_real_core.evaluation.scoring import Verdict, headline

PLOT_NAMES = ("accuracy_per_category.png", "error_histograms.png", "path_shares.png")
ANSWER_EXCERPT_CHARS = 80
CENTER_THRESHOLDS_M = (0.1, 0.25, 0.5)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def number(value: float | None, unit: str = "", digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def count(value: int | None) -> str:
    return "–" if value is None else str(value)


# (label, metrics key, formatter): the overall table, in reading order.
OVERALL_ROWS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("Questions", "n", count),
    ("Unparsed answers", "n_unparsed", count),
    ("Accuracy, all questions", "accuracy", percent),
    ("Qualitative accuracy (choice, yes/no)", "qualitative_accuracy", percent),
    ("Quantitative success (0.75–1.25 × truth)", "quantitative_success", percent),
    ("Mean abs-rel error", "abs_rel", number),
    ("Q-Spatial δ < 2", "qspatial_delta2", percent),
    ("Q-Spatial δ < 1.5", "qspatial_delta1_5", percent),
    ("MRA", "mra", percent),
    ("Direction success (± 1 hour)", "direction_success", percent),
    ("DTR centre error, median", "center_error_median_m", lambda value: number(value, " m")),
    ("DTR centres within 0.1 m", "center_within_0_1m", percent),
    ("DTR centres within 0.25 m", "center_within_0_25m", percent),
    ("DTR centres within 0.5 m", "center_within_0_5m", percent),
    ("DTR regions matched by a detection", "center_match_rate", percent),
    ("Format failures (output grammar)", "format_failure_rate", percent),
)


def write_report(out_dir: str | Path, metrics: Mapping[str, Any], verdicts: Sequence[Verdict],
                 gallery_name: str | None = None) -> Path:
    """Write ``report.md`` and its plots into ``out_dir``; returns the report's path."""
    out_dir = Path(out_dir)
    write_plots(out_dir / "plots", metrics, verdicts)
    path = out_dir / "report.md"
    path.write_text(render_report(metrics, gallery_name), encoding="utf-8")
    return path


def render_report(metrics: Mapping[str, Any], gallery_name: str | None = None) -> str:
    overall = [(label, fmt(metrics.get(key))) for label, key, fmt in OVERALL_ROWS]
    sections = [
        "# Evaluation report",
        _inputs_section(metrics.get("inputs") or {}, gallery_name),
        "## Overall\n\n" + _table(("Figure", "Value"), overall),
        _benchmark_section(metrics.get("per_benchmark") or {}),
        "## Per category\n\n" + _category_table(metrics.get("per_category") or {}),
        "## Paths taken\n\n" + _path_table(metrics.get("per_path") or {}, metrics.get("path_shares") or {}),
        "## Plots\n\n" + "\n\n".join(f"![{name[:-4].replace('_', ' ')}](plots/{name})" for name in PLOT_NAMES),
        _unparsed_section(metrics.get("unparsed") or []),
        _id_listing("Missing predictions", metrics.get("missing_predictions") or [],
                    "QA records without a prediction; each counts as unparsed and wrong."),
        _id_listing("Predictions for unknown ids", metrics.get("unknown_predictions") or [],
                    "Predictions whose id is not in the QA file; they were not scored."),
    ]
    return "\n\n".join(sections) + "\n"


def _inputs_section(inputs: Mapping[str, Any], gallery_name: str | None) -> str:
    lines = [f"- {key.replace('_', ' ')}: `{value}`" for key, value in inputs.items() if value is not None]
    if gallery_name:
        lines.append(f"- examples: [{gallery_name}]({gallery_name})")
    return "\n".join(lines) if lines else "_No inputs recorded._"


def _benchmark_section(per_benchmark: Mapping[str, Mapping[str, Any]]) -> str:
    """Each benchmark as its authors score it, and our stricter reading where it differs."""
    rows, rules = [], []
    for name, figures in per_benchmark.items():
        labels = {key: label for label, key in PROTOCOLS[name].official}
        for key, official in figures["official"].items():
            ours = figures["ours"][key]
            shown = number if key == "abs_rel" else percent
            rows.append((figures["title"], count(figures["n"]), labels[key], shown(official),
                         shown(ours) + ("" if ours == official else " ≠")))
        rules.append(f"- {figures['title']}: official: {figures['official_rule']}. Ours: {figures['our_rule']}.")
    if not rows:
        return "## Per benchmark\n\n_No questions._"
    return ("## Per benchmark: official protocol and ours\n\n" + _table(("Benchmark", "n", "Figure", "Official",
                                                                          "Ours"), rows)
            + "\n\n" + "\n".join(rules))


def _category_table(per_category: Mapping[str, Mapping[str, Any]]) -> str:
    header = ("Category", "n", "Figure", "Score", "Abs-rel", "δ < 2", "MRA", "Unparsed")
    rows = []
    for category, figures in per_category.items():
        name, score = headline(figures)
        rows.append((category, count(figures["n"]), name.replace("_", " "), percent(score), number(figures["abs_rel"]),
                     percent(figures["qspatial_delta2"]), percent(figures["mra"]), count(figures["n_unparsed"])))
    return _table(header, rows) if rows else "_No questions._"


def _path_table(per_path: Mapping[str, Mapping[str, Any]], shares: Mapping[str, float]) -> str:
    header = ("Path", "Share", "n", "Accuracy", "Qualitative", "Quantitative", "Direction", "Centre median")
    rows = [
        (path, percent(shares.get(path)), count(figures["n"]), percent(figures["accuracy"]),
         percent(figures["qualitative_accuracy"]), percent(figures["quantitative_success"]),
         percent(figures["direction_success"]), number(figures["center_error_median_m"], " m"))
        for path, figures in per_path.items()
    ]
    note = "\n\n`none`: completions that follow neither grammar (free text; their answers are still scored)."
    return (_table(header, rows) + note) if rows else "_No completions._"


def _unparsed_section(unparsed: Sequence[Mapping[str, Any]]) -> str:
    title = f"## Unparsed answers ({len(unparsed)})"
    if not unparsed:
        return f"{title}\n\nEvery answer was understood."
    rows = [(f"`{entry['id']}`", entry.get("category") or "–", entry["reason"], _excerpt(entry.get("answer")))
            for entry in unparsed]
    return f"{title}\n\nThese count as wrong.\n\n" + _table(("Id", "Category", "Reason", "Answer"), rows)


def _id_listing(title: str, ids: Sequence[str], explanation: str) -> str:
    if not ids:
        return f"## {title} (0)\n\nNone."
    return f"## {title} ({len(ids)})\n\n{explanation}\n\n" + ", ".join(f"`{identifier}`" for identifier in ids)


def _excerpt(text: str | None) -> str:
    if text is None:
        return "–"
    flat = " ".join(text.split())
    flat = flat if len(flat) <= ANSWER_EXCERPT_CHARS else flat[: ANSWER_EXCERPT_CHARS - 1] + "…"
    return flat.replace("|", "\\|") or "(empty)"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ plots


def write_plots(plot_dir: Path, metrics: Mapping[str, Any], verdicts: Sequence[Verdict]) -> list[Path]:
    """The three report plots, as PNG files in ``plot_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    painters = (_plot_accuracy_per_category, _plot_error_histograms, _plot_path_shares)
    paths = []
    for name, paint in zip(PLOT_NAMES, painters):
        figure = paint(plt, metrics, verdicts)
        figure.savefig(plot_dir / name, dpi=110)
        plt.close(figure)
        paths.append(plot_dir / name)
    return paths


_KIND_COLOURS = {"qualitative_accuracy": "#4C72B0", "quantitative_success": "#DD8452",
                 "direction_success": "#55A868", "accuracy": "#8172B3"}
_KIND_LABELS = {"qualitative_accuracy": "qualitative accuracy", "quantitative_success": "quantitative success",
                "direction_success": "direction success (±1 h)", "accuracy": "accuracy (mixed kinds)"}


def _plot_accuracy_per_category(plt, metrics: Mapping[str, Any], verdicts: Sequence[Verdict]):
    per_category = metrics.get("per_category") or {}
    names = list(per_category)
    headlines = [headline(per_category[name]) for name in names]
    scores = [score or 0.0 for _, score in headlines]
    figure, axes = plt.subplots(figsize=(7, 0.32 * max(len(names), 3) + 1.6), layout="constrained")
    axes.barh(names, scores, color=[_KIND_COLOURS[kind] for kind, _ in headlines])
    for row, (name, score) in enumerate(zip(names, scores)):
        axes.text(score + 0.01, row, f"{100 * score:.0f}% (n={per_category[name]['n']})", va="center", fontsize=8)
    axes.set_xlim(0, 1.22)
    axes.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    axes.invert_yaxis()
    axes.set_xlabel("share correct")
    axes.set_title("Score per category")
    kinds = list(dict.fromkeys(kind for kind, _ in headlines))
    handles = [plt.Rectangle((0, 0), 1, 1, color=_KIND_COLOURS[kind]) for kind in kinds]
    figure.legend(handles, [_KIND_LABELS[kind] for kind in kinds], fontsize=8, loc="outside lower center",
                  ncol=len(kinds), frameon=False)
    return figure


def _plot_error_histograms(plt, metrics: Mapping[str, Any], verdicts: Sequence[Verdict]):
    figure, (relative_axes, center_axes) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    relative = [min(v.abs_rel, 2.0) for v in verdicts if v.abs_rel is not None]
    _histogram(relative_axes, relative, bins=40, limit=2.0, title="Numeric answers: |pred - gt| / gt (clipped at 2)",
               xlabel="relative error", marks=(0.25,), mark_label="SpatialRGPT band ±25%")
    centers = [min(error, 2.0) for v in verdicts for error in v.center_errors if error is not None]
    _histogram(center_axes, centers, bins=40, limit=2.0, title="DTR centre errors (m, clipped at 2)",
               xlabel="distance to the true centre (m)", marks=CENTER_THRESHOLDS_M, mark_label="0.1 / 0.25 / 0.5 m")
    return figure


def _histogram(axes, values, *, bins: int, limit: float, title: str, xlabel: str, marks, mark_label: str) -> None:
    axes.set_title(title, fontsize=10)
    axes.set_xlabel(xlabel)
    if not values:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes, color="grey")
        axes.set_xticks([])
        axes.set_yticks([])
        return
    axes.hist(values, bins=bins, range=(0, limit), color="#4C72B0")
    for index, mark in enumerate(marks):
        axes.axvline(mark, color="#C44E52", linestyle="--", linewidth=1, label=mark_label if index == 0 else None)
    axes.set_ylabel("questions" if "Numeric" in title else "regions")
    axes.legend(fontsize=8)


_PATH_COLOURS = {"lor": "#4C72B0", "dtr": "#55A868", "none": "#C44E52"}


def _plot_path_shares(plt, metrics: Mapping[str, Any], verdicts: Sequence[Verdict]):
    shares = metrics.get("path_shares") or {}
    per_path = metrics.get("per_path") or {}
    figure, axes = plt.subplots(figsize=(5, 3.2), layout="constrained")
    paths = list(shares)
    axes.bar(paths, [shares[path] for path in paths], color=[_PATH_COLOURS.get(path, "#8C8C8C") for path in paths])
    for column, path in enumerate(paths):
        accuracy = per_path.get(path, {}).get("accuracy")
        axes.text(column, shares[path] + 0.02, f"{100 * shares[path]:.0f}%\nacc. {percent(accuracy)}",
                  ha="center", fontsize=8)
    axes.set_ylim(0, 1.2)
    axes.set_ylabel("share of completions")
    axes.set_title("Path taken (with accuracy per path)")
    return figure
