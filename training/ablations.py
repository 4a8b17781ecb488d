"""`sr-real train ablations`: the paper's three ablations, reproduced at quickstart scale.

The baseline is the quickstart itself (`runs/quickstart`, run first if absent): blended cold start on both
paths, GRPO with every reward. Each variant changes one thing, trains with the same recipe and step counts,
and is evaluated on the same held-out questions:

    joint vs single path   lor_only: SFT on LOR records only (lor_cot, grounding_2d), GRPO on LOR prompts
                           dtr_only: SFT on DTR records only (dtr_cot, grounding_3d, region_qa), GRPO on DTR
                           -> compare with the joint model asked on the same path
    blended vs single-     cot_only: SFT on the chains of thought alone (lor_cot + dtr_cot, one source: the
    source cold start      templated CoT), without the grounding and region-QA records; GRPO as the baseline
    detection reward       no_detection: GRPO from the baseline's SFT checkpoint with DTR weights 0.8 accuracy
                           + 0.2 format + 0 detection instead of 0.8 / 0.1 / 0.1

Results go to `runs/ablations/results.json` and `ablations.md`, and the quickstart's report is written again
with the table. Not part of `make demo` (it trains three more SFT and four more RL runs); runtime: see
training/README.md.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sr_real.training.config import load_config
from sr_real.training.report import ablation_markdown, refresh_report
from sr_real_core.query import PROMPT_PATHS
from sr_real_core.rewards import DEFAULT_WEIGHTS

# The default DTR weights with the detection reward's weight moved to the format reward.
NO_DETECTION_WEIGHTS = {"dtr_accuracy": DEFAULT_WEIGHTS.dtr_accuracy, "dtr_detection": 0.0,
                        "dtr_format": DEFAULT_WEIGHTS.dtr_format + DEFAULT_WEIGHTS.dtr_detection}
VARIANTS: dict[str, dict[str, Any]] = {
    "lor_only": {"sft": {"data": {"kinds": ["lor_cot", "grounding_2d"]}}, "rl": {"rl": {"path_mode": "lor"}},
                 "paths": ["lor"], "ablation": "joint vs single path"},
    "dtr_only": {"sft": {"data": {"kinds": ["dtr_cot", "grounding_3d", "region_qa"]}},
                 "rl": {"rl": {"path_mode": "dtr"}}, "paths": ["dtr"], "ablation": "joint vs single path"},
    "cot_only": {"sft": {"data": {"kinds": ["lor_cot", "dtr_cot"]}}, "rl": {}, "paths": list(PROMPT_PATHS),
                 "ablation": "blended vs single-source cold start"},
    "no_detection": {"sft": None, "rl": {"rl": {"reward": NO_DETECTION_WEIGHTS}}, "paths": ["dtr", "auto"],
                     "ablation": "RL with vs without the detection reward"},
}


def run_ablations(out: str | Path = "runs/ablations", quickstart: str | Path = "runs/quickstart",
                  recipe: str | Path | None = None, max_steps: int | None = None) -> dict[str, Any]:
    from sr_real.training.quickstart import (DEFAULT_RECIPE, evaluate_checkpoint, load_recipe, run_quickstart,
                                             start_model)
    from sr_real.training.train import train

    recipe = recipe or DEFAULT_RECIPE
    out, quickstart = Path(out), Path(quickstart)
    if not (quickstart / "metrics.json").is_file():
        run_quickstart(quickstart, recipe, max_steps)
    config = load_recipe(recipe)
    started = time.perf_counter()
    data, heldout = quickstart / "data", quickstart / "data" / "heldout_eval.jsonl"
    baseline = json.loads((quickstart / "metrics.json").read_text(encoding="utf-8"))
    results: dict[str, Any] = {"baseline": {"sft": baseline["sft"], "rl": baseline["rl"]}, "variants": {}}
    for name, variant in VARIANTS.items():
        print(f"\n== ablation: {name} ({variant['ablation']})", flush=True)
        common = {"seed": config.seed, "data": {"mixture": str(data)}}
        if variant["sft"] is None:
            sft_model = quickstart / "sft" / "final"
        else:
            start = {**common, "output_dir": str(out / name / "sft"), "model": {"path": str(start_model(quickstart))}}
            sft = load_config(config.sft, start | _deep(variant["sft"], common))
            sft_model = train(sft, max_steps)
        rl = load_config(config.rl, {**common, "output_dir": str(out / name / "rl"), "model": {"path": str(sft_model)},
                                     **_deep(variant["rl"], common)})
        rl_model = train(rl, max_steps)
        entry = {"ablation": variant["ablation"]}
        for stage, model in (("sft", sft_model), ("rl", rl_model)):
            entry[stage] = evaluate_checkpoint(model, heldout, out / name / "eval" / stage, config.eval,
                                               paths=variant["paths"])
        results["variants"][name] = entry
    results["minutes"] = round((time.perf_counter() - started) / 60, 2)
    paired_with_baseline(results, out, quickstart)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "ablations.md").write_text(ablation_markdown(results) + "\n", encoding="utf-8")
    refresh_report(quickstart)  # the quickstart's report gains the ablation table
    print(f"\nablations finished in {results['minutes']:.1f} min: {out / 'ablations.md'}", flush=True)
    return results


PAIRED_FIGURES = ("accuracy", "qualitative_accuracy")


def paired_with_baseline(results: dict[str, Any], out: Path, quickstart: Path) -> None:
    """Each variant's change against the baseline asked on the same path and stage, as a paired 95% bootstrap
    interval over the same held-out questions (`results["variants"][name]["paired"][stage][path][figure]`)."""
    from sr_real.training.heldout import FIGURES, load_verdicts, paired_interval

    for name, entry in results["variants"].items():
        entry["paired"] = {
            stage: {path: {figure: paired_interval(FIGURES[figure], load_verdicts(out / name / "eval" / stage / path),
                                                   load_verdicts(quickstart / "eval" / stage / path))
                           for figure in PAIRED_FIGURES}
                    for path in entry[stage]}
            for stage in ("sft", "rl")}


def _deep(overrides: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    """A variant's overrides merged over the common ones (its `data` keeps the mixture path)."""
    merged = dict(overrides)
    if "data" in overrides:
        merged["data"] = {**common["data"], **overrides["data"]}
    return merged
