"""A trained model answering questions about whole scenes, for the quickstart's report.

Questions come from the data engine's generator (`sr_real_core.data.qa`), asked about marked regions, so every
answer has a truth next to it. Three kinds of scene:

- a rendered scene the model never trained on (a held-out scene of the quickstart's mixture);
- the bundled tabletop (`examples/tabletop/`: an analytic RGB-D scene with exact ground truth);
- a real RGB-D frame, when the shared data beside the repository is there (`RealFrame`): its objects are
  boxes drawn once by hand; each box is lifted from the sensor's depth (`region3d.lift_region`) to give the
  object's centre and extent, which is the truth the questions are asked against (measured, not annotated).

The model answers in auto mode (it picks its path) through the inference engine (`SpatialReasoner`), given the
plain image, the depth, the intrinsics and the region boxes (the engine draws the marks, as in deployment).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AUTO = "auto"


@dataclass
class RealFrame:
    """A real RGB-D frame and hand-drawn object boxes (pixels); paths relative to the working directory."""

    image: str
    depth: str
    depth_unit: float
    intrinsics: dict[str, float]
    objects: list[dict[str, Any]] = field(default_factory=list)  # {name, bbox_2d: [x1, y1, x2, y2]}
    scene_id: str = "real-frame"

    def available(self) -> bool:
        return Path(self.image).is_file() and Path(self.depth).is_file()


def real_frame_scenes(frame: RealFrame, out_dir: str | Path) -> Path:
    """A one-scene scenes file for a real frame, its objects' 3D boxes lifted from the sensor depth."""
    from sr_real_core.geometry import DEFAULT_UP, Intrinsics, load_depth
    from sr_real_core.region3d import lift_region

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    depth = load_depth(frame.depth, frame.depth_unit)
    camera = Intrinsics.from_dict(frame.intrinsics)
    objects = []
    for obj in frame.objects:
        lifted = lift_region(depth, camera, box=obj["bbox_2d"], up=DEFAULT_UP)
        objects.append({"name": obj["name"], "bbox_2d": obj["bbox_2d"], "center_3d": lifted.center.tolist(),
                        "size_3d": lifted.size.tolist(), "yaw": 0.0})
    record = {"scene_id": frame.scene_id, "image": str(Path(frame.image).resolve()),
              "depth": str(Path(frame.depth).resolve()), "depth_unit": frame.depth_unit,
              "intrinsics": camera.to_dict(), "objects": objects,
              "source": "real RGB-D frame; object boxes by hand, 3D boxes lifted from the sensor depth"}
    path = out_dir / "scenes.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def one_scene(scenes_path: str | Path, scene_id: str, out_dir: str | Path) -> Path:
    """A scenes file holding only `scene_id` of `scenes_path`."""
    from sr_real_core.scenes import load_scenes, write_scenes

    scene = next(s for s in load_scenes(scenes_path) if s.scene_id == scene_id)
    path = Path(out_dir) / "scenes.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_scenes(path, [scene])
    return path


def ask_about_scene(reasoner, scenes_path: str | Path, out_dir: str | Path, questions: int,
                    seed: int = 0) -> list[dict[str, Any]]:
    """Generate `questions` questions about marked regions of the scene(s) and answer them in auto mode."""
    from sr_real_core.data.qa import QAConfig, generate_qa, load_qa
    from sr_real_core.query import Query
    from sr_real_core.rewards import reward_breakdown

    out_dir = Path(out_dir)
    qa_path = generate_qa(scenes_path, out_dir, QAConfig(seed=seed, per_scene=questions, region_fraction=1.0),
                          progress=False)
    records = [r for r in load_qa(qa_path) if r.get("marked_image")]
    # The plain image: the engine draws the region marks itself, as a robot's would.
    queries = [Query.from_record(record, out_dir, path=AUTO) for record in records]
    answers = reasoner.ask_batch(queries) if queries else []
    rows = []
    for record, answer in zip(records, answers):
        scores = reward_breakdown(answer.completion, solution=record["solution"], answer_type=record["answer_type"],
                                  path=AUTO, gt_centers=record["gt_centers"])
        rows.append({"scene": record["scene_id"], "question": record["question"], "truth": record["answer"],
                     "answer": answer.answer, "path": answer.path, "accuracy": scores["accuracy"],
                     "reward": scores["total"], "image": str((out_dir / record["marked_image"]).resolve()),
                     "detections": [{"name": d.name, "ref": d.ref, "center": list(d.center_3d)}
                                    for d in answer.detections],
                     "truth_centers": record["gt_centers"]})
    return rows
