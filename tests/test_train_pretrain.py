"""Copy pretraining (training/pretrain.py): the generic copy task, a staged checkpoint with its figures, the CLI."""
import json
import random

import pytest

from sr_real.cli import main
from sr_real.training.pretrain import NAMES, PretrainSettings, copy_example, pretrain_copy
from sr_real_core.model.loading import load_model
from sr_real_core.model.tiny import write_tiny_model


def test_copy_examples_ask_for_one_listed_centre_in_the_detect_format():
    rng = random.Random(0)
    for _ in range(50):
        prompt, answer = copy_example(rng, max_items=3)
        centre, name = answer.split('center="')[1].split('">')[0], answer.split('">')[1].split("</")[0]
        assert name in NAMES and prompt.endswith("<|im_start|>assistant\n") and answer.endswith("<|im_end|>")
        assert f"{name} (measured: centre {centre} m, size " in prompt  # the asked item's own numbers
        assert prompt.count("measured:") <= 3 and prompt.rstrip().count(f"Write the centre of the {name}.") == 1
    assert "region" not in prompt and "image" not in prompt  # generic: no scene, no SR-REAL question


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny"), seed=0)


def test_pretraining_lowers_the_copy_loss_and_writes_a_loadable_checkpoint(tiny_dir, tmp_path):
    settings = PretrainSettings(steps=30, batch_size=8, warmup_steps=5, check_samples=2)
    figures = pretrain_copy(tiny_dir, tmp_path / "pretrained", settings)
    assert figures["last_loss"] < figures["first_loss"] * 0.5  # 7.4 -> ~1.5 nats on this task
    assert 0.0 <= figures["exact_copy_after"] <= 1.0 and figures["steps"] == 30
    saved = json.loads((tmp_path / "pretrained" / "pretrain.json").read_text())
    assert saved["last_loss"] == figures["last_loss"]
    model, processor = load_model(tmp_path / "pretrained")
    assert model.config.region_evidence and processor.tokenizer.pad_token_id is not None
    assert not list(tmp_path.glob(".pretrained.*"))  # staged and renamed
    assert pretrain_copy(tiny_dir, tmp_path / "pretrained", settings) == saved  # a finished stage is reused


def test_the_cli_refuses_a_missing_checkpoint_and_bad_steps(tmp_path, tiny_dir, capsys):
    assert main(["train", "pretrain", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a checkpoint directory" in capsys.readouterr().err
    assert main(["train", "pretrain", "--model", str(tiny_dir), "--out", str(tmp_path / "o"), "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err and not (tmp_path / "o").exists()
