"""Continued training on the robot's own data, and what it cost: `--init-from`, replay, forgetting.

    sr-real data from-bag BAG ... --out runs/robot/import          # or the node's recorder folder
    sr-real data labels runs/robot/import --out runs/robot/labels
    sr-real data robot-mixture runs/robot/labels --out runs/robot/data
    sr-real train sft --config training/configs/tiny-robot-lora.yaml --init-from runs/quickstart/rl/final \
        --replay runs/quickstart/data --replay-share 0.3
    sr-real train compare --before runs/quickstart/rl/final --after runs/robot-sft/final \
        --robot-qa runs/robot-sft/data-replay/rl_eval.jsonl --original-qa runs/quickstart/data/heldout_eval.jsonl \
        --out runs/robot-sft/compare

`continue_config` turns a run config into a continued run: the model starts from `--init-from` (a checkpoint
directory, checked), and with `--replay` the training data is `data.replay.replay_mixture` of the configured
(robot) mixture and the original one, written to `output_dir/data-replay`. `compare_checkpoints` evaluates the
starting and the continued checkpoint on held-out robot scenes and on the original held-out set
(`training.evaluate.evaluate_paths`), and states the gain on the robot's domain and the forgetting on the
original one (before - after; flagged when larger than `margin`), each with its sample size and standard error.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sr_real.training.config import ConfigError, RunConfig, load_config

REPLAY_DIR = "data-replay"
FORGETTING_MARGIN = 0.05  # accuracy points the original held-out set may lose before it counts as forgetting
COMPARED = ("accuracy", "mean_reward", "quantitative_success", "center_error_median_m")


def checked_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory (config.json + safetensors weights), else ConfigError naming what is missing."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ConfigError(f"--init-from {path}: not a checkpoint directory (no config.json)")
    if not any(path.glob("*.safetensors")):
        raise ConfigError(f"--init-from {path}: no .safetensors weights (checkpoints load from safetensors only)")
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
                        batch_size: int = 16) -> dict[str, Any]:
    """Both checkpoints on each held-out QA file (`heldout`: {"robot": file, "original": file}); writes and
    returns `out/compare.json` (see the module docstring)."""
    from sr_real.training.evaluate import evaluate_paths

    out = Path(out)
    result: dict[str, Any] = {"path_mode": path, "margin": margin, "sets": {}}
    for name, qa in heldout.items():
        figures = {stage: evaluate_paths(model, qa, out / name / stage, paths=(path,), batch_size=batch_size,
                                         max_new_tokens=max_new_tokens)[path]
                   for stage, model in (("before", before), ("after", after))}
        n = figures["after"]["n"]
        deltas = {key: None if figures["before"][key] is None or figures["after"][key] is None
                  else figures["after"][key] - figures["before"][key] for key in COMPARED}
        result["sets"][name] = {"n": n, **figures, "delta": deltas,
                                "accuracy_se": {stage: _standard_error(figures[stage]["accuracy"], n)
                                                for stage in ("before", "after")}}
    robot, original = result["sets"].get("robot"), result["sets"].get("original")
    if robot is not None:
        result["robot_improved"] = bool(robot["delta"]["accuracy"] and robot["delta"]["accuracy"] > 0)
    if original is not None and original["delta"]["accuracy"] is not None:
        result["forgetting"] = -original["delta"]["accuracy"]
        result["forgot_more_than_margin"] = result["forgetting"] > margin
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def summary(result: dict[str, Any]) -> str:
    """A few lines for the terminal: per held-out set, accuracy before -> after (n, standard error)."""
    lines = []
    for name, figures in result["sets"].items():
        before, after = figures["before"]["accuracy"], figures["after"]["accuracy"]
        errors = figures["accuracy_se"]
        lines.append(f"{name}: accuracy {_fmt(before)} (se {_fmt(errors['before'])}) -> {_fmt(after)} "
                     f"(se {_fmt(errors['after'])}), n={figures['n']}; mean reward "
                     f"{_fmt(figures['before']['mean_reward'])} -> {_fmt(figures['after']['mean_reward'])}")
    if "forgetting" in result:
        verdict = "MORE than" if result["forgot_more_than_margin"] else "within"
        lines.append(f"forgetting on the original set: {result['forgetting']:+.3f} accuracy, {verdict} the margin "
                     f"{result['margin']}")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
