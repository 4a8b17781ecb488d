"""The quickstart's report: `runs/quickstart/report.md` with plots in `runs/quickstart/plots/`.

Sections: what ran and how long each stage took; the data; training curves (SFT loss, RL reward and its
components, path shares, kept groups); a table per path (LOR / DTR / auto) before and after RL; the targets
of the training issue with the measured value and whether it is met; the showcase answers; and the ablation
table when `sr-real train ablations` has written one beside the quickstart (`runs/ablations/results.json`).
"""
from __future__ import annotations

import json
import os
import platform
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sr_real.training.runs import read_log
from sr_real_core.query import PROMPT_PATHS

TABLE_METRICS = (  # key, heading, format
    ("qualitative_accuracy", "qualitative acc.", "pct"),
    ("quantitative_success", "quantitative success", "pct"),
    ("abs_rel", "abs-rel error", "num"),
    ("center_error_median_m", "DTR centre error (median, m)", "num"),
    ("mean_reward", "mean reward", "num"),
    ("path_share_dtr", "DTR path share", "pct"),
    ("accuracy", "accuracy (all)", "pct"),
    ("format_failure_rate", "format failures", "pct"),
    ("qualitative_unparsed", "yes/no + choice answers of the wrong kind", "pct"),
)


def fmt(value: Any, kind: str = "num") -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}%" if kind == "pct" else f"{value:.3f}"


# ------------------------------------------------------------------------------------------------ targets


def _below(value, bound):
    return value is not None and value < bound


def _above(value, bound):
    return value is not None and value > bound


def target_checks(metrics: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target of the training issue, on the RL model."""
    sft, rl = metrics["sft"], metrics["rl"]
    dtr, lor, auto = rl["dtr"], rl["lor"], rl["auto"]
    reward_gain = [(rl[p]["mean_reward"] or 0) - (sft[p]["mean_reward"] or 0) for p in PROMPT_PATHS]
    accuracy_gain = [(rl[p]["accuracy"] or 0) - (sft[p]["accuracy"] or 0) for p in PROMPT_PATHS]
    best_fixed = max(lor["accuracy"] or 0, dtr["accuracy"] or 0)
    return [
        ("DTR median centre error < 0.35 m", f"{fmt(dtr['center_error_median_m'])} m",
         _below(dtr["center_error_median_m"], 0.35)),
        ("quantitative success > 40% on DTR", fmt(dtr["quantitative_success"], "pct"),
         _above(dtr["quantitative_success"], 0.40)),
        ("qualitative accuracy > 75% (auto mode)", fmt(auto["qualitative_accuracy"], "pct"),
         _above(auto["qualitative_accuracy"], 0.75)),
        ("RL raises the mean reward over SFT (per path lor/dtr/auto)",
         " / ".join(f"{g:+.3f}" for g in reward_gain), all(g > 0 for g in reward_gain)),
        ("RL raises accuracy over SFT (per path lor/dtr/auto)",
         " / ".join(f"{100 * g:+.1f} pt" for g in accuracy_gain), all(g > 0 for g in accuracy_gain)),
        ("DTR beats LOR on metric questions (quantitative success)",
         f"DTR {fmt(dtr['quantitative_success'], 'pct')} vs LOR {fmt(lor['quantitative_success'], 'pct')}",
         (dtr["quantitative_success"] or 0) > (lor["quantitative_success"] or 0)),
        ("auto mode >= the better fixed path (accuracy)",
         f"auto {fmt(auto['accuracy'], 'pct')} vs best fixed {fmt(best_fixed, 'pct')}",
         (auto["accuracy"] or 0) >= best_fixed),
    ]


# ------------------------------------------------------------------------------------------------- tables


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_table(metrics: Mapping[str, Any]) -> str:
    header = ["metric"] + [f"{path.upper()} {stage}" for path in PROMPT_PATHS for stage in ("SFT", "RL")]
    rows = [[heading] + [fmt(metrics[stage][path].get(key), kind) for path in PROMPT_PATHS for stage in ("sft", "rl")]
            for key, heading, kind in TABLE_METRICS]
    return table(header, rows)


def answers_table(rows: Sequence[Mapping[str, Any]], out: Path) -> str:
    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")

    body = [[cell(r["question"]), cell(r["truth"]), cell(r["answer"] if r["answer"] is not None else "(none)"),
             cell(r["path"] or "none"), f"{r['reward']:.2f}", f"[marks]({os.path.relpath(r['image'], out)})"]
            for r in rows]
    return table(["question", "truth", "model answer", "path", "reward", "image"], body)


# -------------------------------------------------------------------------------------------------- plots


def _series(log: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(entry["step"], entry[key]) for entry in log if entry.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def _plot(path: Path, title: str, log: Sequence[Mapping[str, Any]], keys: Sequence[str], ylabel: str) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(key, *_series(log, key)) for key in keys]
    curves = [c for c in curves if c[1]]
    if not curves:
        return None
    figure, axes = plt.subplots(figsize=(6, 3.5))
    for key, steps, values in curves:
        axes.plot(steps, values, label=key, marker="." if len(steps) < 30 else None)
    axes.set(title=title, xlabel="step", ylabel=ylabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _plot_metrics(path: Path, metrics: Mapping[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = (("qualitative_accuracy", "qualitative acc."), ("quantitative_success", "quantitative success"),
            ("mean_reward", "mean reward"))
    figure, axes = plt.subplots(1, len(keys), figsize=(10, 3.2))
    for axis, (key, label) in zip(axes, keys):
        for offset, stage in ((-0.2, "sft"), (0.2, "rl")):
            values = [metrics[stage][p].get(key) or 0.0 for p in PROMPT_PATHS]
            axis.bar([i + offset for i in range(len(PROMPT_PATHS))], values, width=0.4, label=stage.upper())
        axis.set_xticks(range(len(PROMPT_PATHS)), [p.upper() for p in PROMPT_PATHS])
        axis.set_title(label)
        axis.set_ylim(0, 1)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# ------------------------------------------------------------------------------------------------- report


def refresh_report(out: str | Path) -> Path:
    """Write a finished quickstart's report again from its saved results (e.g. once the ablations exist)."""
    out = Path(out)
    metrics, facts, showcase = (json.loads((out / name).read_text(encoding="utf-8"))
                                for name in ("metrics.json", "facts.json", "showcase/answers.json"))
    return write_report(out, metrics, facts, showcase)


def write_report(out: str | Path, metrics: Mapping[str, Any], facts: Mapping[str, Any],
                 showcase: Mapping[str, Any]) -> Path:
    out = Path(out)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    sft_log, rl_log = read_log(out / "sft"), read_log(out / "rl")
    figures: list[tuple[str, Path | None]] = [
        ("SFT", _plot(plots / "sft_loss.png", "cold-start SFT", sft_log, ["loss", "mean_token_accuracy"], "value")),
        ("RL reward", _plot(plots / "rl_reward.png", "GRPO reward", rl_log,
                            ["reward", "reward/accuracy", "reward/format", "reward/detection"], "mean per step")),
        ("RL paths", _plot(plots / "rl_paths.png", "GRPO: completions per path, kept groups", rl_log,
                           ["path/lor", "path/dtr", "path/none", "filter/kept_groups", "format_failures"], "share")),
        ("evaluation", _plot_metrics(plots / "metrics.png", metrics)),
    ]
    sections = [
        _header(metrics, facts),
        "## Results on held-out scenes\n\n" + _results(metrics, facts),
        "## Targets\n\n" + _targets(metrics, sft_log, rl_log, out / "eval" / "rl" / "auto" / "verdicts.jsonl"),
        "## Training\n\n" + _training(facts, sft_log, rl_log, figures, out),
        "## Questions on whole scenes\n\n" + _showcase(showcase, out),
        "## Ablations\n\n" + _ablations(out.parent / "ablations"),
    ]
    path = out / "report.md"
    path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return path


def _header(metrics: Mapping[str, Any], facts: Mapping[str, Any]) -> str:
    stages = ", ".join(f"{name} {minutes:.2f}" for name, minutes in facts["stage_minutes"].items())
    smoke = f" (smoke run: --max-steps {facts['max_steps']})" if facts.get("max_steps") else ""
    cpu = platform.processor() or platform.machine()
    load = facts.get("load_average") or [0.0]
    return (f"# SR-REAL quickstart report{smoke}\n\n"
            f"Total: **{metrics['minutes']:.1f} minutes** on {os.cpu_count()} CPU cores ({cpu}), no GPU, no "
            f"downloads. Minutes per stage: {stages}. The 5-minute load average at the stage ends was "
            f"{min(load):.1f}-{max(load):.1f}" + (
                f" (above {os.cpu_count()}: other processes competed for the cores, so the run was slower than "
                "it would be alone)" if max(load) > (os.cpu_count() or 1) + 0.5 else "") + ".\n\n"
            "A tiny SR-REAL model (Qwen2.5-VL architecture scaled to a few million parameters, random init, "
            "local tokenizer) is cold-started by SFT on synthetic scenes and then trained with GRPO on the SR-REAL "
            "rewards. It is far too small, and trained far too briefly, to match a 3B/7B model: the point is that "
            "every stage of the method runs end to end and the figures below are measured, not that they are good.")


def _results(metrics: Mapping[str, Any], facts: Mapping[str, Any]) -> str:
    return (f"{facts['heldout_questions']} questions from scenes held out of training, asked three ways: LOR (the "
            "prompt asks for language-only reasoning), DTR (detect-then-reason) and auto (the prompt offers both "
            "and the model picks). SFT = after the cold start, RL = after GRPO. Quantitative success: "
            "0.75 gt <= pred <= 1.25 gt; the centre error is the distance from each true object centre to the "
            "DTR detection naming its region.\n\n" + metrics_table(metrics) + "\n\n![evaluation](plots/metrics.png)")


def _targets(metrics: Mapping[str, Any], sft_log, rl_log, auto_verdicts: Path) -> str:
    checks = target_checks(metrics)
    rows = [[name, measured, "met" if met else "**not met**"] for name, measured, met in checks]
    text = table(["target (RL model)", "measured", ""], rows)
    if all(met for _, _, met in checks):
        return text
    sft_steps = max((e["step"] for e in sft_log), default=0)
    rl_steps = max((e["step"] for e in rl_log), default=0)
    completions = next((e.get("completions/mean_length") for e in rl_log if "completions/mean_length" in e), None)
    rl = metrics["rl"]
    return text + (
        "\n\nWhy targets are missed: the model has 4.1M parameters, starts from random weights and a 2k-token "
        f"vocabulary, and trains for {sft_steps} SFT steps of 8 records and {rl_steps} GRPO steps of 16 "
        f"completions (mean length {fmt(completions)} tokens at the first step) on 2 CPU cores. In that budget it "
        "learns the output grammar and the templates of the chains of thought, but reads metric 3D positions "
        f"off 24 image tokens only roughly (median DTR centre error {fmt(rl['dtr']['center_error_median_m'])} m), "
        "so the numbers its reasoning computes are rough too, which every metric target needs; and "
        f"{fmt(rl['auto']['qualitative_unparsed'], 'pct')} of its yes/no and multiple-choice answers in auto mode "
        "are not of the kind asked for (e.g. a yes/no to a lettered choice, a length to a yes/no question; the "
        "last row of the table), which caps qualitative accuracy: the answer convention in the prompt does not "
        "yet fully condition its answer. "
        + _bias_sentence(answer_bias(auto_verdicts)) +
        "The reference trains an 8B model for 600 GRPO steps of 2,560 completions after a large cold start. "
        f"Held-out figures come from {metrics['rl']['lor']['n']} "
        f"questions per path (one question = {100 / max(metrics['rl']['lor']['n'], 1):.1f} points of accuracy; "
        "fewer for the qualitative and quantitative subsets), so differences of a few points are within noise.")


def answer_bias(verdicts: Path) -> dict[str, tuple[str, float, float]]:
    """Per qualitative answer type (yesno, choice): the model's most frequent parsed answer, its share of the
    parsed answers, and the share of questions whose truth it is. A model that gives one answer to every
    question scores the base rate of that answer, whatever it understood."""
    from sr_real_core.evaluation.records import iter_json_lines

    if not verdicts.is_file():
        return {}
    rows = [row for _, row in iter_json_lines(verdicts)]
    bias = {}
    for kind in ("yesno", "choice"):
        answers = [str(r["pred"]) for r in rows if r["answer_type"] == kind and r["pred"] is not None]
        truths = [str(r["solution"]) for r in rows if r["answer_type"] == kind]
        if answers:
            common, count = Counter(answers).most_common(1)[0]
            bias[kind] = (common, count / len(answers), truths.count(common) / len(truths))
    return bias


def _bias_sentence(bias: Mapping[str, tuple[str, float, float]]) -> str:
    if not bias:
        return ""
    names = {"yesno": "yes/no", "choice": "lettered"}
    parts = [f"'{answer}' makes up {fmt(share, 'pct')} of its {names[kind]} answers (it is the truth for "
             f"{fmt(truth, 'pct')} of those questions)" for kind, (answer, share, truth) in bias.items()]
    return ("In auto mode " + " and ".join(parts) + ": where one answer dominates, qualitative accuracy "
            "measures how often that answer happens to be true more than any spatial judgement. ")


def _training(facts: Mapping[str, Any], sft_log, rl_log, figures, out: Path) -> str:
    manifest = facts["manifest"]
    counts = ", ".join(f"{name} {count}" for name, count in manifest["counts"].items())
    kinds = ", ".join(f"{k} {v}" for k, v in manifest["per_kind"]["sft_train"].items())
    last_sft = next((e for e in reversed(sft_log) if "loss" in e), {})
    rl_steps = [e for e in rl_log if "reward" in e]
    lines = [f"Data: {len(manifest['scenes']['train'])} training scenes, {len(manifest['scenes']['eval'])} held out; "
             f"records: {counts}. SFT mixture: {kinds}.",
             f"SFT: {last_sft.get('step', 0)} steps, final loss {fmt(last_sft.get('loss'))}, token accuracy "
             f"{fmt(last_sft.get('mean_token_accuracy'), 'pct')}.",
             f"RL: {len(rl_steps)} logged GRPO steps; reward {fmt(rl_steps[0]['reward'] if rl_steps else None)} at the "
             f"first step, {fmt(rl_steps[-1]['reward'] if rl_steps else None)} at the last. Configs: "
             f"`{out / 'sft' / 'config.yaml'}`, `{out / 'rl' / 'config.yaml'}`."]
    lines += [f"![{name}](plots/{path.name})" for name, path in figures[:3] if path is not None]
    return "\n\n".join(lines)


def _showcase(showcase: Mapping[str, Any], out: Path) -> str:
    titles = {"rendered": "A rendered scene held out of training", "tabletop": "The bundled tabletop "
              "(`examples/tabletop`, analytic RGB-D, exact truth)", "real": "A real RGB-D frame (TUM, from the shared "
              "data; truth = boxes lifted from the sensor depth)"}
    parts = ["The RL model answers in auto mode on marked regions (it sees the marked image, the depth and the "
             "intrinsics); the reward column is the SR-REAL total reward of its completion."]
    for name, rows in showcase["answers"].items():
        parts.append(f"### {titles.get(name, name)}\n\n" + (answers_table(rows, out) if rows else "(no question)"))
    if showcase.get("real_frame_note"):
        parts.append(f"Real frame: {showcase['real_frame_note']}.")
    return "\n\n".join(parts)


def _ablations(directory: Path) -> str:
    results = directory / "results.json"
    if not results.is_file():
        return ("Not run here (`sr-real train ablations`, a separate command outside `make demo`; see "
                "training/README.md for its runtime). When it has run, its table appears here.")
    return ablation_markdown(json.loads(results.read_text(encoding="utf-8")))


ABLATION_COLUMNS = (("accuracy", "accuracy", "pct"), ("qualitative_accuracy", "qualitative", "pct"),
                    ("quantitative_success", "quantitative", "pct"), ("center_error_median_m", "centre err (m)", "num"),
                    ("mean_reward", "mean reward", "num"), ("format_failure_rate", "format failures", "pct"))


def ablation_markdown(results: dict[str, Any]) -> str:
    """One row per (model, path asked, stage): the figures of `ABLATION_COLUMNS` on the held-out questions."""
    rows = []
    comparisons = (("joint vs single path", ("lor_only", "dtr_only")),
                   ("blended vs single-source cold start", ("cot_only",)),
                   ("RL with vs without the detection reward", ("no_detection",)))
    for ablation, names in comparisons:
        for name in names:
            variant = results["variants"].get(name)
            if variant is None:
                continue
            for path in variant["rl"]:
                for stage in ("sft", "rl"):
                    base = results["baseline"][stage].get(path, {})
                    mine = variant[stage][path]
                    rows.append([ablation, f"baseline (joint, blended, all rewards)", path, stage.upper()]
                                + [fmt(base.get(k), kind) for k, _, kind in ABLATION_COLUMNS])
                    rows.append([ablation, name, path, stage.upper()]
                                + [fmt(mine.get(k), kind) for k, _, kind in ABLATION_COLUMNS])
    header = ["ablation", "model", "path asked", "after"] + [heading for _, heading, _ in ABLATION_COLUMNS]
    minutes = results.get("minutes")
    note = (f"Runtime: {minutes:.1f} min for the variants (the baseline is the quickstart's own run).\n\n"
            if minutes else "")
    return note + table(header, rows)
