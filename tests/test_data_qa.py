"""Spatial QA: truths re-derived independently, chains of thought consistent with them, units, marks, rewriting."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sr_real.cli import main
from sr_real_core.answers import parse_length_m
from sr_real_core.data.cot import DTR_STEP_OF_FAMILY, DTR_STEPS, dtr_step
from sr_real_core.data.facts import unambiguous_names
from sr_real_core.data.qa import QAConfig, generate_qa, load_qa
from sr_real_core.data.rewrite import CoTRewriter, RewriteConfig
from sr_real_core.data.synth import SynthConfig, synthesize
from sr_real_core.data.units import LengthStyle, say_length
from sr_real_core.grammar import parse_completion
from sr_real_core.marks import MARK_COLOURS, REGION_TOKEN
from sr_real_core.rewards import score_completion
from sr_real_core.scenes import Scene, load_scenes, write_scenes

QA_CONFIG = QAConfig(seed=3, per_scene=14)


def _user_scene(tmp_path):
    """A user's own level-camera scene: no depth, no masks, two objects with the same name."""
    image = np.full((120, 160, 3), 90, dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "room.png"), image)
    record = {
        "scene_id": "user-room",
        "image": "room.png",
        "intrinsics": {"fx": 120.0, "fy": 120.0, "cx": 79.5, "cy": 59.5, "width": 160, "height": 120},
        "objects": [
            {"name": "chair", "bbox_2d": [10, 50, 40, 100], "center_3d": [-1.1, 0.4, 3.0], "size_3d": [0.5, 0.9, 0.5]},
            {"name": "chair", "bbox_2d": [60, 55, 80, 90], "center_3d": [0.2, 0.45, 4.2], "size_3d": [0.5, 0.9, 0.5]},
            {"name": "lamp", "bbox_2d": [120, 10, 135, 80], "center_3d": [1.3, -0.2, 3.5], "size_3d": [0.3, 1.6, 0.3],
             "yaw": 0.4},
            {"name": "cup", "bbox_2d": [90, 70, 96, 78], "center_3d": [0.45, 0.3, 2.2], "size_3d": [0.08, 0.1, 0.08]},
        ],
    }
    path = tmp_path / "user.jsonl"
    write_scenes(path, [Scene.from_record(record, base_dir=tmp_path)])
    return path


@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    """Questions from three synthetic scenes and one user scene, with the scenes they come from."""
    root = tmp_path_factory.mktemp("qa")
    synth = synthesize(SynthConfig(num_scenes=3, seed=11, width=160, height=120, room_fraction=0.34),
                       root / "synth", progress=False)
    scenes = {s.scene_id: s for path in (synth, _user_scene(root)) for s in load_scenes(path)}
    records = []
    for name, path in (("synth", synth), ("user", root / "user.jsonl")):
        records += load_qa(generate_qa(path, root / f"qa-{name}", QA_CONFIG, progress=False))
    return records, scenes, root


# ------------------------------------------------------------------- truth, re-derived with plain numpy


def _gravity_rows(up):
    up = np.asarray(up if up is not None else (0.0, -1.0, 0.0), dtype=float)
    up = up / np.linalg.norm(up)
    forward = np.array([0.0, 0.0, 1.0]) - up[2] * up
    forward /= np.linalg.norm(forward)
    return np.stack([np.cross(-up, forward), -up, forward])


def _cm(values):
    return np.floor(np.asarray(values, dtype=float) * 100 + 0.5) / 100


def _recompute(record, scene):
    """The record's truth from the scene's 3D annotations: centres at cm resolution, gravity frame."""
    objects = [scene.objects[i] for i in record["objects"]]
    rows = _gravity_rows(scene.up)
    g = [_cm(rows @ _cm(o.center_3d)) for o in objects]
    size = [np.asarray(o.size_3d) for o in objects]
    yaw = [o.yaw or 0.0 for o in objects]
    width = [abs(math.cos(y)) * s[0] + abs(math.sin(y)) * s[2] for s, y in zip(size, yaw)]
    category = record["category"]
    if category == "width":
        return width[0]
    if category == "height":
        return size[0][1]
    delta = g[1] - g[0]
    if category == "distance":
        return float(np.sqrt(np.sum(delta**2)))
    if category == "horizontal_distance":
        return math.hypot(delta[0], delta[2])
    if category == "vertical_distance":
        return abs(delta[1])
    if category == "direction":
        hour = round(math.degrees(math.atan2(delta[0], delta[2])) / 30) % 12
        return hour or 12
    word = category.rsplit("_", 1)[0]
    holds = {
        "left": g[0][0] < g[1][0], "right": g[0][0] > g[1][0], "above": g[0][1] < g[1][1],
        "below": g[0][1] > g[1][1], "behind": g[0][2] > g[1][2], "front": g[0][2] < g[1][2],
        "wide": width[0] > width[1], "thin": width[0] < width[1], "tall": size[0][1] > size[1][1],
        "short": size[0][1] < size[1][1], "big": np.prod(size[0]) > np.prod(size[1]),
        "small": np.prod(size[0]) < np.prod(size[1]),
    }[word]
    if record["answer_type"] == "yesno":
        return "yes" if holds else "no"
    return "A" if holds else "B"


def test_truth_matches_an_independent_recomputation(qa):
    records, scenes, _ = qa
    for record in records:
        truth = _recompute(record, scenes[record["scene_id"]])
        if record["answer_type"] == "numeric":
            assert record["exact_m"] == pytest.approx(truth, abs=2e-6), record["id"]
            assert abs(record["solution"] - truth) <= 0.0127 + 1e-6, record["id"]  # human rounding, <= half an inch
        else:
            assert record["solution"] == truth, record["id"]


def test_every_family_is_asked(qa):
    records, _, _ = qa
    families = {r["family"] for r in records}
    assert len(families) >= 10
    assert {r["answer_type"] for r in records} == {"numeric", "choice", "yesno", "direction"}


def test_ambiguous_pairs_are_not_asked(qa):
    """Axis relations need a separation of at least 3 cm and half the larger extent along the axis."""
    records, scenes, _ = qa
    axis = {"left_right": 0, "above_below": 1, "behind_front": 2}
    for record in (r for r in records if r["family"] in axis):
        scene = scenes[record["scene_id"]]
        rows = _gravity_rows(scene.up)
        a, b = (scene.objects[i] for i in record["objects"])
        separation = abs((rows @ (_cm(a.center_3d) - _cm(b.center_3d)))[axis[record["family"]]])
        assert separation >= 0.03 - 0.011  # cm rounding of both centres


# -------------------------------------------------------------------------- chains of thought, answers


def test_completions_parse_and_score_full_accuracy(qa):
    records, _, _ = qa
    for record in records:
        for path in ("lor", "dtr"):
            completion = record["completions"][path]
            parsed = parse_completion(completion)
            assert parsed.well_formed and parsed.path == path, (record["id"], parsed.errors)
            assert parsed.answer == record["answer"]
            assert f"So the answer is {record['answer']}." in parsed.think
            score = score_completion(completion, solution=record["solution"], answer_type=record["answer_type"],
                                     path=path, gt_centers=record["gt_centers"])
            assert score.accuracy == pytest.approx(1.0) and score.format == 1.0, record["id"]
            if path == "dtr":
                assert score.detection == pytest.approx(1.0), record["id"]


def test_dtr_detections_are_the_ground_truth_centres(qa):
    records, scenes, _ = qa
    for record in records:
        detections = parse_completion(record["completions"]["dtr"]).detections
        scene = scenes[record["scene_id"]]
        assert len(detections) == len(record["objects"]) == len(record["gt_centers"])
        for detection, gt, index in zip(detections, record["gt_centers"], record["objects"]):
            assert np.allclose(detection.center, gt["center"], atol=1e-9)
            assert np.allclose(gt["center"], _cm(scene.objects[index].center_3d), atol=1e-9)
            assert detection.name == scene.objects[index].name


def test_lor_reasoning_states_no_coordinates(qa):
    records, _, _ = qa
    for record in records:
        think = parse_completion(record["completions"]["lor"]).think
        assert "(" not in think and "x =" not in think, think


def test_wording_varies(qa):
    records, _, _ = qa
    lor = " ".join(parse_completion(r["completions"]["lor"]).think for r in records)
    dtr = " ".join(parse_completion(r["completions"]["dtr"]).think for r in records)
    for phrase in ("I can see", "appears", "at a distance of about"):  # three ways to open the same step
        assert phrase in lor
    for phrase in ("The camera looks", "Since the camera looks"):
        assert phrase in dtr
    assert len({r["question"].split(" ")[0] for r in records}) >= 5


def test_numeric_answers_use_human_units(qa):
    records, _, _ = qa
    for record in (r for r in records if r["answer_type"] == "numeric"):
        unit = record["answer"].split(" ", 1)[1]
        metres = record["exact_m"]
        if metres < 1.0:
            assert unit in ("cm", "centimeters", "inches", "inch"), record["answer"]
        else:
            assert unit in ("m", "meters") or "feet" in unit or "foot" in unit, record["answer"]
        assert parse_length_m(record["answer"]) == pytest.approx(record["solution"], abs=1e-9)


@given(st.floats(min_value=0.005, max_value=40.0), st.booleans(), st.booleans())
def test_say_length_reads_back_as_its_value(metres, imperial, long_names):
    length = say_length(metres, LengthStyle(imperial, long_names))
    assert parse_length_m(length.text) == pytest.approx(length.metres, abs=1e-9)
    assert abs(length.metres - metres) <= max(0.0127, 0.05 * metres)


# ------------------------------------------------------------------------------------ regions, marks


def test_regions_are_named_in_the_text_and_drawn(qa):
    records, scenes, root = qa
    marked = [r for r in records if r["regions"]]
    assert marked and any(not r["regions"] for r in records)
    for record in marked:
        assert record["question"].count(REGION_TOKEN) == len(record["regions"])
        for order, region in enumerate(record["regions"]):
            colour, kind = region["ref"].split(" ")
            assert colour == list(MARK_COLOURS)[order] and kind in ("bbox", "point")
            assert f"the {region['ref']} {REGION_TOKEN}" in record["question"]
        qa_dir = root / ("qa-user" if record["scene_id"] == "user-room" else "qa-synth")
        image = cv2.cvtColor(cv2.imread(str(qa_dir / record["marked_image"])), cv2.COLOR_BGR2RGB)
        x1, y1 = record["regions"][0]["bbox_2d"][:2]
        assert tuple(image[y1, x1]) == MARK_COLOURS["red"]


def test_duplicate_names_are_only_referred_to_by_regions(qa):
    records, _, _ = qa
    user = [r for r in records if r["scene_id"] == "user-room"]
    assert user
    for record in user:
        if "chair" in record["object_names"]:
            assert record["regions"], record["question"]
            assert "the chair" not in record["question"]


def test_level_camera_reasons_in_camera_coordinates(qa):
    records, _, _ = qa
    user = [r for r in records if r["scene_id"] == "user-room" and len(r["objects"]) == 2]
    assert all("x right, y down, z forward" in parse_completion(r["completions"]["dtr"]).think for r in user)


def test_dtr_reads_left_right_and_depth_off_its_detected_centres(qa):
    """Left/right and behind/in front are decided by copying x or z from <detect>, also under a pitched camera,
    where the other families restate the centres along gravity."""
    records, scenes, _ = qa
    compared = {"left_right": 0, "behind_front": 2}
    chosen = [r for r in records if r["family"] in compared]
    assert any(scenes[r["scene_id"]].up is not None and scenes[r["scene_id"]].up[2] != 0 for r in chosen)
    for record in chosen:
        parsed = parse_completion(record["completions"]["dtr"])
        index = compared[record["family"]]
        values = [f"{d.center[index]:.2f}" for d in parsed.detections]
        think = parsed.think
        assert "gravity" not in think and all(value in think for value in values), think
        assert think.index(values[0]) < think.rindex(values[1]), think


def test_every_dtr_chain_reads_back_as_the_relation_step_of_its_family(qa):
    """`cot.dtr_step` recognises each family's step in every generated chain (what an evaluation reads back from
    a model's chains), so its phrases cannot drift from the templates unnoticed."""
    records, _, _ = qa
    steps = {}
    for record in records:
        step = dtr_step(parse_completion(record["completions"]["dtr"]).think)
        assert step == DTR_STEP_OF_FAMILY[record["family"]], (record["family"], record["completions"]["dtr"])
        steps[step] = steps.get(step, 0) + 1
    assert set(steps) == set(DTR_STEPS), steps
    assert dtr_step("The objects look similar. So the answer is yes.") is None


def test_same_seed_gives_the_same_questions(qa):
    _, _, root = qa
    again = generate_qa(root / "user.jsonl", root / "qa-user-again", QA_CONFIG, progress=False)
    assert again.read_bytes() == (root / "qa-user" / "qa.jsonl").read_bytes()


def test_cli_qa(qa, tmp_path):
    _, _, root = qa
    assert main(["data", "qa", str(root / "user.jsonl"), "--out", str(tmp_path), "--per-scene", "3", "--seed", "1"]) == 0
    assert len(load_qa(tmp_path / "qa.jsonl")) == 3


# ------------------------------------------------------------------------------------------- rewriting


class _FakeLLM(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint: rewrites LOR reasoning faithfully, and corrupts DTR detections."""

    def do_POST(self):  # noqa: N802 - the http.server hook
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        completion = body["messages"][-1]["content"].split("Completion to rewrite:\n", 1)[1]
        if completion.startswith("<detect>"):
            rewritten = completion.replace('center="', 'center="9', 1)
        else:
            rewritten = "```\n" + completion.replace("<think>", "<think>Let me look again. ", 1) + "\n```"
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": rewritten}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def test_rewriting_keeps_only_rewrites_that_still_match_the_truth(qa):
    records, _, _ = qa
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeLLM)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rewriter = CoTRewriter(RewriteConfig(f"http://127.0.0.1:{server.server_address[1]}/v1", "fake", timeout_s=10))
        sample = records[:4]
        rewritten = [rewriter.rewrite_record(record) for record in sample]
    finally:
        server.shutdown()
    assert rewriter.stats == {"kept": 4, "rejected": 4}
    for before, after in zip(sample, rewritten):
        assert after["rewritten"] == ["lor"]
        assert after["completions"]["lor"].startswith("<think>Let me look again. ")
        assert after["completions"]["dtr"] == before["completions"]["dtr"]


def test_rewriting_survives_an_unreachable_endpoint(qa):
    records, _, _ = qa
    rewriter = CoTRewriter(RewriteConfig("http://127.0.0.1:9/v1", "fake", timeout_s=2))
    record = rewriter.rewrite_record(records[0])
    assert record["completions"] == records[0]["completions"] and record["rewritten"] == []
    assert sum(rewriter.stats.values()) == 2 and all(key.startswith("error") for key in rewriter.stats)


def test_only_names_that_pick_out_one_object_are_used_alone():
    names = ["ball", "soccer ball", "red ball", "chair", "chair", "table", "small table"]
    assert unambiguous_names(names) == {"soccer ball", "red ball", "small table"}
