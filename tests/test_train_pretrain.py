"""Read-out pretraining (training/pretrain.py): the generic task, a staged checkpoint with its figures, the CLI."""
import json
import random

import pytest

from sr_real.cli import main
from sr_real.training.pretrain import (CENTRE_RANGE, READINGS, PretrainSettings, _inputs, pretrain_readout,
                                       readout_example, readout_errors, reading_accuracy, reading_step)
from sr_real_core.grammar import parse_completion
from sr_real_core.model.loading import load_model
from sr_real_core.model.tiny import write_tiny_model
from sr_real_core.query import REGION_TOKEN


def test_readout_examples_ask_for_each_regions_centre_in_the_detect_format():
    rng = random.Random(0)
    counts = set()
    for _ in range(50):
        example = readout_example(rng, max_items=3)
        counts.add(len(example.evidence))
        assert example.request.count(REGION_TOKEN) == len(example.evidence)
        written = [d.center for d in parse_completion(f"<detect>{example.answer}</detect>").detections]
        assert written == [tuple(round(v, 2) for v in row[:3]) for row in example.evidence]  # in region order
        for row in example.evidence:
            assert all(low <= value <= high for value, (low, high) in zip(row, CENTRE_RANGE)) and len(row) == 6
    assert counts == {1, 2, 3}
    assert "bbox" not in example.request and "?" not in example.request  # generic: no mark, no SR-REAL question


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny"), seed=0)


def test_the_evidence_reaches_the_model_as_region_points(tiny_dir):
    _, processor = load_model(tiny_dir)
    examples = [readout_example(random.Random(seed)) for seed in range(3)]
    inputs = _inputs(processor, examples, with_answers=True)
    rows = [row for example in examples for row in example.evidence]
    assert inputs["region_points"].flatten().tolist() == pytest.approx([v for row in rows for v in row])
    assert int((inputs["input_ids"] == processor.tokenizer.convert_tokens_to_ids(REGION_TOKEN)).sum()) == len(rows)


def test_readout_errors_score_written_centres_and_count_missing_boxes_as_infinite(tiny_dir):
    import torch

    _, processor = load_model(tiny_dir)

    class Scripted:  # writes each sequence's first region centre 0.1 m off in x, and no box for the others
        def eval(self):
            pass

        train = eval

        def generate(self, input_ids, region_points, **_):
            region = processor.tokenizer.convert_tokens_to_ids(REGION_TOKEN)
            firsts = region_points[torch.cat([torch.zeros(1, dtype=torch.long),
                                              (input_ids == region).sum(1).cumsum(0)[:-1]])]
            rows = [processor.tokenizer.encode(f'<3d_box center="{x + 0.1:.2f},{y:.2f},{z:.2f}">item 1</3d_box>',
                                               add_special_tokens=False) for x, y, z in firsts[:, :3].tolist()]
            width, pad = max(map(len, rows)), processor.tokenizer.pad_token_id
            return torch.cat([input_ids, torch.tensor([r + [pad] * (width - len(r)) for r in rows])], dim=1)

    errors = readout_errors(Scripted(), processor, random.Random(5), samples=6, max_items=2)
    written = [e for e in errors if e != float("inf")]
    assert len(written) == 6 and all(e == pytest.approx(0.1, abs=0.006) for e in written)
    assert len(errors) > 6  # some sequences had a second region, never written


def test_pretraining_lowers_the_loss_and_writes_a_loadable_checkpoint(tiny_dir, tmp_path):
    settings = PretrainSettings(steps=30, batch_size=8, warmup_steps=5, learning_rate=2e-3, check_samples=2)
    figures = pretrain_readout(tiny_dir, tmp_path / "pretrained", settings)
    assert figures["last_loss"] < figures["first_loss"] * 0.5  # 7.4 -> ~1 nat: the format is learnt
    assert figures["steps"] == 30 and figures["readout_error_before"] is None  # random init writes no box
    saved = json.loads((tmp_path / "pretrained" / "pretrain.json").read_text())
    assert saved["last_loss"] == figures["last_loss"]
    model, processor = load_model(tmp_path / "pretrained")
    assert model.config.region_evidence and processor.tokenizer.pad_token_id is not None
    assert not list(tmp_path.glob(".pretrained.*"))  # staged and renamed
    assert pretrain_readout(tiny_dir, tmp_path / "pretrained", settings) == saved  # a finished stage is reused


def test_the_cli_refuses_a_missing_checkpoint_and_bad_steps(tmp_path, tiny_dir, capsys):
    assert main(["train", "pretrain", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a checkpoint directory" in capsys.readouterr().err
    assert main(["train", "pretrain", "--model", str(tiny_dir), "--out", str(tmp_path / "o"), "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert main(["train", "pretrain", "--model", str(tiny_dir), "--out", str(tmp_path / "o"), "--steps", "1"]) == 0
    assert "median read-out error no boxes -> " in capsys.readouterr().out  # random init writes no box


def test_a_named_reading_asks_for_its_think_step_and_leaves_plain_draws_unchanged():
    rng, seen = random.Random(0), set()
    for _ in range(40):
        example = readout_example(rng, max_items=3, keyword_fraction=1.0, min_items=2)
        reading = example.reading
        assert example.request.endswith(f" Then read off their {reading}.")
        seen.add(reading)
        boxes, think = example.answer.split("\n<think>")
        written = [d.center for d in parse_completion(f"<detect>{boxes}</detect>").detections]
        assert think == f"{reading_step(reading, written)}</think>" and len(written) >= 2
    assert seen == set(READINGS)
    assert reading_step("z", [(0.1, 0.2, 3.0), (-1.0, 0.5, 2.25)]) == (
        "Reading z off the detected centres (x right, y down, z forward): item 1 3.00, item 2 2.25.")
    # Off (the default), a sequence takes the draws it took before readings existed (count, evidence, colour) and
    # no more, so a seed's sequences, and the adopted recipe's read-out stage, stay as they were.
    for seed in range(20):
        drawn, replay = random.Random(seed), random.Random(seed)
        example = readout_example(drawn)
        count = replay.randint(1, 3)
        for _ in range(6 * count):  # the centre and extent of each region
            replay.uniform(0, 1)
        assert example.colour == tuple(replay.randrange(256) for _ in range(3)) and len(example.evidence) == count
        assert drawn.random() == replay.random() and example.reading is None and "<think>" not in example.answer


def test_reading_accuracy_scores_the_named_step_and_its_copy(tiny_dir):
    import torch

    _, processor = load_model(tiny_dir)
    tokenizer = processor.tokenizer

    class Scripted:  # writes every box; even rows take the named step, odd rows read x whatever is named
        def eval(self):
            pass

        train = eval

        def generate(self, input_ids, region_points, **_):
            counts = (input_ids == tokenizer.convert_tokens_to_ids(REGION_TOKEN)).sum(1).tolist()
            rows, start = [], 0
            for index, (ids, count) in enumerate(zip(input_ids.tolist(), counts)):
                reading = tokenizer.decode(ids).split("read off their ")[1].split(".")[0]
                centres = [tuple(round(v, 2) for v in row) for row in region_points[start:start + count, :3].tolist()]
                start += count
                boxes = "\n".join(f'<3d_box center="{x:.2f},{y:.2f},{z:.2f}">item {k + 1}</3d_box>'
                                  for k, (x, y, z) in enumerate(centres))
                step = reading_step(reading if index % 2 == 0 else ("y" if reading == "x" else "x"), centres)
                rows.append(tokenizer.encode(f"{boxes}\n<think>{step}</think>", add_special_tokens=False))
            width, pad = max(map(len, rows)), tokenizer.pad_token_id
            return torch.cat([input_ids, torch.tensor([r + [pad] * (width - len(r)) for r in rows])], dim=1)

    assert reading_accuracy(Scripted(), processor, random.Random(2), samples=8, max_items=3, batch_size=4) == {
        "named": 0.5, "exact": 0.5}
