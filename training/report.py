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

from sr_real.training.heldout import Rows, accuracy, load_rows, paired_interval, quantitative_success
from sr_real.training.runs import read_log
from sr_real_core.query import PROMPT_PATHS

TABLE_METRICS = (  # key, heading, format
    ("qualitative_accuracy", "qualitative acc.", "pct"),
    ("quantitative_success", "quantitative success", "pct"),
    ("abs_rel", "abs-rel error", "num"),
    ("center_error_median_m", "DTR centre error (median, m)", "num"),
    ("center_match_rate", "DTR objects given a centre under their name", "pct"),
    ("mean_reward", "mean reward", "num"),
    ("path_share_dtr", "DTR path share", "pct"),
    ("accuracy", "accuracy (all)", "pct"),
    ("format_failure_rate", "format failures", "pct"),
    ("qualitative_unparsed", "yes/no + choice answers of the wrong kind", "pct"),
)


def fmt(value: Any, kind: str = "num") -> str:
    if value is None:
        return "n/a"
    if kind == "pt":  # a difference of two shares, in points
        return f"{100 * value:+.1f} pt"
    return f"{100 * value:.1f}%" if kind == "pct" else f"{value:.3f}"


# ------------------------------------------------------------------------------------------------ targets


def ci(interval: Sequence[float] | None, kind: str = "num") -> str:
    """' [lo, hi]' of a 95% interval, or '' where there is none."""
    return f" [{fmt(interval[0], kind)}, {fmt(interval[1], kind)}]" if interval else ""


def _value(metrics: Mapping[str, Any], key: str, kind: str = "num") -> str:
    return fmt(metrics.get(key), kind) + ci((metrics.get("intervals") or {}).get(key), kind)


def _paired(verdicts: Mapping[str, Rows], figure, a: str, b: str) -> list[float] | None:
    return paired_interval(figure, verdicts[a], verdicts[b]) if a in verdicts and b in verdicts else None


def target_checks(metrics: Mapping[str, Any], verdicts: Mapping[str, Rows] | None = None
                  ) -> list[tuple[str, str, bool]]:
    """(target, measured with its 95% interval, met) for each target of issue 17, on the RL model. `verdicts`:
    verdict rows per "stage/path" (e.g. "rl/dtr"), for the paired intervals of differences; met is judged on
    the point value, the interval says how sure that is."""
    verdicts = verdicts or {}
    sft, rl = metrics["sft"], metrics["rl"]
    dtr, lor, auto = rl["dtr"], rl["lor"], rl["auto"]
    prior = (metrics.get("baselines") or {}).get("prior", {}).get("center_error_median_m", {})
    centre, centre_ci = dtr["center_error_median_m"], (dtr.get("intervals") or {}).get("center_error_median_m")
    quantitative_gap = (dtr["quantitative_success"] or 0) - (lor["quantitative_success"] or 0)
    gains = [(rl[p]["accuracy"] or 0) - (sft[p]["accuracy"] or 0) for p in PROMPT_PATHS]
    gain_cis = [_paired(verdicts, accuracy, f"rl/{p}", f"sft/{p}") for p in PROMPT_PATHS]
    best_fixed = max(lor["accuracy"] or 0, dtr["accuracy"] or 0)
    yes_shares = [rl[p].get("top_yesno_share") for p in PROMPT_PATHS]
    return [
        ("qualitative accuracy >= 80% (DTR)", _value(dtr, "qualitative_accuracy", "pct"),
         (dtr["qualitative_accuracy"] or 0) >= 0.80),
        ("qualitative accuracy >= 80% (auto)", _value(auto, "qualitative_accuracy", "pct"),
         (auto["qualitative_accuracy"] or 0) >= 0.80),
        ("DTR median centre error <= 0.15 m", _value(dtr, "center_error_median_m") + " m",
         centre is not None and centre <= 0.15),
        ("DTR centre error below the constant median centre by its interval",
         f"upper bound {fmt(centre_ci[1] if centre_ci else None)} m vs constant {fmt(prior.get('value'))} m",
         bool(centre_ci and prior.get("value") is not None and centre_ci[1] < prior["value"])),
        ("DTR quantitative success >= 40%", _value(dtr, "quantitative_success", "pct"),
         (dtr["quantitative_success"] or 0) >= 0.40),
        ("DTR quantitative success >= LOR + 10 points",
         fmt(quantitative_gap, "pt") + ci(_paired(verdicts, quantitative_success, "rl/dtr", "rl/lor"), "pt"),
         quantitative_gap >= 0.10),
        ("RL accuracy > SFT accuracy (lor / dtr / auto)",
         " / ".join(fmt(g, "pt") + ci(c, "pt") for g, c in zip(gains, gain_cis)),
         # a gain counts where it is above 0 and, where held-out rows give an interval, so is its lower bound
         all(g > 0 and (c is None or c[0] > 0) for g, c in zip(gains, gain_cis))),
        ("auto accuracy >= the better fixed path - 2 points",
         f"auto {_value(auto, 'accuracy', 'pct')} vs best fixed {fmt(best_fixed, 'pct')}",
         (auto["accuracy"] or 0) >= best_fixed - 0.02),
        ("most frequent yes/no answer <= 60% of yes/no answers (lor / dtr / auto)",
         " / ".join(fmt(share, "pct") for share in yes_shares),
         all(share is not None and share <= 0.60 for share in yes_shares)),
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
        "## Targets\n\n" + _targets(metrics, out, rl_log),
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
            "DTR detection naming its region. " + _decoding(facts) + "\n\n" + metrics_table(metrics)
            + "\n\n![evaluation](plots/metrics.png)"
            + ("\n\n### Against baselines (95% bootstrap intervals)\n\n" + baselines_table(metrics)
               + "\n\n### Accuracy per question family against its base rate\n\n" + family_table(metrics)
               if metrics.get("baselines") else "")
            + ("\n\n### Where DTR answers are lost: answered, or computed from the centres written\n\n"
               + decided_table(metrics) if metrics.get("centre_decided") else "")
            + ("\n\n### Which relation step the DTR chains wrote\n\n" + steps_table(metrics)
               if metrics.get("reasoning_steps") else ""))


def _decoding(facts: Mapping[str, Any]) -> str:
    if ((facts.get("recipe") or {}).get("eval") or {}).get("constrain_answer"):
        return ("Decoding is greedy, the answer constrained to the form of the question's type (yes/no, an option "
                "letter, a length with its unit, a clock hour: `sr_real_core.constrained`): the model chooses the "
                "answer, never one of another kind, so the wrong-kind row counts only completions that never "
                "opened `<answer>`.")
    return "Decoding is greedy and free (the answer is not constrained to its type)."


def _verdicts(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Verdict rows per "stage/path" of a quickstart's evaluation (those that exist)."""
    files = {f"{stage}/{path}": out / "eval" / stage / path / "verdicts.jsonl"
             for stage in ("sft", "rl") for path in PROMPT_PATHS}
    return {key: load_rows(file) for key, file in files.items() if file.is_file()}


def _targets(metrics: Mapping[str, Any], out: Path, rl_log) -> str:
    checks = target_checks(metrics, _verdicts(out))
    rows = [[name, measured, "met" if met else "**not met**"] for name, measured, met in checks]
    rewards = [e["reward"] for e in rl_log if "reward" in e]
    third = max(len(rewards) // 3, 1)
    trend = (f"\n\nGRPO training reward: mean {fmt(sum(rewards[:third]) / third)} over the first third of the "
             f"steps, {fmt(sum(rewards[-third:]) / third)} over the last third ({len(rewards)} steps)."
             if rewards else "")
    n = metrics["rl"]["lor"]["n"]
    return (table(["target (RL model)", "measured [95% interval]", ""], rows) + trend +
            f"\n\nIntervals: 95% bootstrap over the {n} held-out questions per path (1,000 resamples; differences "
            "paired on the same questions). A target is judged on the point value; where its interval straddles "
            "the bound, another seed or machine may land on the other side. "
            + _bias_sentence(answer_bias(out / "eval" / "rl" / "auto" / "verdicts.jsonl")))


BASELINE_FIGURES = (("accuracy", "accuracy (all)", "pct"), ("qualitative_accuracy", "qualitative acc.", "pct"),
                    ("quantitative_success", "quantitative success", "pct"),
                    ("center_error_median_m", "centre error (median, m)", "num"),
                    ("top_yesno_share", "most frequent yes/no answer", "pct"))


def baselines_table(metrics: Mapping[str, Any]) -> str:
    """The RL model per path beside the baselines (`training.heldout`), each figure with its interval."""
    columns = [(f"RL {p.upper()}", {k: {"value": metrics["rl"][p].get(k), "ci": (metrics["rl"][p].get("intervals")
                                                                              or {}).get(k)} for k, _, _ in BASELINE_FIGURES})
               for p in PROMPT_PATHS]
    names = {"prior": "prior (majority answer per family, constant median centre)",
             "lift": "geometric lift of the marked regions (upper reference for centres and the answers they "
                     "decide)"}
    columns += [(names.get(name, name), figures) for name, figures in (metrics.get("baselines") or {}).items()]
    rows = [[heading] + [fmt(f[key]["value"], kind) + ci(f[key]["ci"], kind) for _, f in columns]
            for key, heading, kind in BASELINE_FIGURES]
    return table(["figure"] + [name for name, _ in columns], rows)


def family_table(metrics: Mapping[str, Any]) -> str:
    """Accuracy per question family: each RL path and SFT auto against the prior baseline (the base rate)."""
    per_family = metrics.get("per_family") or {}
    runs = [r for r in ("prior", "sft_auto", "rl_lor", "rl_dtr", "rl_auto") if r in per_family]
    families = sorted({f for r in runs for f in per_family[r]})
    rows = [[family, str(per_family[runs[0]].get(family, {}).get("n", 0))]
            + [fmt(per_family[r].get(family, {}).get("accuracy"), "pct") for r in runs] for family in families]
    return table(["family", "n"] + [r.replace("_", " ") for r in runs], rows)


DECIDED_RUNS = {"sft_dtr": "SFT DTR", "rl_dtr": "RL DTR", "lift": "geometric lift (prior answer where unmarked)"}
DECIDED_HEADINGS = {"qualitative_accuracy": "relative position", "quantitative_success": "distances", "accuracy": "all"}


def _difference(entry: Mapping[str, Any], figure: str) -> str:
    answered, computed = entry["answered"][figure]["value"], entry["computed"][figure]["value"]
    value = answered - computed if answered is not None and computed is not None else None
    return fmt(value, "pt") + ci(entry["difference"][figure], "pt")


def decided_table(metrics: Mapping[str, Any]) -> str:
    """On the questions the objects' centres decide, each DTR model's answers beside the answers computed
    exactly from the centres its completions wrote (`training.heldout.centre_decided`), and the lift's."""
    decided = metrics["centre_decided"]
    rows = []
    for name, heading in DECIDED_RUNS.items():
        entry = decided.get(name)
        if entry:
            rows.append([heading, str(entry["n"])] + [
                fmt(entry[side][figure]["value"], "pct") + ci(entry[side][figure]["ci"], "pct")
                for figure in DECIDED_HEADINGS for side in ("answered", "computed")] + [_difference(entry, "accuracy")])
    header = ["", "questions"] + [f"{heading}, {side}" for heading in DECIDED_HEADINGS.values()
                                  for side in ("answered", "from its centres")] + ["all: answered - computed"]
    return (table(header, rows) + "\n\nThe questions the objects' centres decide: left/right, above/below, "
            "behind/in front, the three distances and the clock direction. \"From its centres\": the answer "
            "computed exactly (as the truth is) from the centres the same completion wrote in `<detect>`, in the "
            "order it wrote them (a completion with fewer centres than objects leaves the question wrong). "
            "Answered above computed: the answers do not come from the written centres (priors, or cues the "
            "centres miss); computed above answered: the reasoning loses what the centres hold. The lift's "
            "computed answers are the geometry of the marked regions from the sensor depth (unmarked questions "
            "stay wrong): the reference for what centres can decide.")


def steps_table(metrics: Mapping[str, Any]) -> str:
    """Per DTR evaluation and per relation step a question needs, the share of its chains that wrote each step
    (`training.heldout.reasoning_steps`)."""
    from sr_real_core.data.cot import DTR_STEP_OF_FAMILY, DTR_STEPS

    written_kinds = (*DTR_STEPS, "none")
    rows, right = [], []
    for name, heading in DECIDED_RUNS.items():  # the DTR evaluations (the lift writes no chain)
        entry = metrics["reasoning_steps"].get(name)
        if not entry:
            continue
        right.append(f"{heading} {fmt(entry['right']['value'], 'pct')}{ci(entry['right']['ci'], 'pct')}")
        rows += [[heading, needed, str(step["n"])]
                 + [fmt(step["written"].get(kind, 0.0), "pct") for kind in written_kinds]
                 for needed, step in entry["by_step"].items()]
    families = "; ".join(f"{step}: " + ", ".join(f for f, s in DTR_STEP_OF_FAMILY.items() if s == step)
                         for step in DTR_STEPS)
    return (table(["", "step the question needs", "chains"] + [f"wrote {kind}" for kind in written_kinds], rows)
            + "\n\nThe step each family needs (`sr_real_core.data.cot`): " + families + ". A chain's step is read "
            "back from the phrases the training chains use for it (`cot.dtr_step`; none: no such phrase). Chains "
            "that wrote the step their question needs: " + ", ".join(right) + ". A policy that picks its step "
            "by the answer's form rather than by the relation asked writes one step for every relation question.")


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
             f"SFT: {last_sft.get('step', 0)} steps, final loss {fmt(last_sft.get('loss'))}"
             + (f" (of which read-out rehearsal {fmt(last_sft['readout_loss'])})" if "readout_loss" in last_sft else "")
             + f", token accuracy {fmt(last_sft.get('mean_token_accuracy'), 'pct')}.",
             _pretraining(facts.get("pretrain")),
             f"RL: {len(rl_steps)} logged GRPO steps; reward {fmt(rl_steps[0]['reward'] if rl_steps else None)} at the "
             f"first step, {fmt(rl_steps[-1]['reward'] if rl_steps else None)} at the last. Configs: "
             f"`{out / 'sft' / 'config.yaml'}`, `{out / 'rl' / 'config.yaml'}`."]
    lines += [f"![{name}](plots/{path.name})" for name, path in figures[:3] if path is not None]
    return "\n\n".join(line for line in lines if line)


def _pretraining(pretrain: Mapping[str, Any] | None) -> str:
    """The read-out pretraining stage's figures, before SR-REAL's SFT (training/pretrain.py); '' without it."""
    if not pretrain:
        return ""
    return (f"Read-out pretraining before SFT (plain images, made-up region evidence, no scene or SR-REAL question): "
            f"{pretrain['steps']} steps, loss {fmt(pretrain['first_loss'])} -> {fmt(pretrain['last_loss'])}, median "
            f"distance from a written centre to its region's evidence {fmt(pretrain['readout_error_before'])} -> "
            f"{fmt(pretrain['readout_error_after'])} m on {pretrain['check_samples']} fresh sequences, "
            f"{pretrain['minutes']:.1f} min.{_readings(pretrain.get('readings'))}")


def _readings(readings: Mapping[str, float] | None) -> str:
    if not readings:
        return ""
    return (f" Sequences that name a reading: the named `<think>` step {readings['named']:.0%}, with the numbers "
            f"copied exactly from the centres written {readings['exact']:.0%}.")


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
    """One row per (model, path asked, stage): the figures of `ABLATION_COLUMNS` on the held-out questions with
    their 95% intervals, and for a variant its change in accuracy and qualitative accuracy against the baseline
    on the same questions (paired 95% interval)."""
    rows = []
    comparisons = (("joint vs single path", ("lor_only", "dtr_only")),
                   ("blended vs single-source cold start", ("cot_only",)),
                   ("RL with vs without the detection reward", ("no_detection",)))

    def cells(metrics: Mapping[str, Any]) -> list[str]:
        return [_value(metrics, key, kind) for key, _, kind in ABLATION_COLUMNS]

    for ablation, names in comparisons:
        for name in names:
            variant = results["variants"].get(name)
            if variant is None:
                continue
            for path in variant["rl"]:
                for stage in ("sft", "rl"):
                    base, mine = results["baseline"][stage].get(path, {}), variant[stage][path]
                    paired = ((variant.get("paired") or {}).get(stage) or {}).get(path) or {}
                    changes = [fmt(mine.get(k) - base.get(k), "pt") + ci(paired.get(k), "pt")
                               if mine.get(k) is not None and base.get(k) is not None else "n/a"
                               for k in ("accuracy", "qualitative_accuracy")]
                    rows.append([ablation, "baseline (joint, blended, all rewards)", path, stage.upper()]
                                + cells(base) + ["", ""])
                    rows.append([ablation, name, path, stage.upper()] + cells(mine) + changes)
    header = (["ablation", "model", "path asked", "after"] + [heading for _, heading, _ in ABLATION_COLUMNS]
              + ["accuracy vs baseline", "qualitative vs baseline"])
    minutes = results.get("minutes")
    note = (f"Runtime: {minutes:.1f} min for the variants (the baseline is the quickstart's own run).\n\n"
            if minutes else "")
    return note + table(header, rows)
