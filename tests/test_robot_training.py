"""Continued training on the robot's own data, end to end and small: a synthetic RGB-D recording (rendered scenes
written as a rosbag2 bag with detections, answers and feedback) -> import -> labels -> robot mixture -> replay
mixture -> a short LoRA fine-tune of the tiny model from a checkpoint (`--init-from`) with the on-device recipe ->
evaluation before/after on held-out robot scenes and the original held-out set. The gain asserted is the answer loss
on held-out robot records (the start is the random-weight tiny model, so a few steps move it; accuracy needs a
trained model and a longer run: benchmarks/bench_robot_data.py --finetune)."""
import json
from types import SimpleNamespace

import pytest
import torch

from sr_real.cli import main
from sr_real.training.config import ConfigError
from sr_real.training.continual import LOSS_MARGIN, REPLAY_DIR, compare_checkpoints, continue_config
from sr_real.training.quickstart import REPO, ScenesSettings, synthetic_mixture
from sr_real.training.train import train
from sr_real.training.trainable import group_of
from sr_real_core.data.from_bag import BagImportConfig, import_bag
from sr_real_core.data.labels import convert_labels
from sr_real_core.data.replay import LABELLED_EVAL, ORIGINAL_EVAL
from sr_real_core.data.synth import SynthConfig, synthesize
from sr_real_core.model.loading import load_model
from sr_real_core.model.tiny import write_tiny_model
from sr_real_core.scenes import load_scenes
from support.robot_bag import IMPORT_ARGS, write_robot_bag

RECIPE = REPO / "training" / "configs" / "tiny-robot-lora.yaml"


@pytest.fixture(scope="module")
def robot(tmp_path_factory):
    root = tmp_path_factory.mktemp("robot-training")
    scenes = load_scenes(synthesize(SynthConfig(num_scenes=4, seed=5, width=160, height=120), root / "synth",
                                    progress=False))
    import_bag(write_robot_bag(scenes, root / "bag"), root / "import", BagImportConfig(*IMPORT_ARGS[1::2]))
    convert_labels(root / "import", root / "labels")
    assert main(["data", "robot-mixture", str(root / "labels"), "--out", str(root / "robot"), "--eval-fraction", "0.3",
                 "--per-scene", "4"]) == 0
    manifest = json.loads((root / "robot" / "manifest.json").read_text())
    synthetic_mixture(root / "original", ScenesSettings(num=3, size=(160, 120)),
                      {"eval_fraction": 0.34, "qa": {"per_scene": 4}, "sft": {"total": 16}}, seed=0)
    return SimpleNamespace(root=root, manifest=manifest, model=write_tiny_model(root / "start"),
                           mixture=root / "robot", original=root / "original" / "data")


def test_robot_mixture_holds_out_scenes_with_their_labels(robot):
    held_out = set(robot.manifest["scenes"]["eval"])
    assert held_out and robot.manifest["labelled"][LABELLED_EVAL] >= 1
    for name in ("sft_train", "rl_train"):
        records = [json.loads(line) for line in (robot.mixture / f"{name}.jsonl").read_text().splitlines()]
        assert records and not {r["scene_id"] for r in records} & held_out
    labelled = [json.loads(line) for line in (robot.mixture / f"{LABELLED_EVAL}.jsonl").read_text().splitlines()]
    assert all((robot.mixture / record["image"]).is_file() for record in labelled)  # paths rebased


STEPS = 12  # on-device recipe (batch 1, gradient checkpointing, LoRA on the language model, Adafactor)


def test_continue_training_from_a_checkpoint_with_replay_then_compare(robot, tmp_path):
    config = continue_config(RECIPE, {"output_dir": str(tmp_path / "run"), "data": {"mixture": str(robot.mixture)},
                                      "trainer": {"gradient_accumulation_steps": 1, "max_steps": STEPS,
                                                  "save_steps": STEPS, "warmup_steps": 0}},
                             init_from=str(robot.model), replay=str(robot.original), replay_share=0.3)
    replay = tmp_path / "run" / REPLAY_DIR
    assert config.model.path == str(robot.model) and config.data.mixture == str(replay)
    counts = json.loads((replay / "manifest.json").read_text())["counts"]["sft_train"]
    assert counts["replayed"] == min(round(counts["robot"] * 0.3 / 0.7), 16)
    final = train(config)
    start, tuned = (load_model(path)[0].state_dict() for path in (robot.model, final))
    changed = {group_of(name) for name in start if not torch.equal(start[name], tuned[name])}
    assert changed == {"llm"}  # LoRA on the language model only, merged into a plain checkpoint

    small = {}
    for name, source in (("robot", replay / "rl_eval.jsonl"), ("original", replay / f"{ORIGINAL_EVAL}.jsonl")):
        small[name] = replay / f"first-{name}.jsonl"  # beside the records: their paths stay valid
        small[name].write_text("".join(source.read_text().splitlines(keepends=True)[:1]))
    loss_sets = {"robot": replay / "sft_eval.jsonl", "original": robot.original / "sft_eval.jsonl"}
    result = compare_checkpoints(robot.model, final, small, tmp_path / "compare", path="dtr", max_new_tokens=8,
                                 loss_sets=loss_sets)
    assert set(result["sets"]) == {"robot", "original"} and result["sets"]["robot"]["n"] == 1
    assert isinstance(result["forgot_more_than_margin"], bool) and "robot_improved" in result
    written = json.loads((tmp_path / "compare" / "compare.json").read_text())
    assert written["margin"] == 0.05 and written["loss_margin"] == LOSS_MARGIN
    robot_loss, original_loss = result["loss"]["robot"], result["loss"]["original"]
    assert robot_loss["n"] >= 5 and original_loss["n"] >= 5
    assert robot_loss["delta_ci"][1] < 0 and result["robot_loss_improved"]  # the robot's held-out loss drops
    assert original_loss["delta_ci"][1] <= LOSS_MARGIN and result["loss_forgetting_within_margin"]
    undone = compare_checkpoints(final, robot.model, {}, tmp_path / "undone", loss_sets=loss_sets)  # both verdicts fail
    assert not undone["robot_loss_improved"] and not undone["loss_forgetting_within_margin"]


def test_a_checkpoint_compared_with_itself_is_no_gain(robot, tmp_path):
    loss_sets = {"robot": robot.mixture / "sft_eval.jsonl", "original": robot.original / "sft_eval.jsonl"}
    result = compare_checkpoints(robot.model, robot.model, {}, tmp_path, loss_sets=loss_sets, loss_records=4)
    assert result["loss"]["robot"]["n"] == 4 and result["loss"]["robot"]["delta"] == 0
    assert not result["robot_loss_improved"] and result["loss_forgetting_within_margin"]


def test_bad_continue_options_are_user_errors(robot, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / "config.json").write_text("{}")
    common = ["train", "sft", "--config", str(RECIPE), "--mixture", str(robot.mixture)]
    assert main([*common, "--init-from", str(tmp_path / "empty")]) == 2
    assert "not a checkpoint directory (no config.json)" in capsys.readouterr().err
    assert main([*common, "--init-from", str(tmp_path / "no-weights")]) == 2
    assert "no .safetensors weights" in capsys.readouterr().err
    assert main([*common, "--init-from", str(robot.model), "--replay", str(tmp_path / "empty"),
                 "--output-dir", str(tmp_path / "out")]) == 2
    assert "--replay " + str(tmp_path / "empty") + ": not a mixture folder" in capsys.readouterr().err
    qa = str(robot.mixture / "rl_eval.jsonl")
    assert main(["train", "compare", "--before", str(robot.model), "--after", str(robot.model), "--robot-qa", qa,
                 "--original-qa", qa, "--robot-sft", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "c")]) == 2
    assert "none.jsonl: no such SFT records file" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="replay-share"):
        continue_config(RECIPE, {"data": {"mixture": str(robot.mixture)}}, None, str(robot.original), 1.0)
