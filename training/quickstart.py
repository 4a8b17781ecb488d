"""`sr-real train quickstart` (`make demo`): the whole method on a 2-core CPU, no downloads, in minutes.

    scenes    render synthetic RGB-D scenes (pybullet)                   sr_real_core.data.synth
    mixture   questions, chains of thought, SFT + RL records by scene    sr_real_core.data.mixture
    pretrain  read-out pretraining of the tiny model (generic, no scene)  training/pretrain.py
    sft       cold-start SFT of the tiny model (a few M parameters)      training/configs/tiny-sft.yaml
    rl        dual-path GRPO from the SFT checkpoint                     training/configs/tiny-rl.yaml
    eval      held-out scenes, per path (LOR / DTR / auto), before and after RL
    showcase  questions on a rendered scene, the bundled tabletop, a real RGB-D frame (when present)
    report    runs/quickstart/report.md (+ plots/) and runs/quickstart/metrics.json

The recipe is `training/configs/quickstart.yaml` (`QuickstartConfig`). Killed midway, the same command
resumes: scenes and mixture are regenerated (deterministic, seconds) and each training stage continues from
its last checkpoint. `metrics.json` is `{"sft": {"lor": M, "dtr": M, "auto": M}, "rl": {...}, "baselines":
{"prior": B, "lift": B}, "per_family": {...}, "centre_decided": {...}, "minutes": t}` with M as in
`training.evaluate.PathMetrics`, B the baselines' figures with intervals (`training.heldout`), per_family the
accuracy per question family of each model and path against the prior baseline's (the family's base rate), and
centre_decided `heldout.centre_decided` of the SFT and RL models' DTR answers and of the lift.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sr_real.training.config import ConfigError, from_mapping, load_config
from sr_real.training.pretrain import PretrainSettings
from sr_real.training.showcase import RealFrame
from sr_real_core.query import PROMPT_PATHS

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = REPO / "training" / "configs" / "quickstart.yaml"


@dataclass
class ScenesSettings:
    num: int = 240
    size: tuple[int, int] = (160, 120)  # width, height
    room_fraction: float = 0.3


@dataclass
class EvalSettings:
    max_questions: int = 48  # held-out questions per path mode (a fixed random subset)
    batch_size: int = 16
    max_new_tokens: int = 384
    constrain_answer: bool = True  # answers decoded in the form of their type (sr_real_core.constrained)


@dataclass
class ShowcaseSettings:
    questions: int = 3  # per scene
    tabletop: str = "examples/tabletop/scenes.jsonl"
    real_frame: RealFrame | None = None


@dataclass
class QuickstartConfig:
    sft: str  # run config of the SFT stage (paths in it are replaced by the quickstart's own)
    rl: str  # run config of the RL stage
    seed: int = 0
    scenes: ScenesSettings = field(default_factory=ScenesSettings)
    mixture: dict[str, Any] = field(default_factory=dict)  # sr_real_core.data.mixture.MixtureConfig fields
    evidence_text: bool = False  # the tiny model's processor writes the regions' measured evidence as text
    pretrain: PretrainSettings = field(default_factory=lambda: PretrainSettings(steps=0))  # 0 steps: none
    eval: EvalSettings = field(default_factory=EvalSettings)
    showcase: ShowcaseSettings = field(default_factory=ShowcaseSettings)


def load_recipe(path: str | Path = DEFAULT_RECIPE) -> QuickstartConfig:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the recipe ({error})") from None
    return from_mapping(QuickstartConfig, data, str(path))


class Stopwatch:
    """Wall-clock minutes per stage."""

    def __init__(self):
        self.start, self.minutes, self.load = time.perf_counter(), {}, []

    @contextmanager
    def stage(self, name: str):
        began = time.perf_counter()
        print(f"\n== quickstart: {name}", flush=True)
        yield
        self.minutes[name] = (time.perf_counter() - began) / 60
        self.load.append(os.getloadavg()[1])  # 5-minute load average: other work competing for the cores
        print(f"== quickstart: {name} done in {self.minutes[name]:.1f} min", flush=True)

    def total(self) -> float:
        return (time.perf_counter() - self.start) / 60


def run_quickstart(out: str | Path = "runs/quickstart", recipe: str | Path = DEFAULT_RECIPE,
                   max_steps: int | None = None) -> dict[str, Any]:
    """Run every stage (see the module docstring); returns the content of metrics.json."""
    from sr_real.training.train import train

    config = load_recipe(recipe)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clock = Stopwatch()
    with clock.stage("scenes + mixture"):
        scenes, manifest = synthetic_mixture(out, config.scenes, config.mixture, config.seed)
    start, pretrain = out / "tiny-model", None
    if not start.is_dir():
        from sr_real_core.model.tiny import write_tiny_model

        write_tiny_model(start, seed=config.seed, evidence_text=config.evidence_text)
    if config.pretrain.steps:
        with clock.stage("pretrain"):
            start, pretrain = _pretrained(out, config, max_steps)
    with clock.stage("sft"):
        sft = load_config(REPO / config.sft, {"output_dir": str(out / "sft"), "seed": config.seed,
                                              "model": {"path": str(start)},
                                              "data": {"mixture": str(out / "data")}})
        sft_model = train(sft, max_steps)
    with clock.stage("rl"):
        rl = load_config(REPO / config.rl, {"output_dir": str(out / "rl"), "seed": config.seed,
                                     "model": {"path": str(sft_model)}, "data": {"mixture": str(out / "data")}})
        rl_model = train(rl, max_steps)
    with clock.stage("eval"):
        heldout = held_out_questions(out / "data", config.eval.max_questions, config.seed)
        results = {stage: evaluate_checkpoint(model, heldout, out / "eval" / stage, config.eval)
                   for stage, model in (("sft", sft_model), ("rl", rl_model))}
        analyses = _analyses(out, heldout)
    with clock.stage("showcase"):
        showcase = run_showcase(rl_model, out / "showcase", config, scenes, manifest["scenes"]["eval"][0])
    metrics = {"sft": results["sft"], "rl": results["rl"], **analyses, "minutes": round(clock.total(), 2)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    from sr_real.training.report import write_report

    facts = {"stage_minutes": clock.minutes, "load_average": clock.load, "manifest": manifest,
             "recipe": asdict(config), "max_steps": max_steps, "pretrain": pretrain,
             "heldout_questions": sum(1 for _ in open(heldout, encoding="utf-8"))}
    (out / "facts.json").write_text(json.dumps(facts, indent=2, default=str) + "\n", encoding="utf-8")
    report = write_report(out, metrics, facts, showcase)
    print(f"\nquickstart finished in {metrics['minutes']:.1f} min: {report}", flush=True)
    return metrics


def _pretrained(out: Path, config: QuickstartConfig, max_steps: int | None) -> tuple[Path, dict[str, Any]]:
    """The tiny model read-out-pretrained into out/pretrain (training/pretrain.py), and the stage's figures."""
    from sr_real.training.pretrain import pretrain_readout

    settings = config.pretrain
    if max_steps is not None:
        settings = dataclasses.replace(settings, steps=min(settings.steps, max_steps), check_samples=4)
    return out / "pretrain", pretrain_readout(out / "tiny-model", out / "pretrain", settings, seed=config.seed)


def start_model(quickstart: Path) -> Path:
    """The checkpoint a quickstart's SFT started from: its read-out-pretrained model, else its tiny model."""
    pretrained = quickstart / "pretrain"
    return pretrained if (pretrained / "pretrain.json").is_file() else quickstart / "tiny-model"


def synthetic_mixture(out: Path, scenes: ScenesSettings, mixture: dict[str, Any], seed: int) -> tuple[Path, dict]:
    """Render scenes into `out/scenes` and build their training mixture in `out/data`; returns the scenes file
    and the mixture's manifest. Deterministic for a seed."""
    from sr_real_core.data.mixture import MixtureConfig, build_mixture
    from sr_real_core.data.synth import SynthConfig, synthesize

    width, height = scenes.size
    scenes_file = synthesize(SynthConfig(num_scenes=scenes.num, seed=seed, width=width, height=height,
                                         room_fraction=scenes.room_fraction), Path(out) / "scenes")
    config = MixtureConfig.from_dict({**mixture, "scenes": [str(scenes_file)], "out_dir": str(Path(out) / "data"),
                                      "seed": seed})
    return scenes_file, json.loads(build_mixture(config).read_text())


def held_out_questions(mixture_dir: Path, count: int, seed: int, source: str = "rl_eval",
                       target: str = "heldout_eval") -> Path:
    """A fixed random subset of the held-out RL questions (`source`.jsonl), written beside them as `target`.jsonl
    (their paths stay valid)."""
    lines = (mixture_dir / f"{source}.jsonl").read_text(encoding="utf-8").splitlines()
    chosen = sorted(random.Random(seed).sample(range(len(lines)), min(count, len(lines))))
    path = mixture_dir / f"{target}.jsonl"
    path.write_text("".join(lines[i] + "\n" for i in chosen), encoding="utf-8")
    return path


def evaluate_checkpoint(model: Path, qa: Path, out: Path, settings: EvalSettings,
                        paths: Sequence[str] = PROMPT_PATHS) -> dict[str, Any]:
    """`evaluate.evaluate_paths` with the recipe's evaluation settings (the quickstart's and the ablations')."""
    from sr_real.training.evaluate import evaluate_paths

    return evaluate_paths(model, qa, out, paths=paths, batch_size=settings.batch_size,
                          max_new_tokens=settings.max_new_tokens, constrain_answer=settings.constrain_answer)


def _analyses(out: Path, heldout: Path) -> dict[str, dict[str, Any]]:
    """metrics.json's analysis sections (`training.heldout`): the prior and lift baselines' figures on the
    held-out questions, accuracy per family of each baseline and each evaluated (stage, path), on the questions
    centres decide the DTR evaluations' and the lift's answers beside those computed from their own centres, and
    the relation steps the DTR evaluations' chains wrote."""
    from sr_real.training.heldout import (baseline_rows, centre_decided, families, figures_with_intervals, load_rows,
                                          per_family, reasoning_steps)

    rows = baseline_rows(out / "data" / "rl_train.jsonl", heldout)
    family_of = families(heldout)
    runs = {name: rows[name] for name in rows} | {
        f"{stage}_{path}": load_rows(out / "eval" / stage / path / "verdicts.jsonl")
        for stage in ("sft", "rl") for path in PROMPT_PATHS}
    return {"baselines": {name: figures_with_intervals(r) for name, r in rows.items()},
            "per_family": {name: per_family(r, family_of) for name, r in runs.items()},
            "centre_decided": {name: centre_decided(runs[name], heldout) for name in ("sft_dtr", "rl_dtr", "lift")},
            "reasoning_steps": {name: reasoning_steps(runs[name], family_of) for name in ("sft_dtr", "rl_dtr")}}


def run_showcase(model: Path, out: Path, config: QuickstartConfig, scenes: Path, heldout_scene: str) -> dict[str, Any]:
    """Answers on a held-out rendered scene, the bundled tabletop and, if present, a real RGB-D frame."""
    from sr_real_core.inference import SpatialReasoner
    from sr_real.training.showcase import ask_about_scene, one_scene, real_frame_scenes

    reasoner = SpatialReasoner.from_pretrained(str(model), max_new_tokens=config.eval.max_new_tokens,
                                               constrain_answer=config.eval.constrain_answer)
    settings = config.showcase
    sources = {"rendered": one_scene(scenes, heldout_scene, out / "rendered"),
               "tabletop": REPO / settings.tabletop}
    frame = settings.real_frame
    if frame is not None:
        frame = dataclasses.replace(frame, image=str(REPO / frame.image), depth=str(REPO / frame.depth))
    if frame is not None and frame.available():
        sources["real"] = real_frame_scenes(frame, out / "real")
    answers = {name: ask_about_scene(reasoner, path, out / name, settings.questions, config.seed)
               for name, path in sources.items()}
    missing = None if "real" in sources else (
        "no real RGB-D frame: the shared data beside the repository is absent" if frame else "no real frame configured")
    result = {"answers": answers, "real_frame_note": missing}
    (out / "answers.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
