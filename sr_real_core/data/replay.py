"""Training data for continued training on the robot's own data: a robot mixture, and the same with a replay share of
the original mixture so that old skills are kept.

- `robot_mixture(labels_dir, out, **mixture)`: `data.mixture.build_mixture` over the scenes of `sr-real data
  labels` (questions about the objects measured from depth), plus the operator-labelled questions: those of train
  scenes join `sft_train` (kind region_qa), those of held-out scenes go to `labelled_eval.jsonl` (QA records for
  the evaluation). The split is the mixture's own, by scene.
- `replay_mixture(robot, original, out, share, seed)`: a mixture folder whose train files are the robot's records
  plus a random draw of the original's, the original's making up `share` of the result (share 0.3 and 70 robot
  records: 30 replayed); eval files stay the robot's, the original's held-out RL questions are kept as
  `original_rl_eval.jsonl`. Paths are rebased so every record still points at its files; nothing is copied.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sr_real_core.data.files import write_jsonl
from sr_real_core.data.labels import QA_FILE, SCENES_FILE, SFT_FILE
from sr_real_core.data.mixture import MixtureConfig, build_mixture

PATH_KEYS = ("image", "source_image", "depth")  # plus the list `images`
TRAIN_FILES, EVAL_FILES = ("sft_train", "rl_train"), ("sft_eval", "rl_eval")
LABELLED_EVAL, ORIGINAL_EVAL = "labelled_eval", "original_rl_eval"


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def rebase(record: dict[str, Any], source: Path, target: Path) -> dict[str, Any]:
    """A record whose relative paths (relative to `source`) are made relative to `target`."""
    def moved(path: str) -> str:
        return path if os.path.isabs(path) else Path(os.path.relpath(source / path, target)).as_posix()

    changed = {key: moved(record[key]) for key in PATH_KEYS if isinstance(record.get(key), str) and record[key]}
    if isinstance(record.get("images"), list):
        changed["images"] = [moved(path) for path in record["images"]]
    return record | changed


def _rebased(records: Iterable[dict[str, Any]], source: Path, target: Path) -> list[dict[str, Any]]:
    return [rebase(record, source, target) for record in records]


def robot_mixture(labels_dir: str | Path, out: str | Path, **mixture: Any) -> Path:
    """Build the robot mixture (see the module docstring); `mixture` are MixtureConfig fields (qa, sft, rl,
    eval_fraction, seed). Returns the manifest's path."""
    labels_dir, out = Path(labels_dir).resolve(), Path(out).resolve()
    config = MixtureConfig.from_dict({**mixture, "scenes": [str(labels_dir / SCENES_FILE)], "out_dir": str(out)})
    manifest_path = build_mixture(config, progress=False)
    manifest = json.loads(manifest_path.read_text())
    held_out = set(manifest["scenes"]["eval"])
    labelled = _rebased(read_jsonl(labels_dir / SFT_FILE), labels_dir, out)
    questions = _rebased(read_jsonl(labels_dir / QA_FILE), labels_dir, out)
    train = [record for record in labelled if record["scene_id"] not in held_out]
    write_jsonl(out / "sft_train.jsonl", read_jsonl(out / "sft_train.jsonl") + train)
    write_jsonl(out / f"{LABELLED_EVAL}.jsonl", [q for q in questions if q["scene_id"] in held_out])
    manifest["labelled"] = {"sft_train": len(train), LABELLED_EVAL: sum(q["scene_id"] in held_out for q in questions)}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest_path


def replay_mixture(robot: str | Path, original: str | Path, out: str | Path, share: float, seed: int = 0) -> Path:
    """Write the replay mixture (see the module docstring) into `out`; returns `out`."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"replay share: expected a number in [0, 1), got {share}")
    robot, original, out = Path(robot).resolve(), Path(original).resolve(), Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    counts = {}
    for name in TRAIN_FILES:
        own = _rebased(read_jsonl(robot / f"{name}.jsonl"), robot, out)
        pool = read_jsonl(original / f"{name}.jsonl")
        wanted = min(round(len(own) * share / (1.0 - share)), len(pool))
        replayed = _rebased([pool[i] for i in rng.permutation(len(pool))[:wanted]], original, out)
        mixed = own + replayed
        write_jsonl(out / f"{name}.jsonl", [mixed[i] for i in rng.permutation(len(mixed))])
        counts[name] = {"robot": len(own), "replayed": len(replayed)}
    for name in (*EVAL_FILES, LABELLED_EVAL):
        if (robot / f"{name}.jsonl").is_file():
            write_jsonl(out / f"{name}.jsonl", _rebased(read_jsonl(robot / f"{name}.jsonl"), robot, out))
    write_jsonl(out / f"{ORIGINAL_EVAL}.jsonl", _rebased(read_jsonl(original / "rl_eval.jsonl"), original, out))
    manifest = {"robot": str(robot), "original": str(original), "share": share, "seed": seed, "counts": counts}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out
