"""Training on the tiny model: an SFT and a GRPO step change the weights, the SFT loss's optional terms (read-out
rehearsal, decision tokens) are what they claim, the rewards see the right columns,
SR-REAL's visual inputs reach the model intact, the group filter drops groups, and a run killed after a
checkpoint resumes to exactly the uninterrupted result (same data order, optimizer, scheduler, RNG)."""
from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerCallback

from sr_real.training.config import config_from_dict
from sr_real.training.grpo import FRAMES, SRRealGRPOTrainer
from sr_real.training.quickstart import ScenesSettings, synthetic_mixture
from sr_real.training.runs import STAGING, last_checkpoint, read_log
from sr_real.training.sft import decision_spans
from sr_real.training.spatial import (encode, join_visual_inputs, record_visuals, split_visual_inputs,
                                     user_turns_with_images)
from sr_real.training.train import build_trainer, train
from sr_real.training.trainable import group_of
from sr_real_core.model.tiny import write_tiny_model

CPU = {"use_cpu": True, "bf16": False, "gradient_checkpointing": False, "logging_steps": 1, "save_steps": 100,
       "learning_rate": 1e-3}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-training")
    model = write_tiny_model(root / "model")
    mixture = {"eval_fraction": 0.34, "qa": {"per_scene": 6}, "sft": {"total": 24}}
    synthetic_mixture(root, ScenesSettings(num=3, size=(160, 120)), mixture, seed=0)
    return SimpleNamespace(root=root, model=model, mixture=root / "data")


def sft_config(tiny, out, kinds=None, rehearsal=0, decision_weight=0.0, **trainer):
    data = {"mixture": str(tiny.mixture), "kinds": kinds, "readout_rehearsal": rehearsal,
            "decision_weight": decision_weight}
    return config_from_dict({"stage": "sft", "output_dir": str(out), "model": {"path": str(tiny.model)}, "data": data,
                             "trainer": {**CPU, "per_device_train_batch_size": 2, "max_steps": 1, **trainer}})


def rl_config(tiny, out, **trainer):
    return config_from_dict({
        "stage": "rl", "output_dir": str(out), "model": {"path": str(tiny.model)},
        "data": {"mixture": str(tiny.mixture), "train": "rl_train"},
        "rl": {"path_mode": {"reference": 0.5, "auto": 0.5}, "group_filter": [-1.0, 2.0]},
        "trainer": {**CPU, "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 8,
                    "max_steps": 1, "beta": 0.01, "epsilon_high": 0.3, "loss_type": "dapo", **trainer}})


def parameters(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed_groups(model, before):
    return {group_of(name) for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}


def test_one_sft_step_changes_every_module_group(tiny, tmp_path):
    trainer = build_trainer(sft_config(tiny, tmp_path, kinds=["grounding_3d"]))  # records with regions
    before = parameters(trainer.model)
    trainer.train()
    assert changed_groups(trainer.model, before) == {"vision", "projector", "region3d", "llm"}


def test_sft_labels_cover_the_assistant_turn_only(tiny, tmp_path):
    trainer = build_trainer(sft_config(tiny, tmp_path))
    records = [trainer.train_dataset[i] for i in range(2)]
    batch = trainer.data_collator(records)
    tokenizer = trainer.processing_class.tokenizer
    for row, record in enumerate(records):
        labelled = batch["labels"][row][batch["labels"][row] != -100]
        assert tokenizer.decode(labelled) == record["messages"][1]["content"] + "<|im_end|>"
    assert batch["region_weights"].shape[0] == sum(len(r["regions"]) for r in records)
    assert batch["image_points"].shape == (batch["image_grid_thw"].prod(-1).sum() // 4, 3)


def test_readout_rehearsal_adds_the_readout_loss_of_fresh_sequences_to_each_sft_step(tiny, tmp_path):
    import random

    from sr_real.training.pretrain import readout_loss

    config = sft_config(tiny, tmp_path)
    config.data.readout_rehearsal = 2
    trainer = build_trainer(config)
    assert trainer.rehearsal == 2
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    trainer.model.eval()  # evaluation losses are the SFT loss alone
    plain = float(trainer.compute_loss(trainer.model, dict(batch)))
    trainer.model.train()
    torch.manual_seed(0)
    rehearsed = float(trainer.compute_loss(trainer.model, dict(batch)))
    torch.manual_seed(0)
    sft_only = float(super(type(trainer), trainer).compute_loss(trainer.model, dict(batch)))
    readout = float(readout_loss(trainer.model, trainer.processing_class, random.Random(f"{config.seed}/0"), 2))
    assert rehearsed == pytest.approx(sft_only + readout, rel=1e-4) and readout > 0.5  # untrained: ~7 nats
    assert plain == pytest.approx(sft_only, rel=1e-4)  # no dropout in the tiny model: train and eval agree
    assert trainer._metrics["train"]["readout_loss"] == [pytest.approx(readout, rel=1e-4)]  # logged on its own


def test_decision_spans_are_the_opening_of_the_reasoning_and_the_answer():
    chain = ("<detect>Find 1 relevant object:\n<3d_box center=\"0.10,0.20,1.00\">cup</3d_box></detect>\n"
             "<think>Reading x off the detected centres: the cup 0.10, the duck -0.30. The smaller x puts the duck "
             "left. So the answer is yes.</think>\n<answer>yes</answer>")
    assert [chain[a:b] for a, b in decision_spans(chain)] == ["Reading x off the de", "yes"]
    short = "<think>Short.</think><answer>B</answer>"
    assert [short[a:b] for a, b in decision_spans(short)] == ["Short.", "B"]
    assert decision_spans("3.5 m") == [(0, 5)]  # a bare answer (region QA) decides throughout
    assert decision_spans(chain[:chain.index("\n<think>")]) == []  # 3D grounding: only <detect>


def test_decision_weight_adds_the_mean_loss_of_the_decision_tokens_with_its_gradient(tiny, tmp_path):
    trainer = build_trainer(sft_config(tiny, tmp_path, kinds=["lor_cot", "dtr_cot"], decision_weight=2.0))
    records = [trainer.train_dataset[i] for i in range(2)]
    batch = trainer.data_collator(records)
    tokenizer = trainer.processing_class.tokenizer
    for row in range(2):
        labelled, decided = batch["labels"][row] != -100, batch["decision_labels"][row] != -100
        assert 0 < decided.sum() < labelled.sum() / 4 and (decided <= labelled).all()
        turn = records[row]["messages"][1]["content"]
        think, answer = turn.split("<think>", 1)[1], turn.rsplit("<answer>", 1)[1].split("</answer>")[0]
        text = tokenizer.decode(batch["decision_labels"][row][decided])
        assert think[:10] in text and text.endswith(answer)
    model = trainer.model
    model.train()
    weighted = trainer.compute_loss(model, dict(batch))
    weighted.backward()
    got = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "decision_labels")}
    logits = model(**inputs).logits[:, :-1].float()

    def mean_loss(labels):
        return torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels[:, 1:], ignore_index=-100)

    decision = mean_loss(batch["decision_labels"])
    expected = mean_loss(batch["labels"]) + 2.0 * decision
    expected.backward()
    assert float(weighted) == pytest.approx(float(expected), rel=1e-4) and float(decision) > 0.5  # untrained
    for name, p in model.named_parameters():  # the decision term trains the model: it is not a logged constant
        if p.grad is not None:
            torch.testing.assert_close(got[name], p.grad, rtol=1e-3, atol=1e-6)
    assert trainer._metrics["train"]["decision_loss"] == [pytest.approx(float(decision), rel=1e-4)]
    assert "decision_labels" not in build_trainer(sft_config(tiny, tmp_path)).data_collator(records)


def test_one_grpo_step_changes_the_weights_and_the_rewards_see_the_right_columns(tiny, tmp_path):
    trainer = build_trainer(rl_config(tiny, tmp_path))
    records = {r["id"]: r for r in trainer.train_dataset}
    sr_real_reward, calls = trainer.reward_funcs[0], []

    def recording_reward(completions, **columns):
        calls.append(columns)
        rewards = sr_real_reward(completions, **columns)  # the real reward runs on these columns
        # An untrained model earns 0 everywhere; vary the reward with the completion so advantages are non-zero.
        return [r + len(c[0]["content"]) % 5 / 10 for r, c in zip(rewards, completions)]

    trainer.reward_funcs[0] = recording_reward
    before = parameters(trainer.model)
    trainer.train()
    assert changed_groups(trainer.model, before) == {"vision", "projector", "region3d", "llm"}
    columns = calls[0]
    assert len(columns["id"]) == 4 and columns["id"][0] == columns["id"][1]  # 2 prompts x 2 generations
    for i, identifier in enumerate(columns["id"]):
        record = records[identifier]
        for name in ("solution", "answer_type", "path", "gt_centers", "family"):
            assert columns[name][i] == record[name], name
        assert columns["prompts"][i][-1]["content"] == record["prompt"][-1]["content"]
        assert record["question"] in columns["prompts"][i][-1]["content"]
    logged = read_log(tmp_path)[0]
    for key in ("reward/format", "reward/accuracy", "path/dtr", "path/lor", "path/none", "format_failures",
                "filter/kept_groups", "completions/mean_length", "kl"):
        assert key in logged, key
    assert any(key.startswith("accuracy/") for key in logged)


def test_visual_inputs_reach_the_model_intact(tiny, tmp_path):
    """Per-token log-probs through the trainer (visual inputs split per sample, re-joined, region weights, region
    3D evidence and 3D points added by the pre-hook) equal those of one direct forward pass with the processor's batch."""
    trainer = build_trainer(rl_config(tiny, tmp_path))
    processor, model = trainer.processing_class, trainer.model
    dataset = trainer.train_dataset
    rows = [r for r in dataset if r["regions"]][:2] + [r for r in dataset if not r["regions"]][:1]
    texts = [processor.apply_chat_template(user_turns_with_images(r["prompt"], 1), tokenize=False,
                                           add_generation_prompt=True) for r in rows]
    visuals = [record_visuals(r, t, images_key=FRAMES) for r, t in zip(rows, texts)]
    batch = encode(processor, texts, visuals, padding_side="left")
    samples = split_visual_inputs(batch, batch["input_ids"], [1, 1, 1], processor.region_token_id, 2)
    image_token = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    joined = join_visual_inputs(samples, batch["input_ids"], image_token)
    for key in ("pixel_values", "image_grid_thw", "region_weights", "region_points", "image_points",
                "mm_token_type_ids"):
        assert torch.equal(torch.nan_to_num(joined[key]), torch.nan_to_num(batch[key])), key

    completion = torch.randint(100, 1000, (3, 5))
    input_ids = torch.cat([batch["input_ids"], completion], dim=1)
    attention_mask = torch.cat([batch["attention_mask"], torch.ones_like(completion)], dim=1)
    trainer._visuals = samples
    model.eval()
    with torch.no_grad():
        ours, _, _ = trainer._get_per_token_logps_and_entropies(model, input_ids, attention_mask, 5, batch_size=2)
        direct = model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=batch["pixel_values"],
                       image_grid_thw=batch["image_grid_thw"], region_weights=batch["region_weights"],
                       region_points=batch["region_points"], image_points=batch["image_points"],
                       mm_token_type_ids=torch.cat([batch["mm_token_type_ids"], torch.zeros_like(completion)], 1))
    expected = direct.logits[:, -6:-1].log_softmax(-1).gather(-1, completion[..., None])[..., 0]
    assert torch.allclose(ours, expected, atol=1e-4)


def test_the_group_filter_drops_groups_outside_the_interval():
    rewards = torch.tensor([[0.0], [0.0], [0.5], [0.1], [1.0], [1.0]])  # group means 0, 0.3, 1
    fake = SimpleNamespace(
        group_filter=(0.2, 0.99), _gathered_rewards=rewards, reward_weights=torch.ones(1), num_generations=2,
        model=SimpleNamespace(training=True), _metrics={"train": {"filter/kept_groups": []}},
        accelerator=SimpleNamespace(process_index=0, gather=lambda t: t))
    output = {"advantages": torch.tensor([0.0, 0.0, 0.7, -0.7, 0.0, 0.0]),
              "completion_mask": torch.ones(6, 3, dtype=torch.long)}
    output = SRRealGRPOTrainer._filter_groups(fake, output)
    assert output["tool_mask"][:, 0].tolist() == [0, 0, 1, 1, 0, 0]
    assert output["advantages"].tolist() == pytest.approx([0, 0, 0.7, -0.7, 0, 0])
    assert output["num_items_in_batch"].item() == 6
    assert fake._metrics["train"]["filter/kept_groups"] == [pytest.approx(1 / 3)]


class StopAfterSave(TrainerCallback):
    """Simulates a kill right after the checkpoint of `step` is written."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("rehearsal", [0, 2], ids=["plain", "with-readout-rehearsal"])
def test_a_killed_run_resumes_with_the_same_data_order_and_state(tiny, tmp_path, rehearsal):
    settings = {"max_steps": 4, "save_steps": 2, "lr_scheduler_type": "cosine", "weight_decay": 0.01,
                "rehearsal": rehearsal}
    reference_dir, resumed_dir = tmp_path / "uninterrupted", tmp_path / "resumed"
    reference = train(sft_config(tiny, reference_dir, **settings))

    with pytest.raises(KeyboardInterrupt):
        train(sft_config(tiny, resumed_dir, **settings), callbacks=[StopAfterSave(2)])
    assert last_checkpoint(resumed_dir).endswith("checkpoint-2") and not (resumed_dir / "final").exists()
    (resumed_dir / STAGING / "checkpoint-4").mkdir(parents=True)  # what a kill during a save leaves behind
    resumed = train(sft_config(tiny, resumed_dir, **settings))

    assert not (resumed_dir / STAGING).exists()
    logs = {run: [e for e in read_log(run.parent) if "loss" in e] for run in (reference, resumed)}
    assert [e["step"] for e in logs[resumed]] == [1, 2, 3, 4]  # steps 3-4 logged once, after the resume
    # Same batches in the same order, same optimizer and scheduler state: the same losses and learning rates.
    for key in ("loss", "learning_rate") + (("readout_loss",) if rehearsal else ()):
        assert [e[key] for e in logs[resumed]] == pytest.approx([e[key] for e in logs[reference]]), key
    from safetensors.torch import load_file

    expected, got = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(expected[name], got[name], atol=1e-6) for name in expected)
    again = train(sft_config(tiny, resumed_dir, **settings))  # a finished run: re-exported, not trained further
    assert max(e["step"] for e in read_log(resumed_dir)) == 4
    assert all(torch.equal(got[name], tensor) for name, tensor in load_file(again / "model.safetensors").items())


def test_a_crash_during_a_checkpoint_save_leaves_no_checkpoint(tiny, tmp_path, monkeypatch):
    trainer = build_trainer(sft_config(tiny, tmp_path, save_steps=1))

    def crash(output_dir):
        raise OSError("disk full")

    monkeypatch.setattr(trainer, "_save_rng_state", crash)
    with pytest.raises(OSError, match="disk full"):
        trainer.train()
    assert last_checkpoint(tmp_path) is None
    assert (tmp_path / STAGING / "checkpoint-1" / "model.safetensors").is_file()  # the partial save is staged only
