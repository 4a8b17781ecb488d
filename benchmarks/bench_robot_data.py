"""The robot-data path on this machine: bag import throughput, and the on-device continued-training recipe's step time
and peak memory on the tiny model, side by side with a full fine-tune.

    python benchmarks/bench_robot_data.py [--frames 60] [--steps 6]
    python benchmarks/bench_robot_data.py --finetune [--base-steps 200] [--robot-steps 40]   # the measured run
    python benchmarks/bench_robot_data.py --finetune --base runs/quickstart/rl/final --original runs/quickstart/data
        [--validation] [--lr 1e-4] [--robot-steps 60]

import: rendered 640x480 RGB-D scenes (8 distinct, repeated with new stamps) written as rosbag2 bags (mcap and
sqlite3): rgb8 Image + 16UC1 depth + CameraInfo + Detection2DArray per frame. `sr-real data from-bag` with depth
(every detection lifted to 3D) and without (colour and intrinsics only). Frames per second of the whole import
(both passes, PNG encoding, lifting), wall time; the load average says what else ran.

train: each variant in a fresh process (peak RSS = that process's maximum resident memory, model and data
included): `on-device` is training/configs/tiny-robot-lora.yaml (batch 1 x 8 accumulated, gradient checkpointing,
LoRA on the language model only, Adafactor); `full` trains every module with AdamW, batch 8, no checkpointing (the
tiny SFT recipe). Median seconds per optimizer step after a warm-up step (8 samples each); nothing is asserted.

--finetune: the measured continued-training run. A base checkpoint (`--base` with the mixture it was trained on,
`--original`, e.g. the quickstart's RL checkpoint; else a full SFT of the tiny model on a synthetic mixture of
table-tops and rooms, trained here), then the on-device recipe from it on a synthetic robot recording (room scenes
only, another seed, measured 3D labels) with a replay share (`--replay-share`, default 0.3), and `sr-real train
compare` on held-out robot scenes and the original held-out set: accuracy on `--questions` held-out questions per
set (auto path, 384 new tokens as in the quickstart) and the answer loss on `--loss-records` held-out SFT records
per set (each mixture's sft_eval.jsonl). Nothing is written into `--original`. `--validation` chooses the recipe
(`--lr`, `--robot-steps`) without touching a test set: it trains on 70% of the robot's training scenes and evaluates
on the other 30% only (no held-out scene, no original set). Prints and writes OUT/compare/compare.json (default OUT
runs/bench-robot-finetune); a finished stage (base, robot data, fine-tune) is reused when run again.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # support.robot_bag: the synthetic recording of the tests


def _load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def _rendered(count: int, size: tuple[int, int], out: Path, seed: int = 0, room_fraction: float = 0.3):
    from sr_real_core.data.synth import SynthConfig, synthesize
    from sr_real_core.scenes import load_scenes

    config = SynthConfig(num_scenes=count, seed=seed, width=size[0], height=size[1], room_fraction=room_fraction)
    return load_scenes(synthesize(config, out, progress=False))


def bench_import(frames: int, root: Path) -> list[dict]:
    from sr_real_core.data.from_bag import BagImportConfig, import_bag
    from sr_real_core.ros.bag_writer import scene_frames, write_camera_bag
    from support.robot_bag import TOPICS

    scenes = _rendered(8, (640, 480), root / "scenes")
    base = scene_frames(scenes)
    stream = [type(base[0])(**{**vars(base[i % len(base)]), "stamp": 1_700_000_000 + i / 30}) for i in range(frames)]
    rows = []
    for storage in ("mcap", "sqlite3"):
        bag = write_camera_bag(root / f"bag-{storage}", stream, storage=storage)
        size_mb = sum(p.stat().st_size for p in bag.iterdir()) / 1e6
        for depth in (True, False):
            config = BagImportConfig(TOPICS.image, TOPICS.info, depth_topic=TOPICS.depth if depth else None,
                                     regions_topic=TOPICS.detections)
            out = root / f"import-{storage}-{depth}"
            began = time.perf_counter()
            report = import_bag(bag, out, config)
            seconds = time.perf_counter() - began
            rows.append({"storage": storage, "depth_lifting": depth, "frames": report["frames"]["imported"],
                         "frames_per_s": round(report["frames"]["imported"] / seconds, 1),
                         "bag_mb_per_s": round(size_mb / seconds, 1),
                         "objects_lifted": report["objects"].get("objects_lifted", 0), "seconds": round(seconds, 2),
                         "load": _load()})
    return rows


VARIANTS = {
    "on-device": {},  # the recipe as written
    "on-device, no checkpointing": {"trainer": {"gradient_checkpointing": False}},
    "full": {"trainable": {"vision": "full", "projector": "full", "region3d": "full", "llm": "full"},
             "trainer": {"gradient_checkpointing": False, "per_device_train_batch_size": 8,
                         "gradient_accumulation_steps": 1, "optim": "adamw_torch", "learning_rate": 2e-3}},
}


def _train_child(variant: str, model: str, mixture: str, out: str, steps: int) -> None:
    """In a fresh process: `steps` optimizer steps of a variant; prints {step_s, peak_rss_mb}."""
    from transformers import TrainerCallback

    from sr_real.training.continual import continue_config
    from sr_real.training.train import build_trainer

    class Timer(TrainerCallback):
        def __init__(self):
            self.times, self.began = [], 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self.began)

    overrides = VARIANTS[variant]
    trainer_overrides = {"max_steps": steps, "warmup_steps": 0, "save_strategy": "no", "logging_steps": 1000,
                         **overrides.get("trainer", {})}
    config = continue_config(REPO / "training/configs/tiny-robot-lora.yaml",
                             {**overrides, "output_dir": out, "data": {"mixture": mixture},
                              "trainer": trainer_overrides}, init_from=model)
    timer = Timer()
    trainer = build_trainer(config, callbacks=[timer])
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trainer.train()
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    print(json.dumps({"step_s": statistics.median(timer.times[1:] or timer.times), "loaded_rss_mb": loaded_mb,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "trainable_params": trainable}))


def bench_train(steps: int, root: Path) -> list[dict]:
    from sr_real_core.model.tiny import write_tiny_model
    from sr_real.training.quickstart import ScenesSettings, synthetic_mixture

    model = write_tiny_model(root / "model")
    synthetic_mixture(root / "mix", ScenesSettings(num=8, size=(160, 120)), {"sft": {"total": 96}}, seed=0)
    rows = []
    for variant in VARIANTS:
        command = [sys.executable, __file__, "--train-child", variant, str(model), str(root / "mix" / "data"),
                   str(root / f"run-{variant}"), str(steps)]
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        if result.returncode:
            raise RuntimeError(result.stderr[-3000:])
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append({"variant": variant, "samples_per_step": 8, **{k: round(v, 3) for k, v in figures.items()},
                     "load": _load()})
    return rows


def _base_checkpoint(base_steps: int, out: Path) -> tuple[Path, Path]:
    """(checkpoint, its mixture folder): a full SFT of the tiny model on a synthetic mixture of table-tops and rooms
    (a finished stage is reused when the run is started again)."""
    from sr_real.training.config import load_config
    from sr_real.training.quickstart import ScenesSettings, synthetic_mixture
    from sr_real.training.train import train

    if not (out / "original" / "data").is_dir():
        synthetic_mixture(out / "original", ScenesSettings(num=120, size=(160, 120)), FINETUNE_MIXTURE, seed=0)
    base = load_config(REPO / "training/configs/tiny-sft.yaml", {
        "output_dir": str(out / "base"), "model": {"path": str(out / "tiny-model")},
        "data": {"mixture": str(out / "original" / "data")}, "trainer": {"max_steps": base_steps}})
    if not (out / "base" / "final").is_dir():
        train(base)
    return out / "base" / "final", out / "original" / "data"


def _robot_data(scenes: int, out: Path) -> Path:
    """The robot mixture of a synthetic recording: room scenes only, another seed, measured 3D labels."""
    from sr_real_core.data.from_bag import BagImportConfig, import_bag
    from sr_real_core.data.labels import convert_labels
    from sr_real_core.data.replay import robot_mixture
    from support.robot_bag import IMPORT_ARGS, write_robot_bag

    if not (out / "robot-data").is_dir():
        rendered = _rendered(scenes, (160, 120), out / "robot-scenes", seed=7, room_fraction=1.0)
        import_bag(write_robot_bag(rendered, out / "robot-bag"), out / "robot-import",
                   BagImportConfig(*IMPORT_ARGS[1::2]))
        convert_labels(out / "robot-import", out / "robot-labels")
        robot_mixture(out / "robot-labels", out / "robot-data", eval_fraction=0.25, qa={"per_scene": 8},
                      sft={"total": None, "mix": FINETUNE_MIXTURE["sft"]["mix"]})
    return out / "robot-data"


def _validation_data(robot_data: Path, out: Path) -> Path:
    """A validation mixture carved from the robot's training scenes only (the held-out scenes stay unseen): the
    labels of those scenes, split again by scene (`VALIDATION_FRACTION` for validation) by the same pipeline."""
    from sr_real_core.data.files import write_jsonl
    from sr_real_core.data.labels import QA_FILE, SCENES_FILE, SFT_FILE
    from sr_real_core.data.replay import read_jsonl, rebase, robot_mixture

    if not (out / "validation-data").is_dir():
        train_scenes = set(json.loads((robot_data / "manifest.json").read_text())["scenes"]["train"])
        labels, carved = out / "robot-labels", out / "validation-labels"
        carved.mkdir(parents=True, exist_ok=True)
        for name in (SCENES_FILE, QA_FILE, SFT_FILE):
            write_jsonl(carved / name, [rebase(record, labels, carved) for record in read_jsonl(labels / name)
                                        if record["scene_id"] in train_scenes])
        # Another seed: the split is by a seeded hash of the scene id, so seed 0 would keep them all in train.
        robot_mixture(carved, out / "validation-data", eval_fraction=VALIDATION_FRACTION, seed=1, qa={"per_scene": 8},
                      sft={"total": None, "mix": FINETUNE_MIXTURE["sft"]["mix"]})
    return out / "validation-data"


VALIDATION_FRACTION = 0.3  # of the robot's training scenes, for --validation
FINETUNE_MIXTURE = {"eval_fraction": 0.15, "qa": {"per_scene": 8}, "sft": {"total": None, "mix": {
    "lor_cot": 0.3, "dtr_cot": 0.3, "grounding_3d": 0.15, "grounding_2d": 0.0, "region_qa": 0.15}}}


def finetune(args: argparse.Namespace, out: Path) -> dict:
    """The measured continued-training run (see the module docstring)."""
    from sr_real.training.continual import checked_checkpoint, compare_checkpoints, continue_config, summary
    from sr_real.training.quickstart import held_out_questions
    from sr_real.training.train import train
    from sr_real_core.data.replay import ORIGINAL_EVAL

    began = time.perf_counter()
    if args.base:
        base_model, original = checked_checkpoint(args.base), Path(args.original)
    else:
        base_model, original = _base_checkpoint(args.base_steps, out)
    robot_data = _robot_data(args.robot_scenes, out)
    if args.validation:
        robot_data = _validation_data(robot_data, out)
    # The recipe's LoRA (language model only, Adafactor) at batch 8 without checkpointing: the same update at a
    # fraction of the CPU time (the memory savings are measured by bench_train, not needed here).
    fast = {"gradient_checkpointing": False, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1}
    trainer = {"max_steps": args.robot_steps, **fast, **({"learning_rate": args.lr} if args.lr else {})}
    config = continue_config(REPO / "training/configs/tiny-robot-lora.yaml",
                             {"output_dir": str(out / "robot-sft"), "data": {"mixture": str(robot_data)},
                              "trainer": trainer},
                             init_from=str(base_model), replay=str(original), replay_share=args.replay_share)
    tuned = train(config)
    trained = time.perf_counter()
    replayed = out / "robot-sft" / "data-replay"
    labelled = replayed / "labelled_eval.jsonl"  # empty when no held-out scene had a confirmed query
    heldout = {"robot": held_out_questions(replayed, args.questions, 0),
               **({"robot_labelled": labelled} if labelled.read_text().strip() else {})}
    loss_sets = {"robot": replayed / "sft_eval.jsonl"}
    if not args.validation:  # the original held-out set is a test set: not used to choose the recipe
        heldout["original"] = held_out_questions(replayed, args.questions, 0, source=ORIGINAL_EVAL,
                                                 target="original_heldout_eval")
        loss_sets["original"] = original / "sft_eval.jsonl"
    result = compare_checkpoints(base_model, tuned, heldout, out / "compare", path="auto",
                                 max_new_tokens=args.max_new_tokens, loss_sets=loss_sets,
                                 loss_records=args.loss_records)
    result["run"] = {"base": str(base_model), "original": str(original), "robot_steps": args.robot_steps,
                     "learning_rate": config.trainer["learning_rate"], "replay_share": args.replay_share,
                     "validation": args.validation,
                     "max_new_tokens": args.max_new_tokens,
                     "robot_scenes": args.robot_scenes, "train_minutes": round((trained - began) / 60, 1),
                     "minutes": round((time.perf_counter() - began) / 60, 1), "load": _load()}
    (out / "compare" / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result))
    print(json.dumps(result["run"]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--sections", default="import,train", help="import, train or both (default)")
    parser.add_argument("--finetune", action="store_true")
    parser.add_argument("--base", help="--finetune from this trained checkpoint (with --original) instead of a base "
                                       "trained here")
    parser.add_argument("--original", help="the mixture folder --base was trained on (replay and original held-out)")
    parser.add_argument("--base-steps", type=int, default=200, help="SFT steps of the base trained here")
    parser.add_argument("--robot-scenes", type=int, default=40, help="scenes of the synthetic robot recording")
    parser.add_argument("--robot-steps", type=int, default=40)
    parser.add_argument("--lr", type=float, help="the fine-tune's learning rate (default: the recipe's)")
    parser.add_argument("--replay-share", type=float, default=0.3,
                        help="share of the fine-tune's records replayed from --original (default 0.3)")
    parser.add_argument("--validation", action="store_true",
                        help="choose the recipe: train on part of the robot's training scenes and evaluate on the "
                             "rest (a validation split); the held-out scenes and the original set are not used")
    parser.add_argument("--questions", type=int, default=48, help="held-out questions per set (--finetune)")
    parser.add_argument("--loss-records", type=int, default=200, help="held-out SFT records per set (answer loss)")
    parser.add_argument("--max-new-tokens", type=int, default=384,
                        help="--finetune's evaluation (384, the quickstart's: fewer truncate DTR completions)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-robot-finetune", help="--finetune's folder")
    parser.add_argument("--train-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_child:
        variant, model, mixture, out, steps = args.train_child
        _train_child(variant, model, mixture, out, int(steps))
        return
    if args.finetune:
        if bool(args.base) != bool(args.original):
            parser.error("--base and --original go together")
        finetune(args, args.out)
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sections = args.sections.split(",")
        for row in bench_import(args.frames, root) if "import" in sections else []:
            print("import", json.dumps(row), flush=True)
        for row in bench_train(args.steps, root) if "train" in sections else []:
            print("train ", json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
