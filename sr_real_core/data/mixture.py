"""Training mixtures: SFT and RL records built from scenes files, split by scene, in the formats TRL reads.

``sr-real data build --config FILE`` reads a YAML ``MixtureConfig`` (example:
``training/configs/data-tiny.yaml``; relative paths are relative to the working directory), generates the
questions of every scene (``qa``), and writes to ``out_dir``:

- ``sft_{train,eval}.jsonl``: TRL's conversational language-modelling format with images,
  ``{id, kind, category, scene_id, messages: [{role, content}], images: [path]}`` plus ``regions`` (one per
  ``<region>`` token of the prompt, on the first image) and the scene's ``depth, depth_unit, intrinsics,
  up``, which SR-REAL's processor takes besides the images. Kinds (``SFT_KINDS``):
  ``lor_cot`` and ``dtr_cot`` (the prompt of ``grammar.build_prompt`` for the path, the chain of thought),
  ``grounding_3d`` (marked regions -> their 3D centres, a DTR completion), ``grounding_2d`` (an object's
  name -> its pixel box, a LOR completion) and ``region_qa`` (a region question answered plainly). The
  train file mixes the kinds in the configured proportions; the eval file keeps every eval candidate.
- ``rl_{train,eval}.jsonl``: GRPO prompts, ``{id, question, prompt: [{role: user, content}], images, image,
  path, solution, answer_type, gt_centers, category, family, answer, scene_id, source_image, regions, depth,
  depth_unit, intrinsics, up}``: the columns ``rewards`` reads plus what a trainer needs to give the model
  regions and depth (``image`` is ``images[0]``, the image shown, marked when there are regions;
  ``source_image`` the unmarked one). ``solution`` is a string (numbers as text), so the column has one type.
- ``marked/``: images with region marks; ``manifest.json``: the config, the split's scene ids, and counts
  per kind, category and split.

Splits are by scene, so no scene contributes to both: a scene is held out when a number drawn from
``sha256(seed:scene_id)`` falls under ``eval_fraction``. The draw depends on nothing else, so adding scenes
never moves existing ones across splits. Tiny sets keep at least one scene on each side when the fraction
is positive.

Image paths are relative to ``out_dir``; ``load_mixture`` resolves them and decodes images for TRL.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from sr_real_core import marks
from sr_real_core.data.cot import image_position
from sr_real_core.data.facts import to_centimetres, unambiguous_names
from sr_real_core.data.files import write_image, write_jsonl
from sr_real_core.data.qa import QAConfig, relative_path, scene_questions, scene_references, scene_rng
from sr_real_core.data.units import LengthStyle, say_length
from sr_real_core.errors import check_output_dir, staged_output
from sr_real_core.grammar import Detection, answer_instruction, build_prompt, render_dtr, render_lor
from sr_real_core.query import DEFAULT_PATH_MODE, PATH_MODES, PATHS, Region, reference_path
from sr_real_core.scenes import Scene, load_scenes

SFT_KINDS = ("lor_cot", "dtr_cot", "grounding_3d", "grounding_2d", "region_qa")
SPLITS = ("train", "eval")
MAX_GROUNDING_OBJECTS = 3
REFERENCE_KEYS = ("depth", "depth_unit", "intrinsics", "up")  # what a trainer needs to give the model depth


class ConfigError(ValueError):
    """An invalid mixture config; the message names the file and the field."""


@dataclass
class SFTConfig:
    total: int | None = None  # train records; None: every candidate of each kind with a positive weight
    mix: dict[str, float] = field(
        default_factory=lambda: {"lor_cot": 0.3, "dtr_cot": 0.3, "grounding_3d": 0.15, "grounding_2d": 0.1,
                                 "region_qa": 0.15}
    )
    # Times each scene's objects are grouped into 3D-grounding records, each pass a new random grouping and
    # marking: more grounding records from the same rendered scenes.
    grounding_passes: int = 1

    def __post_init__(self) -> None:
        _check_total(self.total, "sft.total")
        if isinstance(self.grounding_passes, bool) or not isinstance(self.grounding_passes, int) \
                or self.grounding_passes < 1:
            raise ConfigError(f"sft.grounding_passes: expected a positive integer, got {self.grounding_passes!r}")
        if not isinstance(self.mix, dict):
            raise ConfigError(f"sft.mix: expected a mapping of kind -> weight, got {self.mix!r}")
        for kind, weight in self.mix.items():
            if kind not in SFT_KINDS:
                raise ConfigError(f"sft.mix.{kind}: unknown kind (allowed: {', '.join(SFT_KINDS)})")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise ConfigError(f"sft.mix.{kind}: expected a non-negative number, got {weight!r}")
        if not any(self.mix.values()):
            raise ConfigError("sft.mix: at least one kind needs a positive weight")


@dataclass
class RLConfig:
    total: int | None = None  # train prompts; None: every train question
    path: str = DEFAULT_PATH_MODE  # "reference": DTR when the question has regions, else LOR; or lor, dtr, auto

    def __post_init__(self) -> None:
        _check_total(self.total, "rl.total")
        if self.path not in PATH_MODES:
            raise ConfigError(f"rl.path: expected one of {', '.join(PATH_MODES)}, got {self.path!r}")


@dataclass
class MixtureConfig:
    scenes: list[str]
    out_dir: str
    seed: int = 0
    eval_fraction: float = 0.2
    qa: QAConfig = field(default_factory=QAConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    rl: RLConfig = field(default_factory=RLConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.scenes, list) or not self.scenes or not all(isinstance(s, str) for s in self.scenes):
            raise ConfigError(f"scenes: expected a non-empty list of scenes files, got {self.scenes!r}")
        if not isinstance(self.out_dir, str) or not self.out_dir:
            raise ConfigError(f"out_dir: expected a directory path, got {self.out_dir!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed: expected an integer, got {self.seed!r}")
        if isinstance(self.eval_fraction, bool) or not isinstance(self.eval_fraction, (int, float)) \
                or not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigError(f"eval_fraction: expected a number in [0, 1), got {self.eval_fraction!r}")

    @classmethod
    def from_dict(cls, data: Any) -> MixtureConfig:
        """From parsed YAML; the QA seed defaults to the mixture's seed."""
        data = _mapping(data, "config", {f.name for f in fields(cls)})
        for name in ("scenes", "out_dir"):
            if name not in data:
                raise ConfigError(f"{name}: missing (required)")
        qa = _mapping(data.get("qa", {}), "qa", {f.name for f in fields(QAConfig)})
        sections = {
            "qa": _section(QAConfig, {"seed": data.get("seed", 0)} | qa, "qa"),
            "sft": _section(SFTConfig, _mapping(data.get("sft", {}), "sft", {f.name for f in fields(SFTConfig)}), "sft"),
            "rl": _section(RLConfig, _mapping(data.get("rl", {}), "rl", {f.name for f in fields(RLConfig)}), "rl"),
        }
        return cls(**{key: value for key, value in data.items() if key not in sections}, **sections)

    @classmethod
    def from_yaml(cls, path: str | Path) -> MixtureConfig:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            return cls.from_dict(data)
        except (ConfigError, yaml.YAMLError) as error:
            raise ConfigError(f"{path}: {error}") from None


def _check_total(total: Any, name: str) -> None:
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise ConfigError(f"{name}: expected a non-negative integer or null, got {total!r}")


def _mapping(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    for key in value:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    return value


def _section(cls, values: dict[str, Any], where: str):
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None


# --------------------------------------------------------------------------------------------- splitting


def _scene_draw(seed: int, scene_id: str) -> float:
    """A uniform number in [0, 1) fixed by the seed and the scene id alone."""
    digest = hashlib.sha256(f"{seed}:{scene_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_scenes(scene_ids: list[str], eval_fraction: float, seed: int) -> dict[str, set[str]]:
    """Scene ids per split (see the module docstring)."""
    draws = {sid: _scene_draw(seed, sid) for sid in scene_ids}
    held_out = {sid for sid, draw in draws.items() if draw < eval_fraction}
    if eval_fraction > 0 and len(draws) >= 2:
        if not held_out:  # a tiny set: hold out the scene with the lowest draw
            held_out = {min(draws, key=draws.get)}
        elif len(held_out) == len(draws):
            held_out.remove(max(draws, key=draws.get))
    return {"train": set(draws) - held_out, "eval": held_out}


# ------------------------------------------------------------------------------------------- SFT records


def conversation(record_id: str, kind: str, category: str, scene_id: str, prompt: str, completion: str,
                 image: str, visuals: dict[str, Any]) -> dict[str, Any]:
    """An SFT record; ``visuals`` are its ``regions`` (one per <region> token) and scene references."""
    return {
        "id": f"{record_id}-{kind}",
        "kind": kind,
        "category": category,
        "scene_id": scene_id,
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}],
        "images": [image],
    } | visuals


def _shown_image(question: dict[str, Any]) -> str:
    return question.get("marked_image") or question["image"]


def _question_visuals(question: dict[str, Any]) -> dict[str, Any]:
    return {"regions": question["regions"]} | {key: question[key] for key in REFERENCE_KEYS if key in question}


def question_sft_records(question: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The SFT candidates one question gives: both chains of thought, and a plain answer when it has regions."""
    common = (question["category"], question["scene_id"])
    image, visuals = _shown_image(question), _question_visuals(question)
    records = {
        f"{path}_cot": conversation(question["id"], f"{path}_cot", *common,
                                    build_prompt(question["question"], path, question["answer_type"]),
                                    question["completions"][path], image, visuals)
        for path in PATHS
    }
    if question["regions"]:
        prompt = f"{question['question']}\n{answer_instruction(question['answer_type'])}"
        records["region_qa"] = conversation(question["id"], "region_qa", *common, prompt, question["answer"],
                                            image, visuals)
    return records


class _Grounding:
    """Grounding samples of one scene: marked regions -> 3D centres, object names -> 2D boxes."""

    def __init__(self, scene: Scene, out_dir: Path, seed: int):
        self.scene, self.out_dir = scene, out_dir
        self.rng = scene_rng(seed, scene.scene_id + "/grounding")
        self.image_path = relative_path(scene, scene.image, out_dir)
        self.references = scene_references(scene, out_dir)

    def _see(self, index: int) -> str:
        obj = self.scene.objects[index]
        distance = say_length(float(np.linalg.norm(obj.center_3d)), LengthStyle()).text
        return f"{image_position(self.scene.intrinsics, obj.center_3d)}, about {distance} from the camera"

    def records_3d(self, passes: int = 1) -> list[dict[str, Any]]:
        """Objects with a 3D centre and a 2D box, in random groups of 1-3 marked regions; each pass groups
        every object once."""
        scene = self.scene
        indices = [i for i, o in enumerate(scene.objects) if o.center_3d is not None and o.bbox_2d is not None]
        records, image = [], None
        for group in self._groups(indices, passes):
            regions = [{"ref": marks.region_ref(k, "bbox"), "kind": "bbox", "object_index": i,
                        "bbox_2d": [int(round(v)) for v in scene.objects[i].bbox_2d]} for k, i in enumerate(group)]
            names = [scene.objects[i].name for i in group]
            detections = [Detection(name, r["ref"], to_centimetres(scene.objects[i].center_3d))
                          for name, r, i in zip(names, regions, group)]
            mentions = [marks.mention(r["ref"]) for r in regions]
            listed = mentions[0] if len(mentions) == 1 else ", ".join(mentions[:-1]) + " and " + mentions[-1]
            question = f"Find the 3D centre of {listed} in the camera frame."
            think = " ".join(f"The {r['ref']} marks the {name}, {self._see(i)}." for r, name, i in zip(regions, names, group))
            answer = "; ".join(f"{d.name} ({d.ref}) at ({', '.join(f'{c:.2f}' for c in d.center)})" for d in detections)
            record_id = f"{scene.scene_id}-g{len(records):02d}"
            if image is None:
                image = scene.load_image()
            marked = f"marked/{record_id}.png"
            write_image(self.out_dir / marked, marks.draw_regions(image, [Region.from_annotation(r) for r in regions]))
            records.append(conversation(record_id, "grounding_3d", "grounding_3d", scene.scene_id,
                                        build_prompt(question, "dtr"), render_dtr(detections, think, answer), marked,
                                        {"regions": regions} | self.references))
        return records

    def _groups(self, indices: list[int], passes: int) -> list[list[int]]:
        groups = []
        for _ in range(passes):
            order = [indices[i] for i in self.rng.permutation(len(indices))]
            while order:
                size = int(self.rng.integers(1, MAX_GROUNDING_OBJECTS + 1))
                groups.append(order[:size])
                order = order[size:]
        return groups

    def records_2d(self) -> list[dict[str, Any]]:
        """One per object with a 2D box and a name that picks it out (``facts.unambiguous_names``)."""
        scene = self.scene
        nameable = unambiguous_names([o.name for o in scene.objects])
        records = []
        for index, obj in enumerate(scene.objects):
            if obj.bbox_2d is None or obj.name not in nameable:
                continue
            x1, y1, x2, y2 = (int(round(v)) for v in obj.bbox_2d)
            where = f"{self._see(index)}" if obj.center_3d is not None else "in the image"
            think = (f"The {obj.name} is {where}. Its left edge is at x = {x1} and its right edge at x = {x2}; "
                     f"its top is at y = {y1} and its bottom at y = {y2}. So the answer is [{x1}, {y1}, {x2}, {y2}].")
            question = f"Where is the {obj.name} in the image? Give its bounding box [x1, y1, x2, y2] in pixels."
            records.append(conversation(f"{scene.scene_id}-b{index:02d}", "grounding_2d", "grounding_2d",
                                        scene.scene_id, build_prompt(question, "lor"),
                                        render_lor(think, f"[{x1}, {y1}, {x2}, {y2}]"), self.image_path,
                                        {"regions": []} | self.references))
        return records


# -------------------------------------------------------------------------------------------- RL records


def rl_record(question: dict[str, Any], path_rule: str) -> dict[str, Any]:
    """A GRPO prompt with the truth columns of ``rewards`` and the scene references a trainer needs."""
    path = reference_path(bool(question["regions"])) if path_rule == "reference" else path_rule
    shown = _shown_image(question)
    record = {
        "id": question["id"],
        "question": question["question"],
        "prompt": [{"role": "user", "content": build_prompt(question["question"], path, question["answer_type"])}],
        "images": [shown],
        "image": shown,
        "path": path,
        "solution": str(question["solution"]),
        "answer_type": question["answer_type"],
        "gt_centers": question["gt_centers"],
        "category": question["category"],
        "family": question["family"],
        "answer": question["answer"],
        "scene_id": question["scene_id"],
        "source_image": question["image"],
    }
    return record | _question_visuals(question)


# ---------------------------------------------------------------------------------------------- building


def _mix(candidates: dict[str, list[dict[str, Any]]], config: SFTConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Train SFT records in the configured proportions (each kind capped at its candidates), shuffled."""
    weights = {kind: float(config.mix.get(kind, 0.0)) for kind in SFT_KINDS}
    total_weight = sum(weights.values())
    chosen: list[dict[str, Any]] = []
    for kind in SFT_KINDS:
        pool = candidates[kind]
        if not weights[kind]:
            continue
        wanted = len(pool) if config.total is None else round(config.total * weights[kind] / total_weight)
        chosen.extend(pool[i] for i in rng.permutation(len(pool))[: min(wanted, len(pool))])
    return [chosen[i] for i in rng.permutation(len(chosen))]


def build_mixture(config: MixtureConfig, progress: bool = True) -> Path:
    """Write the mixture of ``config`` (see the module docstring); returns the manifest's path. The files
    appear in ``config.out_dir`` only once all are written."""
    with staged_output(check_output_dir(config.out_dir, "out_dir"), folder=True) as out:
        written = _build_mixture(config, out, progress)
    return Path(config.out_dir) / written.name


def _build_mixture(config: MixtureConfig, out: Path, progress: bool) -> Path:
    (out / "marked").mkdir(parents=True, exist_ok=True)
    scenes: list[Scene] = []
    for path in config.scenes:
        if not Path(path).is_file():
            raise ConfigError(f"scenes: {path} not found in {Path.cwd()} (relative paths are read from the current "
                              f"folder; render the scenes first: sr-real data synth --num-scenes N "
                              f"--out {Path(path).parent})")
        scenes.extend(load_scenes(path))
    duplicates = [sid for sid, n in Counter(s.scene_id for s in scenes).items() if n > 1]
    if duplicates:
        raise ValueError(f"scene ids must be unique across the scenes files; repeated: {duplicates[:5]}")
    splits = split_scenes([s.scene_id for s in scenes], config.eval_fraction, config.seed)
    sft = {split: {kind: [] for kind in SFT_KINDS} for split in SPLITS}
    rl: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    for scene in tqdm(scenes, desc="build", unit="scene", disable=not progress):
        split = "eval" if scene.scene_id in splits["eval"] else "train"
        for question in scene_questions(scene, config.qa, out):
            for kind, record in question_sft_records(question).items():
                sft[split][kind].append(record)
            rl[split].append(rl_record(question, config.rl.path))
        grounding = _Grounding(scene, out, config.seed)
        sft[split]["grounding_3d"].extend(grounding.records_3d(config.sft.grounding_passes))
        sft[split]["grounding_2d"].extend(grounding.records_2d())
    rng = np.random.default_rng(config.seed)
    outputs = {
        "sft_train": _mix(sft["train"], config.sft, rng),
        "sft_eval": [r for kind in SFT_KINDS if config.sft.mix.get(kind) for r in sft["eval"][kind]],
        "rl_train": [rl["train"][i] for i in rng.permutation(len(rl["train"]))][: config.rl.total],
        "rl_eval": rl["eval"],
    }
    for name, records in outputs.items():
        write_jsonl(out / f"{name}.jsonl", records)
    manifest = {
        "config": asdict(config),
        "scenes": {split: sorted(ids) for split, ids in splits.items()},
        "counts": {name: len(records) for name, records in outputs.items()},
        "per_kind": {name: dict(sorted(Counter(r["kind"] for r in outputs[name]).items())) for name in ("sft_train", "sft_eval")},
        "per_category": {name: dict(sorted(Counter(r["category"] for r in records).items())) for name, records in outputs.items()},
        "rl_paths": {name: dict(sorted(Counter(r["path"] for r in outputs[name]).items())) for name in ("rl_train", "rl_eval")},
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def load_mixture(out_dir: str | Path, name: str):
    """One mixture file (e.g. "sft_train", "rl_eval") as a ``datasets.Dataset`` ready for TRL: paths made
    absolute and ``images`` decoded to PIL images."""
    import datasets

    root = Path(out_dir).resolve()
    dataset = datasets.load_dataset("json", data_files=str(root / f"{name}.jsonl"), split="train")

    def resolve(record: dict[str, Any]) -> dict[str, Any]:
        resolved = {"images": [os.path.normpath(root / p) for p in record["images"]]}
        for key in ("image", "source_image", "depth"):
            if record.get(key):
                resolved[key] = os.path.normpath(root / record[key])
        return resolved

    dataset = dataset.map(resolve)
    return dataset.cast_column("images", datasets.List(datasets.Image()))
