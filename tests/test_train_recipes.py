"""The real-size recipes (Qwen2.5-VL-3B/7B, 1-8 GPUs, DeepSpeed ZeRO-2/3, LoRA) build every object up to
their first step with the tiny model standing in for Qwen2.5-VL: model preparation (full / LoRA / frozen
groups), dataset, TRL trainer (reference model included), optimizer, scheduler and the first batch.

Only what a CPU cannot do is overridden: DeepSpeed (not installed here) and bf16 autocast; the batch is cut to
fit the tiny mixture (a rollout of 2 x 5 completions instead of the recipe's 2,560; the recipe's own batch
arithmetic is checked by TRL in test_train_config). Every other setting is the recipe's own."""
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from sr_real.training.config import load_config
from sr_real.training.quickstart import ScenesSettings, synthetic_mixture
from sr_real.training.train import build_trainer
from sr_real.training.trainable import trainable_summary
from sr_real_core.model.tiny import write_tiny_model

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"
RECIPES = sorted(p for p in CONFIGS.glob("qwen*.yaml"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    mixture = {"eval_fraction": 0.34, "qa": {"per_scene": 4}, "sft": {"total": 12}}
    synthetic_mixture(root, ScenesSettings(num=3, size=(160, 120)), mixture, seed=0)
    return SimpleNamespace(model=write_tiny_model(root / "model"), mixture=root / "data")


def test_there_are_recipes_for_3b_and_7b_sft_and_rl():
    names = {p.name for p in RECIPES}
    assert {"qwen2.5-vl-3b-sft.yaml", "qwen2.5-vl-3b-rl.yaml", "qwen2.5-vl-7b-sft.yaml",
            "qwen2.5-vl-7b-rl.yaml"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_builds_up_to_its_first_step_on_the_tiny_model(recipe, tiny, tmp_path):
    raw = yaml.safe_load(recipe.read_text())
    batch = {"per_device_train_batch_size": 2} if raw["stage"] == "sft" else {
        "per_device_train_batch_size": raw["trainer"]["num_generations"], "gradient_accumulation_steps": 2,
        "steps_per_generation": 2, "max_completion_length": 16}
    config = load_config(recipe, {
        "output_dir": str(tmp_path), "model": {"path": str(tiny.model)}, "data": {"mixture": str(tiny.mixture)},
        "trainer": {"deepspeed": None, "bf16": False, "use_cpu": True, **batch}})
    trainer = build_trainer(config)

    modes = {group: getattr(config.trainable, group) for group in ("vision", "projector", "region3d", "llm")}
    counts = trainable_summary(trainer.model)
    assert all((counts[group] > 0) == (mode != "frozen") for group, mode in modes.items()), counts
    if "lora" in modes.values():
        assert type(trainer.model).__name__.startswith("Peft")
    if raw["stage"] == "rl":
        assert trainer.beta == raw["trainer"]["beta"] and (trainer.ref_model is not None or "lora" in modes.values())
        assert (trainer.epsilon_low, trainer.epsilon_high, trainer.loss_type) == (0.2, 0.3, "dapo")
        assert trainer.group_filter == (0.2, 0.99)
    trainer.create_optimizer_and_scheduler(num_training_steps=max(trainer.args.max_steps, 1))
    assert trainer.optimizer is not None and trainer.lr_scheduler is not None
    first = next(iter(trainer.get_train_dataloader()))
    assert len(first) > 0
