"""Run configs: the shipped ones parse, malformed ones fail naming the field; RL path modes."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sr_real.training.config import ConfigError, config_from_dict, load_config
from sr_real.training.prompts import path_for, question_of, with_auto_prompt, with_path
from sr_real.training.quickstart import load_recipe

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"
RUN_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml") if yaml.safe_load(p.read_text()).get("stage"))
MINIMAL = {"stage": "sft", "output_dir": "runs/x", "model": {"path": "m"}, "data": {"mixture": "d"}}


def test_every_shipped_run_config_parses_and_makes_its_trl_config():
    assert {p.name for p in RUN_CONFIGS} >= {"tiny-sft.yaml", "tiny-rl.yaml", "qwen2.5-vl-3b-sft.yaml",
                                             "qwen2.5-vl-3b-rl.yaml", "qwen2.5-vl-7b-sft.yaml", "qwen2.5-vl-7b-rl.yaml"}
    for path in RUN_CONFIGS:
        config = load_config(path)
        # DeepSpeed is not installed on a CPU machine; everything else of the TRL config is validated by TRL.
        args = config.trl_args(deepspeed=None, bf16=False, use_cpu=True)
        assert args.output_dir == config.output_dir and args.seed == config.seed


def test_deepspeed_and_accelerate_files_referenced_by_recipes_exist():
    for path in RUN_CONFIGS:
        deepspeed = load_config(path).trainer.get("deepspeed")
        if deepspeed:
            assert (CONFIGS.parents[1] / deepspeed).is_file(), f"{path.name}: {deepspeed} missing"
    for accelerate in (CONFIGS / "accelerate").glob("*.yaml"):
        settings = yaml.safe_load(accelerate.read_text())
        ds = settings.get("deepspeed_config", {}).get("deepspeed_config_file")
        assert ds is None or (CONFIGS.parents[1] / ds).is_file()


def test_quickstart_recipe_parses():
    recipe = load_recipe()
    assert recipe.sft.endswith("tiny-sft.yaml") and recipe.rl.endswith("tiny-rl.yaml")
    assert recipe.showcase.real_frame is not None and len(recipe.showcase.real_frame.objects) >= 2


@pytest.mark.parametrize("change, field", [
    ({"stage": "ppo"}, "stage"),
    ({"model": {"path": "m", "pth": "x"}}, "model.pth"),
    ({"model": {}}, "model.path"),
    ({"model": {"path": "m", "dtype": "bf16"}}, "model.dtype"),
    ({"seed": "zero"}, "seed"),
    ({"data": {"mixture": "d", "max_samples": 0}}, "data.max_samples"),
    ({"data": {"mixture": "d", "auto_share": 2}}, "data.auto_share"),
    ({"trainable": {"llm": "partial"}}, "trainable.llm"),
    ({"trainable": {"vision": "frozen", "projector": "frozen", "region3d": "frozen", "llm": "frozen"}}, "trainable"),
    ({"lora": {"dropout": 1.5}}, "lora.dropout"),
    ({"rl": {"path_mode": "sometimes"}}, "rl.path_mode"),
    ({"rl": {"path_mode": {"lor": -1, "dtr": 1}}}, "rl.path_mode.lor"),
    ({"rl": {"group_filter": [0.9, 0.2]}}, "rl.group_filter"),
    ({"rl": {"reward": {"dtr_detection": 0.5}}}, "rl.reward"),
    ({"rl": {"reward": {"detection_norm": "mean"}}}, "rl.reward"),
    ({"rl": {"reward": {"lor_format": "high"}}}, "rl.reward.lor_format"),
    ({"trainer": {"learning_rat": 1e-4}}, "trainer.learning_rat"),
    ({"trainer": {"learning_rate": "fast"}}, "trainer.learning_rate"),
    ({"trainer": {"max_steps": 2.5}}, "trainer.max_steps"),
    ({"trainer": {"output_dir": "elsewhere"}}, "trainer.output_dir"),
])
def test_a_malformed_config_fails_naming_the_field(change, field):
    with pytest.raises(ConfigError) as error:
        config_from_dict({**MINIMAL, **change}, source="bad.yaml")
    assert f"bad.yaml: {field}:" in str(error.value)


def test_a_malformed_yaml_file_is_named(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("stage: sft\nmodel: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(path)


def test_numbers_written_as_yaml_1_1_strings_are_read_as_numbers():
    config = config_from_dict({**MINIMAL, "trainer": {"learning_rate": "1e-5"}})
    assert config.trainer["learning_rate"] == 1e-5


def test_overrides_merge_into_nested_sections(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "model": {"path": "m", "tiny_if_missing": True}}))
    config = load_config(path, {"model": {"path": "other"}, "output_dir": "runs/y"})
    assert (config.model.path, config.model.tiny_if_missing, config.output_dir) == ("other", True, "runs/y")


def test_the_cli_registers_without_importing_torch():
    code = ("import argparse, sys, sr_real.training.cli; "
            "sr_real.training.cli.register(argparse.ArgumentParser().add_subparsers());"
            "sys.exit('torch' in sys.modules or 'trl' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=CONFIGS.parents[1]).returncode == 0


def test_sft_cli_reports_a_bad_config_with_its_field(tmp_path, capsys):
    from sr_real.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "trainer": {"warmup_stepz": 3}}))
    assert main(["train", "sft", "--config", str(path)]) == 2
    assert "trainer.warmup_stepz" in capsys.readouterr().err


RL_RECORD = {"id": "q1", "question": "How far is the red bbox <region> from the blue bbox <region>?",
             "answer_type": "numeric", "path": "dtr", "regions": [{"ref": "red bbox"}, {"ref": "blue bbox"}]}


def test_path_modes_choose_each_prompts_path():
    assert path_for(RL_RECORD, "dataset", 0) == "dtr"
    assert path_for(RL_RECORD, "lor", 0) == "lor"
    assert path_for(RL_RECORD, "reference", 0) == "dtr"
    assert path_for({**RL_RECORD, "regions": []}, "reference", 0) == "lor"
    assert path_for(RL_RECORD, "auto", 0) == "auto"
    records = [{**RL_RECORD, "id": f"q{i}"} for i in range(400)]
    drawn = [path_for(r, {"lor": 1, "auto": 3}, seed=0) for r in records]
    assert 0.65 < drawn.count("auto") / len(drawn) < 0.85 and set(drawn) == {"lor", "auto"}
    assert drawn == [path_for(r, {"lor": 1, "auto": 3}, seed=0) for r in records]  # fixed per prompt and seed


def test_with_path_rebuilds_the_prompt_and_the_question_is_recovered_without_its_column():
    from sr_real_core.grammar import build_prompt

    asked = with_path(RL_RECORD, "auto", 0)
    assert asked["path"] == "auto"
    assert asked["prompt"][0]["content"] == build_prompt(RL_RECORD["question"], "auto", "numeric")
    legacy = {k: v for k, v in RL_RECORD.items() if k != "question"}
    legacy["prompt"] = [{"role": "user", "content": build_prompt(RL_RECORD["question"], "dtr", "numeric")}]
    assert question_of(legacy) == RL_RECORD["question"]
    legacy["prompt"][0]["content"] += " tampered"
    with pytest.raises(ValueError, match="q1"):
        question_of(legacy)


def test_sft_chains_of_thought_are_re_asked_in_auto_mode_on_the_reference_path_only():
    from sr_real_core.grammar import build_prompt

    def record(kind, path, regions, index):
        question = "How far is the red bbox <region> from the blue bbox <region>?" if regions else "How tall is it?"
        return {"id": f"r{index}", "kind": kind, "regions": [{"ref": "red bbox"}] * (2 if regions else 0),
                "messages": [{"role": "user", "content": build_prompt(question, path, "numeric")},
                             {"role": "assistant", "content": "..."}]}

    for kind, path, regions, changes in (("dtr_cot", "dtr", True, True), ("lor_cot", "lor", False, True),
                                         ("lor_cot", "lor", True, False), ("grounding_3d", "dtr", True, False)):
        records = [record(kind, path, regions, i) for i in range(50)]
        changed = [with_auto_prompt(r, 0.5, 0)["messages"] != r["messages"] for r in records]
        assert (10 < sum(changed) < 40) if changes else not any(changed), (kind, regions)
        for r, was_changed in zip(records, changed):
            if was_changed:
                asked = with_auto_prompt(r, 0.5, 0)["messages"]
                assert asked[0]["content"].startswith(r["messages"][0]["content"].partition("\n\n")[0])
                assert "Choose one of two formats" in asked[0]["content"] and asked[1] == r["messages"][1]
