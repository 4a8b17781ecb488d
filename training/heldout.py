"""Held-out figures with their uncertainty, and the baselines they are read against.

The quickstart's evaluation writes one verdict per question (`sr_real_core.evaluation`, `verdicts.jsonl`). From
those rows this module computes the figures the targets use, each with a 95% bootstrap interval (questions
resampled with replacement, percentile interval; a fixed seed, so one run always reports the same interval),
and paired intervals for differences (both sides resampled on the same questions: RL minus SFT, DTR minus LOR).

Baselines answer the same held-out questions without looking at the image, and are scored by the same scorer
as the model (`sr_real_core.evaluation.scoring`):
- `prior`: the most frequent training answer of the question's family and answer type (yes/no, letter, clock
  hour; the median training value for a length), with every object at the median training centre;
- `lift`: each marked region's centre lifted geometrically from the sensor depth (`region3d.lift_region`,
  the visible surface), and on the questions those centres decide the answer computed exactly from them (the
  prior's answer elsewhere): the upper reference for DTR centres and for the answers centres decide.

Where a DTR answer is lost: on the questions the objects' centres decide (left/right, above/below, behind/in
front, the three distances, the clock direction), `centre_decided` sets each DTR answer beside the answer
computed exactly from the centres that same completion wrote. A model that reasons well from its own centres
scores as those computed answers do; the gap is what its reasoning loses, the rest is what its grounding loses.
`reasoning_steps` reads back which relation step each DTR chain wrote (`data.cot.dtr_step`) against the step its
question's family needs: whether the chain is chosen by the question at all.
"""
from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESAMPLES = 1000
QUALITATIVE = ("yesno", "choice")
Rows = Sequence[Mapping[str, Any]]


# ---------------------------------------------------------------------------------------------- figures


def _mean(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def qualitative_accuracy(rows: Rows) -> float | None:
    return _mean([bool(r["correct"]) for r in rows if r["answer_type"] in QUALITATIVE])


def quantitative_success(rows: Rows) -> float | None:
    return _mean([bool(r["correct"]) for r in rows if r["answer_type"] == "numeric"])


def accuracy(rows: Rows) -> float | None:
    return _mean([bool(r["correct"]) for r in rows])


def centre_error_median(rows: Rows) -> float | None:
    errors = [e for r in rows if r.get("path") == "dtr" for e in r.get("center_errors") or [] if e is not None]
    return float(np.median(errors)) if errors else None


def top_yesno_share(rows: Rows) -> float | None:
    """Share of the parsed yes/no answers that are the most frequent one (1.0: one answer to everything)."""
    answers = [str(r["pred"]) for r in rows if r["answer_type"] == "yesno" and r["pred"] is not None]
    return Counter(answers).most_common(1)[0][1] / len(answers) if answers else None


FIGURES: dict[str, Callable[[Rows], float | None]] = {
    "qualitative_accuracy": qualitative_accuracy,
    "quantitative_success": quantitative_success,
    "accuracy": accuracy,
    "center_error_median_m": centre_error_median,
    "top_yesno_share": top_yesno_share,
}


# -------------------------------------------------------------------------------------------- intervals


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentiles(values: list[float]) -> list[float] | None:
    return [float(v) for v in np.percentile(values, (2.5, 97.5))] if values else None


def interval(figure: Callable[[Rows], float | None], rows: Rows, resamples: int = RESAMPLES,
             seed: int = 0) -> list[float] | None:
    """95% bootstrap interval of `figure(rows)`; None where the figure is undefined."""
    draws = [figure([rows[i] for i in sample]) for sample in _indices(len(rows), resamples, seed)] if rows else []
    return _percentiles([d for d in draws if d is not None])


def paired_interval(figure: Callable[[Rows], float | None], rows: Rows, baseline: Rows,
                    resamples: int = RESAMPLES, seed: int = 0) -> list[float] | None:
    """95% bootstrap interval of figure(rows) - figure(baseline), both rows lists over the same questions in
    the same order, resampled together."""
    if len(rows) != len(baseline):
        raise ValueError(f"paired rows differ in length: {len(rows)} vs {len(baseline)}")
    values = []
    for sample in _indices(len(rows), resamples, seed) if rows else []:
        a, b = figure([rows[i] for i in sample]), figure([baseline[i] for i in sample])
        if a is not None and b is not None:
            values.append(a - b)
    return _percentiles(values)


def figures_with_intervals(rows: Rows) -> dict[str, dict[str, Any]]:
    """{figure: {"value", "ci"}} for every figure of `FIGURES`."""
    return {name: {"value": figure(rows), "ci": interval(figure, rows)} for name, figure in FIGURES.items()}


def load_rows(verdicts: str | Path) -> list[dict[str, Any]]:
    with open(verdicts, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_verdicts(folder: str | Path) -> list[dict[str, Any]]:
    """An evaluation folder's verdict rows in id order: two folders over the same questions pair row by row."""
    return sorted(load_rows(Path(folder) / "verdicts.jsonl"), key=lambda row: row["id"])


# -------------------------------------------------------------------------------------------- per family


def families(qa: str | Path) -> dict[str, str]:
    """Question id -> family (`category` when a record has no family)."""
    with open(qa, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return {r["id"]: r.get("family") or r.get("category") or "?" for r in records}


def per_family(rows: Rows, family_of: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """{family: {"n", "accuracy"}} over the rows."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        groups[family_of.get(row["id"], "?")].append(bool(row["correct"]))
    return {family: {"n": len(flags), "accuracy": _mean(flags)} for family, flags in sorted(groups.items())}


# --------------------------------------------------------------------------------------------- baselines


def _train_priors(train: Rows) -> tuple[dict[tuple[str, str], str], list[float]]:
    """Most frequent answer per (family, answer type) (median value for lengths), and the median centre."""
    answers: dict[tuple[str, str], list[str]] = defaultdict(list)
    centres = []
    for record in train:
        answers[(record["family"], record["answer_type"])].append(str(record["solution"]))
        centres += [c["center"] for c in record.get("gt_centers") or []]
    prior = {}
    for key, values in answers.items():
        if key[1] == "numeric":
            prior[key] = f"{statistics.median(float(v) for v in values):.2f} m"
        elif key[1] == "direction":
            prior[key] = f"{Counter(values).most_common(1)[0][0]} o'clock"
        else:
            prior[key] = Counter(values).most_common(1)[0][0]
    return prior, [float(v) for v in np.median(np.array(centres), axis=0)] if centres else [0.0, 0.0, 1.0]


def _lifted_centres(record: Mapping[str, Any], base: Path) -> dict[str, list[float]]:
    """Marked region ref -> its geometric lift from the record's depth (regions that do not lift are left out)."""
    from sr_real_core.geometry import Intrinsics, load_depth
    from sr_real_core.region3d import RegionLiftError, lift_region

    if not record.get("regions") or not record.get("depth") or not record.get("intrinsics"):
        return {}
    depth = load_depth(base / record["depth"], record.get("depth_unit"))
    camera = Intrinsics.from_dict(record["intrinsics"])
    lifted = {}
    for region in record["regions"]:
        try:
            lifted[region["ref"]] = [float(c) for c in lift_region(depth, camera, box=region["bbox_2d"],
                                                                   up=record.get("up")).center]
        except RegionLiftError:
            continue
    return lifted


def baseline_rows(train_qa: str | Path, heldout_qa: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Verdict rows of the `prior` and `lift` baselines on the held-out questions (see the module doc)."""
    from sr_real_core.evaluation.records import Prediction, load_qa
    from sr_real_core.evaluation.scoring import score_all
    from sr_real_core.grammar import Detection, render_dtr

    train = [r.raw for r in load_qa(train_qa)]
    prior, median_centre = _train_priors(train)
    records = load_qa(heldout_qa)
    runs: dict[str, dict[str, Prediction]] = {"prior": {}, "lift": {}}
    for record in records:
        raw = record.raw
        answer = prior.get((raw.get("family"), record.answer_type), "yes")
        refs = [c["ref"] for c in raw.get("gt_centers") or []]
        lifted = _lifted_centres(raw, record.base_dir)
        for name, centres in (("prior", {ref: median_centre for ref in refs}), ("lift", lifted)):
            detections = [Detection(ref, None, tuple(centres[ref])) for ref in refs if ref in centres]
            computed = answer_from_centres(raw, [d.center for d in detections]) if name == "lift" else None
            runs[name][record.id] = Prediction(record.id, render_dtr(detections, "baseline", computed or answer), {})
    return {name: [v.to_dict() for v in score_all(records, predictions)] for name, predictions in runs.items()}


# ------------------------------------------------------------------------------ answers from centres


def answer_from_centres(record: Mapping[str, Any], centres: Sequence[Sequence[float]]) -> str | None:
    """The answer computed exactly from camera-frame centres of the question's objects (in the order the
    question names them), as the truth is computed (`data.facts`); None for a question centres do not decide
    (sizes, one object), without a centre for each object, or for a direction between centres one above the
    other."""
    from sr_real_core import relations as rel
    from sr_real_core.data.facts import AXIS_WORDS, PAIR_METRICS

    family, kind, word = record.get("family"), record.get("answer_type"), str(record.get("category")).split("_")[0]
    if len(centres) != 2 or len(record.get("gt_centers") or []) != 2:
        return None
    a, b = ({"center": centre, "size": (0.0, 0.0, 0.0)} for centre in centres)
    up = record.get("up")
    if kind in QUALITATIVE and word in AXIS_WORDS and AXIS_WORDS[word][0] == family:
        holds = AXIS_WORDS[word][1](a, b, up=up)
        return ("yes" if holds else "no") if kind == "yesno" else ("A" if holds else "B")
    if kind == "numeric" and family in PAIR_METRICS:
        return f"{PAIR_METRICS[family][0](a, b, up=up):.2f} m"
    if kind == "direction" and family == "direction":
        try:
            return f"{rel.clock_direction(a, b, up=up)} o'clock"
        except ValueError:  # one centre straight above the other: no direction to compute
            return None
    return None


def decided_by_centres(record: Mapping[str, Any]) -> bool:
    truth = [c["center"] for c in record.get("gt_centers") or []]
    return answer_from_centres(record, truth) is not None


def _written_centres(row: Mapping[str, Any], record: Mapping[str, Any]) -> list[list[float]]:
    """The centres a verdict row's completion wrote, in the order it wrote them (DTR completions list the
    question's objects in the question's order, and reason from them so), one per object of the question; fewer
    where it wrote fewer. Names are not checked: a centre under the wrong label still informs the reasoning (how
    many objects get a centre under their own name is `center_match_rate`)."""
    return [list(d["center"]) for d in (row.get("detections") or [])[:len(record.get("gt_centers") or [])]]


DECIDED_FIGURES = ("qualitative_accuracy", "quantitative_success", "accuracy")


def centre_decided(rows: Rows, heldout_qa: str | Path) -> dict[str, Any]:
    """On the questions centres decide, an evaluation's answers beside those computed exactly from the centres
    each completion wrote (a question whose objects did not all get one counts as wrong): {"n",
    "answered": {figure: {value, ci}}, "computed": {...}, "difference": {figure: paired ci of answered - computed}}
    for the figures of `DECIDED_FIGURES` (relative position; distances; all, directions included)."""
    from sr_real_core.evaluation.records import Prediction, load_qa
    from sr_real_core.evaluation.scoring import score_all
    from sr_real_core.grammar import render_dtr

    records = {r.id: r for r in load_qa(heldout_qa) if decided_by_centres(r.raw)}
    answered = sorted((row for row in rows if row["id"] in records), key=lambda row: row["id"])
    predictions = {}
    for row in answered:
        answer = answer_from_centres(records[row["id"]].raw, _written_centres(row, records[row["id"]].raw))
        if answer is not None:
            predictions[row["id"]] = Prediction(row["id"], render_dtr([], "computed from the written centres",
                                                                      answer), {})
    computed = [v.to_dict() for v in score_all([records[row["id"]] for row in answered], predictions)]
    chosen = {name: FIGURES[name] for name in DECIDED_FIGURES}
    return {"n": len(answered),
            "answered": {name: {"value": f(answered), "ci": interval(f, answered)} for name, f in chosen.items()},
            "computed": {name: {"value": f(computed), "ci": interval(f, computed)} for name, f in chosen.items()},
            "difference": {name: paired_interval(f, answered, computed) for name, f in chosen.items()}}


# ----------------------------------------------------------------------------------- reasoning steps


def _right_step_share(rows: Rows) -> float | None:
    return _mean([row["written"] == row["needed"] for row in rows])


def reasoning_steps(rows: Rows, family_of: Mapping[str, str]) -> dict[str, Any]:
    """Which relation step the DTR chains of thought wrote, by the step their question needs (`data.cot`):
    {"n", "right": {value, ci} (share that wrote the needed step), "by_step": {needed: {"n", "written":
    {step or "none": share}}}} over the rows whose completion took the DTR path (the verdict's parsed `path` and
    `reasoning`, the `<think>` text)."""
    from sr_real_core.data.cot import DTR_STEP_OF_FAMILY, DTR_STEPS, dtr_step

    steps = []
    for row in rows:
        needed = DTR_STEP_OF_FAMILY.get(family_of.get(row["id"], ""))
        if row.get("path") == "dtr" and needed is not None:
            steps.append({"needed": needed, "written": dtr_step(row.get("reasoning") or "") or "none"})
    by_step: dict[str, Counter] = defaultdict(Counter)
    for step in steps:
        by_step[step["needed"]][step["written"]] += 1
    return {"n": len(steps), "right": {"value": _right_step_share(steps), "ci": interval(_right_step_share, steps)},
            "by_step": {needed: {"n": sum(by_step[needed].values()),
                                 "written": {k: v / sum(by_step[needed].values())
                                             for k, v in by_step[needed].most_common()}}
                        for needed in DTR_STEPS if needed in by_step}}
