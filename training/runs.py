"""What every run shares: atomic checkpoints, resuming, logs, and the final model.

- `AtomicCheckpoints`, mixed into both trainers: Hugging Face's `Trainer` writes `checkpoint-N/` (weights,
  optimizer, scheduler, RNG states, trainer state) file by file; here it writes into `output_dir/.staging/`
  and the finished folder is renamed into place, so a `checkpoint-N/` that exists is complete. A kill
  mid-save leaves only `.staging/`, which the next start deletes.
- `last_checkpoint(output_dir)`: the checkpoint to resume from. Resuming goes through `Trainer`'s
  `resume_from_checkpoint`: the model, optimizer, scheduler and RNG states are restored and the data loader
  skips the batches already seen, so the run continues with the same data order.
- `JsonLogCallback`: every logged step appended to `output_dir/log.jsonl` (the report's plots read it);
  TensorBoard logs go to `output_dir/runs/` when `tensorboard` is installed (`report_to()`).
- `save_final(trainer, base_model, out)`: the trained model (LoRA merged into the weights) and processor,
  written to a temporary folder and renamed, loadable by `sr_real_core.model.loading.load_model` and the
  inference engine.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

STAGING = ".staging"
_CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


class AtomicCheckpoints:
    """Mix into a `transformers.Trainer` subclass (before the trainer class) to make checkpoints atomic."""

    def _save_checkpoint(self, model, trial):
        final_root = self.args.output_dir
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        self.args.output_dir = os.path.join(final_root, STAGING)  # where Trainer writes checkpoint-N
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.output_dir = final_root
        self.accelerator.wait_for_everyone()  # every rank's shards are written
        if self.args.should_save:
            staged, final = os.path.join(final_root, STAGING, name), os.path.join(final_root, name)
            if os.path.exists(final):  # the same step saved twice (e.g. the last step also a save step)
                shutil.rmtree(final)
            os.replace(staged, final)
            shutil.rmtree(os.path.join(final_root, STAGING))  # left: by-products such as TRL's model card
            rotate_checkpoints(output_dir=final_root, save_total_limit=self.args.save_total_limit, use_mtime=False)
        self.accelerator.wait_for_everyone()


def clean_staging(output_dir: str | Path) -> None:
    """Remove what an interrupted checkpoint save left behind."""
    shutil.rmtree(Path(output_dir) / STAGING, ignore_errors=True)


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest complete `checkpoint-N` folder of a run, or None."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    steps = [(checkpoint_step(p), p) for p in output_dir.iterdir() if p.is_dir() and _CHECKPOINT_RE.match(p.name)]
    return str(max(steps)[1]) if steps else None


def checkpoint_step(checkpoint: str | Path) -> int:
    """The global step of a `checkpoint-N` folder."""
    match = _CHECKPOINT_RE.match(Path(checkpoint).name)
    if match is None:
        raise ValueError(f"{checkpoint}: not a {PREFIX_CHECKPOINT_DIR}-N folder")
    return int(match.group(1))


def report_to() -> list[str]:
    """TensorBoard when it is installed, else nothing beyond `log.jsonl` (no other tracker is assumed)."""
    return ["tensorboard"] if importlib.util.find_spec("tensorboard") else []


class JsonLogCallback(TrainerCallback):
    """Appends every log event (step, epoch and the logged figures) to `output_dir/log.jsonl`."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with open(Path(args.output_dir) / "log.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": state.global_step, **logs}) + "\n")


def read_log(output_dir: str | Path) -> list[dict]:
    path = Path(output_dir) / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def truncate_log(output_dir: str | Path, step: int) -> None:
    """Drop log lines after `step` (a resumed run logs those steps again)."""
    entries = [entry for entry in read_log(output_dir) if entry["step"] <= step]
    path = Path(output_dir) / "log.jsonl"
    if path.is_file():
        path.write_text("".join(json.dumps(entry) + "\n" for entry in entries), encoding="utf-8")


def save_final(trainer, base_model: str, out: str | Path) -> Path:
    """Write the trainer's model as a plain checkpoint, atomically, to `out`. `Trainer.save_model` gathers
    sharded weights (DeepSpeed ZeRO-3); a LoRA adapter is merged into the base checkpoint it was trained on."""
    from peft import PeftModel

    out = Path(out)
    staging = out.with_name(out.name + ".tmp")
    is_peft = isinstance(trainer.model, PeftModel)
    saved = out.with_name(out.name + ".adapter") if is_peft else staging
    if trainer.accelerator.is_main_process:  # leftovers of an interrupted export
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(saved, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(saved))
    if trainer.accelerator.is_main_process:
        if is_peft:
            from sr_real_core.model.loading import load_model

            base, processor = load_model(base_model)
            merged = PeftModel.from_pretrained(base, str(saved)).merge_and_unload()
            merged.save_pretrained(staging)
            processor.save_pretrained(staging)
            shutil.rmtree(saved)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(staging, out)
    trainer.accelerator.wait_for_everyone()
    return out
