"""Training throughput on this machine with the tiny model: GRPO step time of our trainer against a plain TRL
GRPOTrainer on the same model and batch, and SFT samples per second.

    python benchmarks/bench_train.py [--steps 6] [--completion-tokens 32]

GRPO: both trainers get the same batch (one question without regions, which plain TRL cannot feed to the
model, repeated), the same image and the same generation length (min_new_tokens = max_new_tokens, so sampling
cannot make one run longer), beta 0 and one optimizer step per rollout. `ours` differs only by SR-REAL's
plumbing: its own prompt encoding, per-sample visual inputs split and re-joined, the forward pre-hook, the reward's
component logging and the group filter. A third row runs ours with what plain TRL cannot do at all: a
question with regions (`<region>` tokens) and depth (the 3D positional encoding); its prompt is a little
longer. SFT: our SFTTrainer with the spatial collator on the blended mixture. Median seconds per step after
one warm-up step; nothing is asserted.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times, self.last = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self.last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.last)

    def median(self) -> float:
        return statistics.median(self.times[1:] or self.times)  # the first step warms up


def grpo_args(out: Path, steps: int, tokens: int, batch: int):
    from trl import GRPOConfig

    return GRPOConfig(output_dir=str(out), use_cpu=True, bf16=False, gradient_checkpointing=False, max_steps=steps,
                      per_device_train_batch_size=batch, num_generations=4, max_completion_length=tokens,
                      generation_kwargs={"min_new_tokens": tokens}, beta=0.0, learning_rate=1e-5,
                      logging_strategy="no", save_strategy="no", report_to=[], seed=0, data_seed=0,
                      remove_unused_columns=False, disable_tqdm=True)


def bench_grpo(mixture: Path, model_dir: Path, out: Path, steps: int, tokens: int, batch: int) -> dict[str, float]:
    from trl import GRPOTrainer

    from sr_real.training.grpo import FRAMES, SRRealGRPOTrainer
    from sr_real_core.data.mixture import load_mixture
    from sr_real_core.model.loading import load_model
    from sr_real_core.rewards import sr_real_reward

    # One prompt without regions, repeated: plain TRL tokenizes the prompts of a batch in one processor call,
    # which SRRealProcessor returns as tensors, so they must have the same length.
    rows = load_mixture(mixture, "rl_train")
    plain_rows = rows.select([next(i for i, r in enumerate(rows) if not r["regions"])] * 16)
    region_rows = rows.select([next(i for i, r in enumerate(rows) if r["regions"])] * 16)
    results = {}
    runs = (("plain TRL GRPOTrainer", "plain", plain_rows, False),
            ("ours (same batch)", "ours", plain_rows, False),
            ("ours, regions + depth", "ours", region_rows, True))
    for label, kind, rows, use_depth in runs:
        model, processor = load_model(model_dir)
        args = grpo_args(out / label.replace(" ", "_").replace(",", ""), steps, tokens, batch)
        timer = StepTimer()
        if kind == "plain":
            trainer = GRPOTrainer(model=model, reward_funcs=[sr_real_reward], args=args,
                                  train_dataset=rows.remove_columns(["image"]), processing_class=processor,
                                  callbacks=[timer])
        else:
            dataset = rows.rename_column("images", FRAMES).remove_columns(["image"])
            trainer = SRRealGRPOTrainer(model=model, reward_funcs=[sr_real_reward],
                                        args=args, train_dataset=dataset,
                                        processing_class=processor, callbacks=[timer], group_filter=(-1.0, 2.0),
                                        use_depth=use_depth)
        trainer.train()
        results[label] = timer.median()
    return results


def bench_sft(mixture: Path, model_dir: Path, out: Path, steps: int, batch: int) -> float:
    from sr_real.training.config import config_from_dict
    from sr_real.training.train import build_trainer

    config = config_from_dict({
        "stage": "sft", "output_dir": str(out / "sft"), "model": {"path": str(model_dir)},
        "data": {"mixture": str(mixture)},
        "trainer": {"use_cpu": True, "bf16": False, "gradient_checkpointing": False, "max_steps": steps,
                    "per_device_train_batch_size": batch, "save_strategy": "no", "logging_strategy": "no",
                    "disable_tqdm": True}})
    timer = StepTimer()
    build_trainer(config, callbacks=[timer]).train()
    return batch / timer.median()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--completion-tokens", type=int, default=32)
    parser.add_argument("--grpo-batch", type=int, default=8, help="completions per step (4 per prompt)")
    parser.add_argument("--sft-batch", type=int, default=8)
    args = parser.parse_args()

    import torch

    from sr_real.training.quickstart import ScenesSettings, synthetic_mixture
    from sr_real_core.model.tiny import write_tiny_model

    with tempfile.TemporaryDirectory(prefix="sr-real-bench-train-") as scratch:
        root = Path(scratch)
        model_dir = write_tiny_model(root / "model")
        synthetic_mixture(root, ScenesSettings(num=6, size=(160, 120)),
                          {"eval_fraction": 0.2, "qa": {"per_scene": 8}, "sft": {"total": 64}}, seed=0)
        grpo = bench_grpo(root / "data", model_dir, root, args.steps, args.completion_tokens, args.grpo_batch)
        sft = bench_sft(root / "data", model_dir, root, args.steps, args.sft_batch)

    print(f"\nTraining benchmark: tiny model (4.1M parameters), {torch.get_num_threads()} CPU threads, "
          f"160x120 images (24 image tokens)")
    print(f"GRPO, {args.grpo_batch} completions x {args.completion_tokens} tokens per step, median of "
          f"{args.steps - 1} steps:")
    plain = grpo["plain TRL GRPOTrainer"]
    for label, seconds in grpo.items():
        print(f"  {label:<26} {seconds:6.2f} s/step   ({(seconds / plain - 1) * 100:+5.1f}% vs plain TRL)")
    print(f"SFT, batch {args.sft_batch}: {sft:.2f} samples/s")


if __name__ == "__main__":
    main()
