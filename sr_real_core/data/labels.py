"""`sr-real data labels DATASET --out DIR`: a robot dataset folder (`data.robot`: from a bag or the node's
recorder) -> training inputs.

- `qa.jsonl`: every recorded query an operator confirmed (`ros.feedback.confirmed_answer`: their answer, or the
  model's when they said "correct"), as a QA record the evaluation reads (`evaluation.records`): `solution` from
  the confirmed answer, `answer_type` as asked or read from the answer, the query's regions, and the centres of
  its region objects measured from depth as `gt_centers` (flagged `centers_measured`).
- `sft_labelled.jsonl`: the same questions as SFT records in the mixture's format (`data.mixture`, kind
  `region_qa`: the question and its answer convention -> the confirmed answer).
- `scenes.jsonl`: every frame, labelled or not (paths rebased onto the dataset's files, nothing copied), for the
  data engine's question generator (`sr-real data qa` / `data build`), which asks about the objects with measured
  centres.

Feedback names its query by id, so only queries asked with an `id` can be labelled; the node keeps the id the
query came with and assigns none (`ros.requests`), so a query sent without one is counted as unlabelled (its
frame is still a scene record).
- `labels_report.json`: counts (queries, labelled, unlabelled and why, frames with 3D objects).

Written to a temporary folder and renamed when complete.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from sr_real_core.answers import canonical_solution
from sr_real_core.data import robot
from sr_real_core.data.files import write_jsonl
from sr_real_core.data.mixture import conversation
from sr_real_core.errors import staged_output
from sr_real_core.data.qa import relative_path, scene_references
from sr_real_core.grammar import answer_instruction
from sr_real_core.query import ANSWER_TYPES
from sr_real_core.ros.feedback import confirmed_answer
from sr_real_core.scenes import Scene, SceneFormatError, load_scenes, write_scenes

QA_FILE, SFT_FILE, SCENES_FILE, REPORT_FILE = "qa.jsonl", "sft_labelled.jsonl", "scenes.jsonl", "labels_report.json"
CATEGORY = "robot_feedback"
# An answer without a stated type is read as each type in turn; lengths first ("1.2 m" is not an hour).
_READ_ORDER = ("numeric", "yesno", "direction", "choice")


class LabelError(ValueError):
    """A dataset folder that cannot be converted; one line naming the file and the problem."""


def load_feedback(folder: Path) -> dict[str, dict[str, Any]]:
    """{query id: feedback} of the recorder's feedback.jsonl (the latest line per id wins); {} without one."""
    path = folder / robot.FEEDBACK_FILE
    feedback: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                record = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                raise LabelError(f"{path}:{number}: not JSON") from None
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                feedback[record["id"]] = record
    return feedback


def solution_of(answer: str, answer_type: str | None) -> tuple[str, Any] | None:
    """(answer type, canonical solution) of a confirmed answer: as the stated type, else the first type it reads
    as; None when it reads as none."""
    for kind in (answer_type,) if answer_type in ANSWER_TYPES else _READ_ORDER:
        value = canonical_solution(answer, kind)
        if value is not None:
            return kind, value
    return None


def labelled_record(scene: Scene, query: dict[str, Any], label: str, out: Path) -> dict[str, Any] | None:
    """The QA record of a confirmed query (see the module docstring); None when its answer cannot be read."""
    solved = solution_of(label, query.get("answer_type"))
    if solved is None:
        return None
    answer_type, solution = solved
    objects = {obj.extra.get("ref"): obj for obj in scene.objects if obj.extra.get("source") == "query"}
    regions = [{"ref": region["ref"], "bbox_2d": [round(v) for v in region["box"]]}
               for region in query.get("regions") or [] if region.get("ref")]
    centres = [{"ref": ref, "center": objects[ref].center_3d} for ref in (r["ref"] for r in regions)
               if ref in objects and objects[ref].center_3d is not None]
    return {"id": f"{scene.scene_id}-{query.get('id')}", "scene_id": scene.scene_id,
            "image": relative_path(scene, scene.image, out), "question": query["question"], "answer": label,
            "answer_type": answer_type, "solution": solution, "category": CATEGORY, "regions": regions,
            "gt_centers": centres, "centers_measured": True, "model_answer": query.get("answer"),
            **scene_references(scene, out)}


def sft_record(record: dict[str, Any]) -> dict[str, Any]:
    """The SFT record (mixture format, kind region_qa) of a labelled QA record."""
    prompt = f"{record['question']}\n{answer_instruction(record['answer_type'])}"
    visuals = {"regions": record["regions"]} | {key: record[key] for key in ("depth", "depth_unit", "intrinsics", "up")
                                                 if key in record}
    return conversation(record["id"], "region_qa", CATEGORY, record["scene_id"], prompt, record["answer"],
                        record["image"], visuals)


def convert_labels(dataset: str | Path, out: str | Path) -> dict[str, Any]:
    """Convert a robot dataset folder (see the module docstring); returns the report's counts."""
    dataset, out = Path(dataset), Path(out)
    try:
        scenes = load_scenes(dataset / robot.SCENES_FILE)
    except (OSError, SceneFormatError) as error:
        raise LabelError(f"{dataset}: not a robot dataset folder ({error})") from None
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LabelError(f"--out {out}: exists and is not empty; choose a new folder")
    recorded_feedback = load_feedback(dataset)
    counts: Counter = Counter(frames=len(scenes))
    records = []
    for scene in scenes:
        counts["frames_with_3d_objects"] += any(obj.center_3d is not None for obj in scene.objects)
        for query in scene.extra.get("queries") or []:
            counts["queries"] += 1
            feedback = robot.feedback_for(query, recorded_feedback) or query.get("feedback")
            label = confirmed_answer(feedback, query.get("answer"))
            if label is None:
                counts["unlabelled: " + _why_unlabelled(query, feedback)] += 1
                continue
            record = labelled_record(scene, query, label, out)
            if record is None:
                counts["unlabelled: answer not readable as any answer type"] += 1
                continue
            records.append(record)
    counts["labelled"] = len(records)
    _write(out, scenes, records, dict(sorted(counts.items())))
    return dict(sorted(counts.items()))


def _why_unlabelled(query: dict[str, Any], feedback: Any) -> str:
    if feedback:
        return "marked wrong, no answer given"
    return "no feedback" if query.get("id") is not None else "asked without an id (feedback cannot name it)"


def _write(out: Path, scenes: list[Scene], records: list[dict[str, Any]], counts: dict[str, Any]) -> None:
    """Everything into a staging folder beside `out`, renamed when complete. Paths in the records are relative to
    `out` already, and a sibling staging folder resolves them alike."""
    with staged_output(out, folder=True) as staging:
        write_scenes(staging / SCENES_FILE, scenes)
        write_jsonl(staging / QA_FILE, records)
        write_jsonl(staging / SFT_FILE, [sft_record(record) for record in records])
        (staging / REPORT_FILE).write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")
