"""`sr-real demo`: the core end to end on the bundled example scene, no model needed.

1. Region-to-3D: lift every annotated box from depth + intrinsics, compare with the exact 3D centres.
2. Relations: compare the spatial relations of the lifted objects with those of the true ones.
3. Grammar and rewards: answer a distance question along the DTR path with the lifted centres, render the
   completion, parse it back and score it against the truth with the SR-REAL rewards; likewise an LOR answer
   and a malformed completion.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sr_real_core import relations
from sr_real_core.grammar import Detection, build_prompt, parse_completion, render_dtr, render_lor
from sr_real_core.region3d import RegionLiftError, lift_region
from sr_real_core.relations import Box3D
from sr_real_core.rewards import reward_breakdown
from sr_real_core.scenes import Scene, load_scenes

BUNDLED_SCENES = Path(__file__).resolve().parents[1] / "examples" / "tabletop" / "scenes.jsonl"
REGION_COLOURS = ("red bbox", "blue bbox", "green bbox", "yellow bbox")
PAIRWISE_RELATIONS = ("is_left_of", "is_above", "is_behind", "is_wider", "is_taller", "is_bigger")


def _fmt(vector) -> str:
    return "(" + ", ".join(f"{v:+.2f}" for v in vector) + ")"


def _lift_objects(scene: Scene) -> dict[int, Box3D]:
    depth = scene.load_depth()
    lifted: dict[int, Box3D] = {}
    print(f"\n== Region-to-3D on scene '{scene.scene_id}' ({scene.intrinsics.width}x{scene.intrinsics.height})")
    print(f"{'object':<14}{'true centre (m)':<26}{'lifted centre (m)':<26}{'error':>8}{'points':>8}")
    for index, obj in enumerate(scene.objects):
        try:
            result = lift_region(depth, scene.intrinsics, box=obj.bbox_2d, up=scene.up)
        except RegionLiftError as error:
            print(f"{obj.name:<14}not lifted: {error}")
            continue
        lifted[index] = Box3D(result.center, result.size)
        error_m = float(np.linalg.norm(result.center - np.asarray(obj.center_3d)))
        print(f"{obj.name:<14}{_fmt(obj.center_3d):<26}{_fmt(result.center):<26}{error_m:>7.3f}m{result.n_points:>8}")
    return lifted


def _compare_relations(scene: Scene, lifted: dict[int, Box3D]) -> None:
    truth = {i: Box3D(o.center_3d, o.size_3d, o.yaw or 0.0) for i, o in enumerate(scene.objects)}
    agree = total = 0
    distance_errors = []
    indices = sorted(lifted)
    for a in indices:
        for b in indices:
            if a == b:
                continue
            for name in PAIRWISE_RELATIONS:
                relation = getattr(relations, name)
                agree += relation(lifted[a], lifted[b], up=scene.up) == relation(truth[a], truth[b], up=scene.up)
                total += 1
            if a < b:
                true_d = relations.distance(truth[a], truth[b])
                distance_errors.append(abs(relations.distance(lifted[a], lifted[b]) - true_d) / true_d)
    print(f"\n== Relations: {agree}/{total} pairwise predicates agree with the truth; "
          f"distance relative error median {np.median(distance_errors):.1%}")


def _score_answers(scene: Scene, lifted: dict[int, Box3D]) -> None:
    a, b = sorted(lifted)[:2]
    obj_a, obj_b = scene.objects[a], scene.objects[b]
    question = (f"How far apart are the object in the {REGION_COLOURS[0]} <region> "
                f"and the object in the {REGION_COLOURS[1]} <region>?")
    truth_m = relations.distance(Box3D(obj_a.center_3d, obj_a.size_3d), Box3D(obj_b.center_3d, obj_b.size_3d))
    sample = {
        "solution": truth_m,
        "answer_type": "numeric",
        "gt_centers": [{"ref": REGION_COLOURS[0], "center": list(obj_a.center_3d)},
                       {"ref": REGION_COLOURS[1], "center": list(obj_b.center_3d)}],
    }
    detections = [Detection(obj_a.name, REGION_COLOURS[0], tuple(lifted[a].center)),
                  Detection(obj_b.name, REGION_COLOURS[1], tuple(lifted[b].center))]
    estimate_m = relations.distance(lifted[a], lifted[b])
    completions = {
        "dtr": render_dtr(detections, f"The centres are {estimate_m:.2f} m apart.", f"{estimate_m * 100:.0f} cm"),
        "lor": render_lor("Both objects stand on the floor, less than a metre apart.", "about 3 feet"),
        "malformed": "<think>No closing tag<answer>1.0 m</answer>",
    }
    print(f"\n== Grammar and rewards\nDTR prompt:\n{build_prompt(question, 'dtr', 'numeric')}\n")
    print(f"truth: {truth_m:.3f} m")
    for name, completion in completions.items():
        parsed = parse_completion(completion)
        scores = reward_breakdown(completion, path="auto", **sample)
        print(f"\n-- {name} completion:\n{completion}")
        print(f"parsed path={parsed.path} well_formed={parsed.well_formed} answer={parsed.answer!r} "
              f"errors={parsed.errors}")
        print("rewards: " + ", ".join(f"{k}={v:.3f}" for k, v in scores.items() if isinstance(v, float)))


def run_demo(scenes_path: str | Path | None = None) -> int:
    scenes = load_scenes(scenes_path or BUNDLED_SCENES)
    for scene in scenes:
        lifted = _lift_objects(scene)
        if len(lifted) < 2:
            print("fewer than two objects could be lifted; nothing more to show for this scene")
            continue
        _compare_relations(scene, lifted)
        _score_answers(scene, lifted)
    return 0
