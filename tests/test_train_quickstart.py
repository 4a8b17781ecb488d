"""`make demo` and `sr-real train ablations` end to end on a micro recipe (4 scenes, one step per stage, a few
held-out questions): every stage runs, metrics.json has the documented shape, and the quickstart's report
gains the ablation table once the ablations have run."""
import json

import pytest
import yaml

from sr_real.training.ablations import VARIANTS, run_ablations
from sr_real.training.quickstart import DEFAULT_RECIPE, REPO, run_quickstart

PATHS = ("lor", "dtr", "auto")
REQUIRED = {"qualitative_accuracy", "quantitative_success", "abs_rel", "center_error_median_m", "mean_reward",
            "path_share_dtr"}


def micro_recipe(directory):
    """The quickstart recipe at the smallest size that still exercises every stage."""
    recipe = yaml.safe_load(DEFAULT_RECIPE.read_text(encoding="utf-8"))
    trainer = {"sft": {"per_device_train_batch_size": 2},
               "rl": {"per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 16}}
    for stage, overrides in trainer.items():
        config = yaml.safe_load((REPO / recipe[stage]).read_text(encoding="utf-8"))
        config["trainer"].update(overrides)
        if stage == "sft":
            config["data"]["readout_keywords"] = 0.5  # opt-in, like the readings below
        recipe[stage] = str(directory / f"micro-{stage}.yaml")
        (directory / f"micro-{stage}.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    recipe["scenes"]["num"] = 4
    recipe["mixture"].update(eval_fraction=0.25, qa={"per_scene": 4})
    recipe["eval"] = {"max_questions": 3, "batch_size": 4, "max_new_tokens": 16}
    recipe["showcase"]["questions"] = 1
    # Evidence text and named readings: opt-in (off in the default recipe)
    recipe.update(evidence_text=True, pretrain={"steps": 2, "keyword_fraction": 0.5})
    path = directory / "micro.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    root = tmp_path_factory.mktemp("micro-quickstart")
    recipe = micro_recipe(root)
    metrics = run_quickstart(root / "quickstart", recipe, max_steps=1)
    return root, recipe, metrics


def test_the_quickstart_writes_metrics_of_the_documented_shape_and_a_report(quickstart):
    root, _, metrics = quickstart
    assert json.loads((root / "quickstart" / "metrics.json").read_text()) == metrics
    assert metrics["minutes"] > 0
    for stage in ("sft", "rl"):
        assert set(metrics[stage]) == set(PATHS)
        for path in PATHS:
            assert REQUIRED <= set(metrics[stage][path])
        assert metrics[stage]["lor"]["center_error_median_m"] is None
        assert all(0.0 <= metrics[stage][path]["path_share_dtr"] <= 1.0 for path in PATHS)
    report = (root / "quickstart" / "report.md").read_text()
    assert "## Targets" in report and "## Ablations" in report
    assert (root / "quickstart" / "rl" / "final" / "model.safetensors").is_file()
    assert "Read-out pretraining before SFT" in report  # the pretrain stage's figures, before SR-REAL's SFT
    assert "Sequences that name a reading: the named `<think>` step" in report
    assert set(metrics["centre_decided"]) == {"sft_dtr", "rl_dtr", "lift"}  # answered vs computed from centres
    assert "### Where DTR answers are lost" in report
    assert set(metrics["reasoning_steps"]) == {"sft_dtr", "rl_dtr"}  # the relation step each DTR chain wrote
    assert "### Which relation step the DTR chains wrote" in report
    sft_config = yaml.safe_load((root / "quickstart" / "sft" / "config.yaml").read_text())
    assert sft_config["model"]["path"] == str(root / "quickstart" / "pretrain")
    assert sft_config["data"]["readout_keywords"] == 0.5 and sft_config["data"]["readout_rehearsal"] == 8
    assert json.loads((root / "quickstart" / "tiny-model" / "processor_config.json").read_text())["evidence_text"]


def test_the_ablations_train_every_variant_and_extend_the_report(quickstart):
    root, recipe, _ = quickstart
    results = run_ablations(root / "ablations", root / "quickstart", recipe, max_steps=1)
    assert set(results["variants"]) == set(VARIANTS)
    for name, variant in results["variants"].items():
        assert set(variant["sft"]) == set(variant["rl"]) == set(VARIANTS[name]["paths"])
        assert (root / "ablations" / name / "rl" / "final" / "model.safetensors").is_file()
    assert not (root / "ablations" / "no_detection" / "sft").exists()  # reuses the baseline's cold start
    # Paired with the baseline on the same questions: the shared cold start answers identically, change [0, 0].
    assert results["variants"]["no_detection"]["paired"]["sft"]["dtr"]["accuracy"] == [0.0, 0.0]
    assert all(set(v["paired"][stage]) == set(v["rl"]) for v in results["variants"].values() for stage in ("sft", "rl"))
    report = (root / "quickstart" / "report.md").read_text()
    assert "Not run here" not in report and "| no_detection | dtr | RL |" in report
