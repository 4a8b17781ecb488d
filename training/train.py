"""One training run, SFT or RL, from a run config: `train(config)` (CLI: `sr-real train sft|rl --config FILE`).

    config  ->  policy (load_policy: checkpoint, trainable modules, LoRA)
            ->  dataset (load_dataset: a `sr-real data build` mixture; RL prompts asked on their path)
            ->  trainer (sft.build_sft_trainer / grpo.build_grpo_trainer on TRL)
            ->  trainer.train(resume_from_checkpoint=<newest complete checkpoint, if any>)
            ->  output_dir/final (a plain checkpoint for the inference engine and the next stage)

A run is resumable: start the same command again after a kill and it continues from its newest checkpoint
(model, optimizer, scheduler, RNG state and position in the data), logging to the same `log.jsonl`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from sr_real.training.config import RunConfig
from sr_real.training.runs import (JsonLogCallback, checkpoint_step, clean_staging, last_checkpoint, report_to,
                                  save_final, truncate_log)

FINAL = "final"


def load_policy(config: RunConfig):
    """(model, processor) to train: the configured checkpoint (the tiny model is written first when asked),
    with the configured modules trainable."""
    import torch

    from sr_real_core.model.loading import load_model
    from sr_real.training.trainable import prepare_model

    path = Path(config.model.path)
    if config.model.tiny_if_missing and not path.exists():
        from sr_real_core.model.tiny import write_tiny_model

        write_tiny_model(path, seed=config.seed)
    dtype = getattr(torch, config.model.dtype) if config.model.dtype else None
    model, processor = load_model(config.model.path, dtype=dtype)
    return prepare_model(model, config.trainable, config.lora), processor


def load_dataset(config: RunConfig):
    """The training records of the configured mixture file; for RL, each prompt asked on its path mode."""
    from sr_real_core.data.mixture import load_mixture

    dataset = load_mixture(config.data.mixture, config.data.train)
    if config.data.kinds is not None:
        kinds = set(config.data.kinds)
        dataset = dataset.filter(lambda record: record["kind"] in kinds)
        if len(dataset) == 0:
            raise ValueError(f"data.kinds {sorted(kinds)}: no record of {config.data.train} has one of these kinds")
    if config.data.max_samples is not None:
        dataset = dataset.select(range(min(config.data.max_samples, len(dataset))))
    if config.stage == "sft" and config.data.auto_share > 0:
        from sr_real.training.prompts import with_auto_prompt

        dataset = dataset.map(with_auto_prompt, fn_kwargs={"share": config.data.auto_share, "seed": config.seed})
    if config.stage == "rl":
        from sr_real.training.grpo import FRAMES
        from sr_real.training.prompts import with_path

        dataset = dataset.map(with_path, fn_kwargs={"mode": config.rl.path_mode, "seed": config.seed})
        dataset = dataset.rename_column("images", FRAMES).remove_columns(["image"])
    return dataset


def build_trainer(config: RunConfig, max_steps: int | None = None, callbacks=()):
    """The TRL trainer of a run, built up to its first step (nothing trained yet); `callbacks` are extra
    `transformers.TrainerCallback`s."""
    overrides = {"report_to": report_to(), "remove_unused_columns": False}
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    args = config.trl_args(**overrides)
    model, processor = load_policy(config)
    dataset = load_dataset(config)
    callbacks = [JsonLogCallback(), *callbacks]
    if config.stage == "sft":
        from sr_real.training.sft import build_sft_trainer

        return build_sft_trainer(model, processor, args, dataset, use_depth=config.data.depth, callbacks=callbacks,
                                 rehearsal=config.data.readout_rehearsal,
                                 rehearsal_keywords=config.data.readout_keywords,
                                 decision_weight=config.data.decision_weight)
    from sr_real.training.grpo import build_grpo_trainer

    return build_grpo_trainer(model, processor, args, dataset, config.rl.reward.reward_config(),
                              group_filter=config.rl.group_filter, use_depth=config.data.depth, callbacks=callbacks)


def train(config: RunConfig, max_steps: int | None = None, callbacks=()) -> Path:
    """Train (or resume) the run and export `output_dir/final`; returns that folder."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    clean_staging(output_dir)
    snapshot = {k: v for k, v in dataclasses.asdict(config).items() if k != "source"}
    (output_dir / "config.yaml").write_text(yaml.safe_dump(snapshot, sort_keys=False), encoding="utf-8")
    trainer = build_trainer(config, max_steps, callbacks)
    resume = last_checkpoint(output_dir)
    step = checkpoint_step(resume) if resume else 0
    if resume is not None:
        truncate_log(output_dir, step)
        print(f"resuming from {resume}", flush=True)
    elif (output_dir / "log.jsonl").exists():
        (output_dir / "log.jsonl").unlink()
    if resume is not None and 0 < trainer.args.max_steps <= step:
        trainer._load_from_checkpoint(resume)  # already finished: `Trainer.train` would run one step more
    else:
        trainer.train(resume_from_checkpoint=resume)
    return save_final(trainer, config.model.path, output_dir / FINAL)
