"""Spatial questions with machine-readable truth and chains of thought, from any scenes file with 3D boxes.

Works on synthetic scenes and on a user's own RGB-D data alike: it reads only the scene contract
(``scenes.load_scenes``); an object needs ``center_3d`` and ``size_3d`` to be asked about, and a
``bbox_2d`` to be marked as a region.

Per scene (generator seeded with ``(seed, crc32(scene_id))``, so a scene's questions do not depend on the
other scenes), up to ``per_scene`` facts are drawn round-robin over the question families (``facts``),
each about a fresh object pair. Each question then refers to its objects either

- as marked regions (``region_fraction`` of the questions): "the red bbox <region>", with the marks drawn
  on ``marked/<id>.png`` (a ``point_fraction`` of them as points), or
- by name: "the duck" -- only when the name picks out one object (``facts.unambiguous_names``).

Record fields: ``id, scene_id, image, question, answer, category, family, answer_type, solution,
objects, object_names, regions ({ref, kind, object_index, bbox_2d}), gt_centers ({ref, center}),
completions {lor, dtr}``, plus ``exact_m`` (numeric: the
value before rounding to human units), ``options`` (choice), ``marked_image`` (when regions are drawn) and
the scene's ``depth, depth_unit, intrinsics, up`` so a trainer can give the model depth. Paths are relative
to the QA file. ``solution`` is what the answer text says (metres for numeric), so the canonical
completions score accuracy 1.0; ``exact_m`` differs from it by the human rounding only.
"""

from __future__ import annotations

import itertools
import json
import os
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sr_real_core import marks
from sr_real_core.data import cot
from sr_real_core.data.facts import FAMILIES, Fact, Thing, scene_things, unambiguous_names
from sr_real_core.data.files import write_image, write_jsonl
from sr_real_core.data.units import pick_style, say_length
from sr_real_core.geometry import DEFAULT_UP
from sr_real_core.grammar import Detection
from sr_real_core.query import Region
from sr_real_core.scenes import Scene, load_scenes

QA_FILE = "qa.jsonl"

_PREDICATE_TEMPLATES = {
    "left": ("Is {a} to the left of {b}?", "Is {a} on the left side of {b}?", "Does {a} appear to the left of {b}?",
             "Can you confirm if {a} is positioned to the left of {b}?"),
    "right": ("Is {a} to the right of {b}?", "Is {a} on the right side of {b}?",
              "Does {a} appear to the right of {b}?", "Can you confirm if {a} is positioned to the right of {b}?"),
    "above": ("Is {a} above {b}?", "Is {a} positioned higher than {b}?", "Does {a} sit above {b}?"),
    "below": ("Is {a} below {b}?", "Is {a} positioned lower than {b}?", "Is {a} located beneath {b}?"),
    "behind": ("Is {a} behind {b}?", "Is {a} farther from the camera than {b}?", "Is {a} further back than {b}?"),
    "front": ("Is {a} in front of {b}?", "Is {a} closer to the camera than {b}?", "Is {a} nearer to the viewer than {b}?"),
    "wide": ("Is {a} wider than {b}?", "Does {a} have a greater width than {b}?"),
    "thin": ("Is {a} thinner than {b}?", "Is {a} narrower than {b}?"),
    "tall": ("Is {a} taller than {b}?", "Does {a} stand taller than {b}?"),
    "short": ("Is {a} shorter than {b}?", "Is {a} less tall than {b}?"),
    "big": ("Is {a} bigger than {b}?", "Is {a} larger than {b}?", "Does {a} take up more space than {b}?"),
    "small": ("Is {a} smaller than {b}?", "Does {a} take up less space than {b}?"),
}
_CHOICE_STEMS = {
    "left": ("Which is more to the left", "Which one is further to the left"),
    "right": ("Which is more to the right", "Which one is further to the right"),
    "above": ("Which is higher up", "Which one is positioned higher"),
    "below": ("Which is lower down", "Which one is positioned lower"),
    "behind": ("Which is farther from the camera", "Which one is further back"),
    "front": ("Which is closer to the camera", "Which one is nearer to the viewer"),
    "wide": ("Which is wider", "Which one has the greater width"),
    "thin": ("Which is thinner", "Which one is narrower"),
    "tall": ("Which is taller", "Which one stands taller"),
    "short": ("Which is shorter", "Which one is less tall"),
    "big": ("Which is bigger", "Which one is larger"),
    "small": ("Which is smaller", "Which one takes up less space"),
}
_CHOICE_LAYOUTS = ("{stem}, (A) {a} or (B) {b}?", "{stem}?\nA. {a}\nB. {b}")
_METRIC_TEMPLATES = {
    "distance": ("What is the distance between {a} and {b}?", "How far apart are {a} and {b}?",
                 "How far is {a} from {b}?", "Measure the distance between {a} and {b}."),
    "horizontal_distance": ("What is the horizontal distance between {a} and {b}?",
                            "How far apart are {a} and {b} horizontally?", "Ignoring height, how far is {a} from {b}?"),
    "vertical_distance": ("What is the vertical distance between {a} and {b}?",
                          "How far apart are {a} and {b} vertically?",
                          "What is the height difference between {a} and {b}?"),
    "width": ("How wide is {a}?", "What is the width of {a}?", "Measure the width of {a}.",
              "How wide is {a} from side to side?"),
    "height": ("How tall is {a}?", "What is the height of {a}?", "How high is {a}?"),
    "direction": ("If you are at {a}, where will you find {b}?",
                  "Standing at {a} and facing the same way as the camera, in which clock direction is {b}?",
                  "From the position of {a}, facing away from the camera, at what o'clock is {b}?"),
}


@dataclass
class QAConfig:
    """What `sr-real data qa` generates."""

    seed: int = 0
    per_scene: int = 10
    region_fraction: float = 0.6  # share of questions that mark their objects as regions
    point_fraction: float = 0.25  # share of region marks drawn as points rather than boxes
    families: tuple[str, ...] = tuple(FAMILIES)
    write_marked: bool = True

    def __post_init__(self) -> None:
        for name in ("seed", "per_scene"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.per_scene < 1:
            raise ValueError(f"per_scene must be >= 1, got {self.per_scene}")
        for name in ("region_fraction", "point_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        self.families = tuple(self.families)
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown or not self.families:
            raise ValueError(f"families must be a non-empty subset of {list(FAMILIES)}, got unknown {unknown}")


def scene_rng(seed: int, scene_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(scene_id.encode("utf-8"))])


def draw_facts(things: Sequence[Thing], config: QAConfig, rng: np.random.Generator) -> list[Fact]:
    """Up to ``per_scene`` facts, round-robin over the families, each object tuple at most once per family."""
    pools: dict[str, list[tuple[Thing, ...]]] = {}
    for family in config.families:
        combos = list(itertools.combinations(things, FAMILIES[family][0]))
        pools[family] = [combos[i] for i in rng.permutation(len(combos))]
    facts: list[Fact] = []
    while len(facts) < config.per_scene and any(pools.values()):
        for family in (config.families[i] for i in rng.permutation(len(config.families))):
            while pools[family] and len(facts) < config.per_scene:
                fact = FAMILIES[family][1](family, pools[family].pop(), rng)
                if fact is not None:
                    facts.append(fact)
                    break
    return facts


class _SceneQuestions:
    """Turns facts about one scene into question records."""

    def __init__(self, scene: Scene, config: QAConfig, out_dir: Path, rng: np.random.Generator):
        self.scene, self.config, self.out_dir, self.rng = scene, config, out_dir, rng
        self.nameable = unambiguous_names([obj.name for obj in scene.objects])
        self.image: np.ndarray | None = None  # loaded on first use

    def _path(self, relative: str) -> str:
        return relative_path(self.scene, relative, self.out_dir)

    def _regions(self, subjects: Sequence[Thing]) -> list[dict[str, Any]] | None:
        """Marks for the subjects, or None when they are to be named (or cannot be marked)."""
        markable = all(self.scene.objects[t.index].bbox_2d is not None for t in subjects)
        nameable = all(t.name in self.nameable for t in subjects)
        if not markable or (nameable and self.rng.random() >= self.config.region_fraction):
            return None if nameable else []
        regions = []
        for order, thing in enumerate(subjects):
            obj = self.scene.objects[thing.index]
            kind = "point" if self.rng.random() < self.config.point_fraction else "bbox"
            box = [int(round(v)) for v in obj.bbox_2d]
            if kind == "point":
                mask = self.scene.load_mask(thing.index) if obj.mask else None
                box = marks.point_box(mask, obj.bbox_2d, self.scene.intrinsics.width, self.scene.intrinsics.height)
            regions.append({"ref": marks.region_ref(order, kind), "kind": kind, "object_index": thing.index,
                            "bbox_2d": box})
        return regions

    def _pick(self, options: Sequence[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def _question_text(self, fact: Fact, mentions: Sequence[str]) -> str:
        fields = dict(zip("ab", mentions))
        if fact.answer_type == "yesno":
            return self._pick(_PREDICATE_TEMPLATES[fact.word]).format(**fields)
        if fact.answer_type == "choice":
            return self._pick(_CHOICE_LAYOUTS).format(stem=self._pick(_CHOICE_STEMS[fact.word]), **fields)
        return self._pick(_METRIC_TEMPLATES[fact.family]).format(**fields)

    def record(self, fact: Fact, number: int) -> dict[str, Any] | None:
        regions = self._regions(fact.subjects)
        if regions == []:
            return None  # neither markable nor unambiguously nameable
        refs = [r["ref"] for r in regions] if regions else [t.name for t in fact.subjects]
        mentions = [marks.mention(ref) for ref in refs] if regions else [f"the {t.name}" for t in fact.subjects]
        labels = [f"the {t.name} {'at' if ref.endswith('point') else 'in'} the {ref}" for t, ref in
                  zip(fact.subjects, refs)] if regions else mentions
        subjects = tuple(
            cot.Subject(t, label, Detection(t.name, ref if regions else None, t.camera_center),
                        cot.image_position(self.scene.intrinsics, t.camera_center))
            for t, label, ref in zip(fact.subjects, labels, refs)
        )
        if fact.answer_type == "numeric":
            style = pick_style(fact.truth, self.rng)
            length = say_length(fact.truth, style)
            answer, solution = length.text, length.metres
        else:
            style = pick_style(float(np.linalg.norm(fact.subjects[0].camera_center)), self.rng)
            answer = f"{fact.truth} o'clock" if fact.answer_type == "direction" else str(fact.truth)
            solution = fact.truth
        question = cot.Question(fact, subjects, answer, style, tuple(self.scene.up or DEFAULT_UP))
        scene = self.scene
        record: dict[str, Any] = {
            "id": f"{scene.scene_id}-{number:03d}",
            "scene_id": scene.scene_id,
            "image": self._path(scene.image),
            "question": self._question_text(fact, mentions),
            "answer": answer,
            "category": fact.category,
            "family": fact.family,
            "answer_type": fact.answer_type,
            "solution": solution,
            "objects": [t.index for t in fact.subjects],
            "object_names": [t.name for t in fact.subjects],
            "regions": regions or [],
            "gt_centers": [{"ref": ref, "center": list(t.camera_center)} for t, ref in zip(fact.subjects, refs)],
            "completions": {"lor": cot.lor_completion(question, self.rng), "dtr": cot.dtr_completion(question, self.rng)},
        }
        if fact.answer_type == "numeric":
            record["exact_m"] = round(float(fact.truth), 6)
        if fact.answer_type == "choice":
            record["options"] = dict(zip("AB", mentions))
        if regions and self.config.write_marked:
            record["marked_image"] = self._write_marked(record["id"], regions)
        record |= scene_references(self.scene, self.out_dir)
        return record

    def _write_marked(self, question_id: str, regions: list[dict[str, Any]]) -> str:
        if self.image is None:
            self.image = self.scene.load_image()
        relative = f"marked/{question_id}.png"
        write_image(self.out_dir / relative, marks.draw_regions(self.image, [Region.from_annotation(r) for r in regions]))
        return relative



def relative_path(scene: Scene, path: str, out_dir: Path) -> str:
    """A path of the scene record, relative to ``out_dir`` (where the records that cite it are written)."""
    return Path(os.path.relpath(scene.resolve(path), out_dir)).as_posix()


def scene_references(scene: Scene, out_dir: Path) -> dict[str, Any]:
    """What a trainer needs to give the model the scene's depth: intrinsics, up, depth (+ unit)."""
    references: dict[str, Any] = {"intrinsics": scene.intrinsics.to_dict(), "up": list(scene.up or DEFAULT_UP)}
    if scene.depth is not None:
        references["depth"] = relative_path(scene, scene.depth, out_dir)
        if scene.depth_unit is not None:
            references["depth_unit"] = scene.depth_unit
    return references


def scene_questions(scene: Scene, config: QAConfig, out_dir: Path) -> list[dict[str, Any]]:
    """The question records of one scene (marked images written under ``out_dir/marked``)."""
    rng = scene_rng(config.seed, scene.scene_id)
    things = scene_things(scene)
    builder = _SceneQuestions(scene, config, out_dir, rng)
    records = []
    for fact in draw_facts(things, config, rng):
        record = builder.record(fact, len(records))
        if record is not None:
            records.append(record)
    return records


def generate_qa(scenes_path: str | Path, out_dir: str | Path, config: QAConfig, *, rewriter=None,
                progress: bool = True) -> Path:
    """Questions for every scene of a scenes file, written to ``out_dir/qa.jsonl`` (+ ``qa_stats.json``).
    ``rewriter`` (``rewrite.CoTRewriter``) optionally rewrites the chains of thought."""
    out = Path(out_dir)
    (out / "marked").mkdir(parents=True, exist_ok=True)
    scenes = load_scenes(scenes_path)
    records: list[dict[str, Any]] = []
    for scene in tqdm(scenes, desc="qa", unit="scene", disable=not progress):
        records.extend(scene_questions(scene, config, out))
    if rewriter is not None:
        records = [rewriter.rewrite_record(record) for record in tqdm(records, desc="rewrite", disable=not progress)]
    path = out / QA_FILE
    write_jsonl(path, records)
    stats = {
        "config": asdict(config),
        "scenes": len(scenes),
        "questions": len(records),
        "per_category": dict(sorted(Counter(r["category"] for r in records).items())),
        "per_family": dict(sorted(Counter(r["family"] for r in records).items())),
        "per_answer_type": dict(sorted(Counter(r["answer_type"] for r in records).items())),
        "with_regions": sum(bool(r["regions"]) for r in records),
    }
    if rewriter is not None:
        stats["rewrite"] = dict(rewriter.stats)
    (out / "qa_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return path


def load_qa(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
