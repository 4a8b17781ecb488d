"""Continued training on the robot's own data, and what it cost: `--init-from`, replay, forgetting.

    sr-real data from-bag BAG ... --out runs/robot/import          # or the node's recorder folder
    sr-real data labels runs/robot/import --out runs/robot/labels
    sr-real data robot-mixture runs/robot/labels --out runs/robot/data
    sr-real train sft --config training/configs/tiny-robot-lora.yaml --init-from runs/quickstart/rl/final \
        --replay runs/quickstart/data --replay-share 0.3
    sr-real train compare --before runs/quickstart/rl/final --after runs/robot-sft/final \
        --robot-qa runs/robot-sft/data-replay/rl_eval.jsonl --original-qa runs/quickstart/data/heldout_eval.jsonl \
        --robot-sft runs/robot-sft/data-replay/sft_eval.jsonl --original-sft runs/quickstart/data/sft_eval.jsonl \
        --out runs/robot-sft/compare

`continue_config` turns a run config into a continued run: the model starts from `--init-from` (a checkpoint
directory, checked), and with `--replay` the training data is `data.replay.replay_mixture` of the configured
(robot) mixture and the original one, written to `output_dir/data-replay`. `compare_checkpoints` evaluates the
starting and the continued checkpoint on held-out robot scenes and on the original held-out set
(`training.evaluate.evaluate_paths`), and states the gain on the robot's domain and the forgetting on the
original one (before - after; flagged when larger than `margin`), each with its sample size, standard error and
a paired 95% bootstrap interval of each change over the same questions (`delta_ci`).

Accuracy needs a model that already answers in the format, and a few hundred questions to tell a change from
noise. So each checkpoint is also scored by its answer loss on held-out SFT records (`loss_sets`, e.g. each
mixture's `sft_eval.jsonl`; a seeded draw of at most `loss_records`): the mean negative log-likelihood per
assistant token, teacher-forced through the training collator (`sft.record_losses`), with 95% bootstrap intervals
(`heldout.interval`) and a paired interval of after - before over the same records (`heldout.paired_interval`).
The robot's loss counts as improved when that interval lies below 0; the original set counts as kept when its
upper end is at most `loss_margin` (LOSS_MARGIN). The loss is the easier figure to move: a lower loss on the
robot's records (templates, object names) does not imply better answers, so read it beside the accuracy.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sr_real.training.config import ConfigError, RunConfig, load_config

REPLAY_DIR = "data-replay"
FORGETTING_MARGIN = 0.05  # accuracy points the original held-out set may lose before it counts as forgetting
# Nats per assistant token the original held-out answer loss may rise by (the upper end of the paired 95% interval)
# before it counts as forgetting: the per-token perplexity up by at most exp(0.05) - 1 = 5%.
LOSS_MARGIN = 0.05
LOSS_RECORDS = 200  # held-out SFT records per set scored for the answer loss (a seeded draw)
COMPARED = ("accuracy", "qualitative_accuracy", "mean_reward", "quantitative_success", "center_error_median_m")


def checked_checkpoint(path: str | Path, option: str = "--init-from") -> Path:
    """A checkpoint directory (config.json + safetensors weights), else ConfigError naming `option` and what is
    missing."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ConfigError(f"{option} {path}: not a checkpoint directory (no config.json)")
    if not any(path.glob("*.safetensors")):
        raise ConfigError(f"{option} {path}: no .safetensors weights (checkpoints load from safetensors only)")
    return path


def continue_config(config_path: str | Path, overrides: dict[str, Any], init_from: str | None,
                    replay: str | None = None, replay_share: float = 0.3) -> RunConfig:
    """The run config of a continued run (see the module docstring)."""
    if init_from is not None:
        overrides = {**overrides, "model": {"path": str(checked_checkpoint(init_from)), "tiny_if_missing": False}}
    config = load_config(config_path, overrides)
    if replay is None:
        return config
    from sr_real_core.data.replay import replay_mixture

    for option, folder in (("data.mixture", config.data.mixture), ("--replay", replay)):
        if not (Path(folder) / f"{config.data.train}.jsonl").is_file():
            raise ConfigError(f"{option} {folder}: not a mixture folder (no {config.data.train}.jsonl)")
    if not 0.0 <= replay_share < 1.0:
        raise ConfigError(f"--replay-share: expected a number in [0, 1), got {replay_share}")
    mixed = replay_mixture(config.data.mixture, replay, Path(config.output_dir) / REPLAY_DIR, replay_share,
                           config.seed)
    return load_config(config_path, {**overrides, "data": {"mixture": str(mixed)}})


def _standard_error(value: float | None, n: int) -> float | None:
    if value is None or n == 0 or not 0.0 <= value <= 1.0:
        return None
    return math.sqrt(value * (1.0 - value) / n)


def compare_checkpoints(before: str | Path, after: str | Path, heldout: dict[str, str | Path], out: str | Path,
                        path: str = "auto", margin: float = FORGETTING_MARGIN, max_new_tokens: int = 384,
                        batch_size: int = 16, loss_sets: dict[str, str | Path] | None = None,
                        loss_margin: float = LOSS_MARGIN, loss_records: int | None = LOSS_RECORDS,
                        constrain_answer: bool = True) -> dict[str, Any]:
    """Both checkpoints on each held-out QA file (`heldout`: {"robot": file, "original": file}) and, by answer loss,
    on each held-out SFT file (`loss_sets`, same names); writes and returns `out/compare.json` (see the module
    docstring). `constrain_answer`: answers decoded in the form of their type (`sr_real_core.constrained`)."""
    from sr_real.training.evaluate import evaluate_paths

    out = Path(out)
    result: dict[str, Any] = {"path_mode": path, "margin": margin, "constrain_answer": constrain_answer, "sets": {}}
    for name, qa in heldout.items():
        figures = {stage: evaluate_paths(model, qa, out / name / stage, paths=(path,), batch_size=batch_size,
                                         max_new_tokens=max_new_tokens, constrain_answer=constrain_answer)[path]
                   for stage, model in (("before", before), ("after", after))}
        n = figures["after"]["n"]
        deltas = {key: None if figures["before"][key] is None or figures["after"][key] is None
                  else figures["after"][key] - figures["before"][key] for key in COMPARED}
        result["sets"][name] = {"n": n, **figures, "delta": deltas,
                                "delta_ci": _paired_deltas(out / name, path),
                                "accuracy_se": {stage: _standard_error(figures[stage]["accuracy"], n)
                                                for stage in ("before", "after")}}
    robot, original = result["sets"].get("robot"), result["sets"].get("original")
    if robot is not None:
        result["robot_improved"] = bool(robot["delta"]["accuracy"] and robot["delta"]["accuracy"] > 0)
    if original is not None and original["delta"]["accuracy"] is not None:
        result["forgetting"] = -original["delta"]["accuracy"]
        result["forgot_more_than_margin"] = result["forgetting"] > margin
    if loss_sets:
        result.update(_loss_comparison(before, after, loss_sets, out, loss_margin, loss_records))
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _paired_deltas(folder: Path, path: str) -> dict[str, list[float] | None]:
    """Paired 95% bootstrap intervals of after - before for the figures of `heldout.FIGURES` that `COMPARED` names,
    over the same questions (each stage's `verdicts.jsonl`)."""
    from sr_real.training.heldout import FIGURES, load_verdicts, paired_interval

    before, after = (load_verdicts(folder / stage / path) for stage in ("before", "after"))
    return {key: paired_interval(FIGURES[key], after, before) for key in COMPARED if key in FIGURES}


def token_loss(rows: list[dict[str, Any]]) -> float | None:
    """Mean negative log-likelihood per assistant token over `sft.record_losses` rows."""
    tokens = sum(row["tokens"] for row in rows)
    return sum(row["nll"] for row in rows) / tokens if tokens else None


def heldout_records(records_file: str | Path, limit: int | None, seed: int = 0):
    """A mixture file's records (images decoded), a seeded draw of at most `limit` of them."""
    from sr_real_core.data.mixture import load_mixture

    records_file = Path(records_file)
    dataset = load_mixture(records_file.parent, records_file.stem)
    if limit is not None and len(dataset) > limit:
        dataset = dataset.shuffle(seed=seed).select(range(limit))
    return dataset


def _loss_comparison(before: str | Path, after: str | Path, loss_sets: dict[str, str | Path], out: Path,
                     loss_margin: float, limit: int | None) -> dict[str, Any]:
    from sr_real.training.heldout import interval, paired_interval
    from sr_real.training.sft import record_losses
    from sr_real_core.model.loading import load_model

    records = {name: heldout_records(path, limit) for name, path in loss_sets.items()}
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in loss_sets}
    for stage, checkpoint in (("before", before), ("after", after)):
        model, processor = load_model(checkpoint)
        for name, dataset in records.items():
            rows[name][stage] = record_losses(model, processor, dataset)
    figures = {}
    for name, staged in rows.items():
        values = {stage: token_loss(staged[stage]) for stage in ("before", "after")}
        figures[name] = {"n": len(staged["after"]), "tokens": sum(row["tokens"] for row in staged["after"]),
                         **values, "ci": {stage: interval(token_loss, staged[stage]) for stage in values},
                         "delta": None if None in values.values() else values["after"] - values["before"],
                         "delta_ci": paired_interval(token_loss, staged["after"], staged["before"])}
        (out / name).mkdir(parents=True, exist_ok=True)
        lines = [{"id": b["id"], "tokens": b["tokens"], "nll_before": b["nll"], "nll_after": a["nll"]}
                 for b, a in zip(staged["before"], staged["after"])]
        (out / name / "losses.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result: dict[str, Any] = {"loss_margin": loss_margin, "loss": figures}
    robot, original = figures.get("robot"), figures.get("original")
    if robot is not None:
        result["robot_loss_improved"] = bool(robot["delta_ci"] and robot["delta_ci"][1] < 0)
    if original is not None:
        result["loss_forgetting"] = original["delta"]
        result["loss_forgetting_within_margin"] = bool(original["delta_ci"] and original["delta_ci"][1] <= loss_margin)
    return result


def summary(result: dict[str, Any]) -> str:
    """A few lines for the terminal: per held-out set, accuracy before -> after (n, standard error), and the answer
    loss before -> after with its intervals."""
    lines = []
    for name, figures in result["sets"].items():
        before, after = figures["before"]["accuracy"], figures["after"]["accuracy"]
        errors = figures["accuracy_se"]
        lines.append(f"{name}: accuracy {_fmt(before)} (se {_fmt(errors['before'])}) -> {_fmt(after)} "
                     f"(se {_fmt(errors['after'])}), n={figures['n']}, change {_fmt(figures['delta']['accuracy'])} "
                     f"{_fmt_ci(figures['delta_ci'].get('accuracy'))}; mean reward "
                     f"{_fmt(figures['before']['mean_reward'])} -> {_fmt(figures['after']['mean_reward'])}")
        centre = [figures[stage]["center_error_median_m"] for stage in ("before", "after")]
        if None not in centre:
            lines.append(f"{name}: DTR centre error (median) {_fmt(centre[0])} -> {_fmt(centre[1])} m, change "
                         f"{_fmt(figures['delta']['center_error_median_m'])} "
                         f"{_fmt_ci(figures['delta_ci'].get('center_error_median_m'))}")
    if "forgetting" in result:
        verdict = "MORE than" if result["forgot_more_than_margin"] else "within"
        bounds = result["sets"]["original"]["delta_ci"].get("accuracy")
        forgetting_ci = None if bounds is None else [-bounds[1], -bounds[0]]  # forgetting = -delta
        lines.append(f"forgetting on the original set: {result['forgetting']:+.3f} accuracy {_fmt_ci(forgetting_ci)}, "
                     f"{verdict} the margin {result['margin']} (point estimate)")
    for name, figures in result.get("loss", {}).items():
        lines.append(f"{name}: answer loss {_fmt(figures['before'])} {_fmt_ci(figures['ci']['before'])} -> "
                     f"{_fmt(figures['after'])} {_fmt_ci(figures['ci']['after'])} nats/token, change "
                     f"{_fmt(figures['delta'])} {_fmt_ci(figures['delta_ci'])}, n={figures['n']} records "
                     f"({figures['tokens']} tokens)")
    if "robot_loss_improved" in result:
        lines.append(f"robot answer loss {'improved' if result['robot_loss_improved'] else 'NOT improved'} "
                     f"(paired 95% interval of the change below 0: {result['robot_loss_improved']})")
    if "loss_forgetting_within_margin" in result:
        verdict = "within" if result["loss_forgetting_within_margin"] else "NOT within"
        lines.append(f"forgetting on the original set: answer loss {_fmt(result['loss_forgetting'])} nats/token, "
                     f"{verdict} the margin {result['loss_margin']} (upper end of its paired 95% interval)")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _fmt_ci(bounds: list[float] | None) -> str:
    return "[n/a]" if bounds is None else f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"
