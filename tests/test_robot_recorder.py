"""Operator labels and the node's recorder: `~/feedback` parsing, the recorder's disk bound, and a DDS end-to-end
run (a camera + questioner process and the node process on loopback) whose dataset folder holds the queries and
the feedback."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sr_real_core.data import robot
from sr_real_core.data.labels import convert_labels
from sr_real_core.geometry import Intrinsics
from sr_real_core.ros.feedback import Feedback, FeedbackError, confirmed_answer, parse_feedback
from sr_real_core.ros.recorder import FULL, RECORDED, QueryRecorder
from sr_real_core.scenes import load_scenes
from test_ros_dds import (ANSWER_S, DTR, HEIGHT, WIDTH, ask, connect, domain_for, loopback_env,  # noqa: F401
                          start_node, stop_node)

INTRINSICS = Intrinsics(60.0, 60.0, 39.5, 29.5, WIDTH, HEIGHT)
ANSWER = {"status": "ok", "id": "q1", "question": "How far is the chair (red bbox) <region>?", "answer": "1.5 m",
          "path": "dtr", "value_m": 1.5, "regions": [{"ref": "red bbox", "box": [10, 10, 30, 40]}],
          "detections": [{"name": "chair", "ref": "red bbox", "center_3d": [-0.4, -0.05, 1.5]}]}


@pytest.mark.parametrize("text, error", [
    ("not json", "malformed JSON"), ('["q1"]', "expected a JSON object"), ('{"id": "q1"}', "an answer or a verdict"),
    ('{"id": "", "answer": "1 m"}', "id: expected"), ('{"id": "q1", "verdict": "maybe"}', "is not one of"),
    ('{"id": "q1", "answer": "1 m", "score": 1}', "unknown feedback field"),
    ('{"id": "q1", "verdict": "correct", "answer": "2 m"}', "either verdict 'correct'"),
    ('{"id": "q1", "answer": "' + "x" * 5000 + '"}', "at most 4096"),
])
def test_bad_feedback_is_refused(text, error):
    with pytest.raises(FeedbackError, match=error):
        parse_feedback(text)


def test_feedback_and_confirmed_answers():
    assert parse_feedback('{"id": "q1", "answer": " 1.2 m "}') == Feedback("q1", answer="1.2 m")
    assert parse_feedback('{"id": "q1", "verdict": "wrong", "answer": "left"}').to_dict() == {
        "id": "q1", "answer": "left", "verdict": "wrong"}
    assert confirmed_answer({"id": "q1", "verdict": "correct"}, "1 m") == "1 m"
    assert confirmed_answer({"id": "q1", "verdict": "wrong"}, "1 m") is None
    assert confirmed_answer({"id": "q1", "answer": "2 m", "verdict": "wrong"}, "1 m") == "2 m"
    assert confirmed_answer(None, "1 m") is None


def test_recorder_writes_loadable_scenes_within_its_bound(tmp_path):
    rng = np.random.default_rng(0)
    depth = np.full((HEIGHT, WIDTH), 2.0, np.float32)
    depth[10:40, 10:30] = 1.5
    recorder = QueryRecorder(tmp_path / "rec", max_bytes=40_000)
    outcomes = [recorder.record_answer({**ANSWER, "id": f"q{i}"}, rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8),
                                       depth, INTRINSICS, 100.0 + i) for i in range(5)]
    assert outcomes[:2] == [RECORDED, RECORDED] and outcomes[-1] == FULL
    assert recorder.record_feedback(Feedback("q0", answer="1.4 m")) == RECORDED
    size = sum(p.stat().st_size for p in (tmp_path / "rec").rglob("*") if p.is_file())
    assert size == recorder.used_bytes <= 40_000
    scenes = load_scenes(tmp_path / "rec" / robot.SCENES_FILE)
    assert len(scenes) == outcomes.count(RECORDED)
    chair, = scenes[0].objects
    assert chair.name == "chair" and chair.extra["measured"] and chair.center_3d[2] == pytest.approx(1.5, abs=0.02)
    assert scenes[0].extra["queries"][0]["id"] == "q0" and scenes[0].load_depth()[20, 20] == pytest.approx(1.5)
    reopened = QueryRecorder(tmp_path / "rec", max_bytes=40_000)  # a restart continues within the same bound
    assert reopened.used_bytes == size
    counts = convert_labels(tmp_path / "rec", tmp_path / "labels")  # the recorder's feedback.jsonl is read
    assert counts["labelled"] == 1 and counts["unlabelled: no feedback"] == len(scenes) - 1


RECORDING_NODE = f"""
import sys, threading
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from sr_real_core.ros.config import SpatialQueryConfig
from sr_real_core.ros.dds.transport import DdsTransport
from sr_real_core.ros.service import SpatialQueryService
from support.scripted import ScriptedEngine
domain, completion, folder, megabytes = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
config = SpatialQueryConfig(model="scripted", diagnostics_period_s=0.5, record_dir=folder, record_max_mb=megabytes)
transport = DdsTransport(config, domain_id=domain)
service = SpatialQueryService(ScriptedEngine(completion), config, transport.publish)
service.start()
stop = threading.Event()
timer = threading.Timer(90, stop.set)
timer.daemon = True
timer.start()
transport.spin(service.handlers(), service.diagnostics, stop, config.diagnostics_period_s)
service.stop()
"""


def test_dds_queries_and_feedback_land_in_the_dataset_folder(loopback_env, tmp_path):
    folder, bound_mb = tmp_path / "recorded", 0.05
    domain = domain_for(41)
    node = start_node([sys.executable, "-c", RECORDING_NODE, str(domain), DTR, str(folder), str(bound_mb)],
                      loopback_env)
    rng = np.random.default_rng(2)
    millimetres = np.full((HEIGHT, WIDTH), 2000, np.uint16)
    millimetres[10:40, 10:30] = 1500
    try:
        client = connect(domain, node)
        answers = []
        for index in range(6):  # ~15 kB each (a noise image): the bound holds about three
            query = json.dumps({"question": "How far apart are the chair (red bbox) <region> and the table (blue "
                                            "bbox) <region>?", "regions": [[10, 10, 30, 40], [50, 10, 75, 50]],
                                "id": f"dds-{index}"})
            answers.append(ask(client, query, rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8), millimetres))
        assert [answer["status"] for answer in answers] == ["ok"] * 6
        client.publish("feedback", {"data": json.dumps({"id": "dds-0", "answer": "1.1 m"})})
        client.publish("feedback", {"data": json.dumps({"id": "dds-1", "verdict": "correct"})})
        client.publish("feedback", {"data": json.dumps({"id": "never-asked", "verdict": "wrong"})})
        client.publish("feedback", {"data": "{broken"})
        values = _diagnostics_until(client, lambda v: v.get("feedback_received") == "4")
    finally:
        output = stop_node(node)
    assert "Traceback" not in output, output
    assert values["feedback_skipped"] == "2" and values["recorder_feedback_recorded"] == "2"
    recorded = int(values["recorder_recorded"])
    assert 2 <= recorded < 6 and values["recorder_full"] == str(6 - recorded)
    scenes = load_scenes(folder / robot.SCENES_FILE)
    assert [scene.extra["queries"][0]["id"] for scene in scenes] == [f"dds-{i}" for i in range(recorded)]
    first = scenes[0]
    assert first.intrinsics.fx == 60.0 and first.load_image().shape == (HEIGHT, WIDTH, 3)
    assert [obj.name for obj in first.objects] == ["chair", "table"]
    assert first.objects[0].center_3d[2] == pytest.approx(1.5, abs=0.02)  # measured from the recorded depth
    feedback = [json.loads(line) for line in (folder / robot.FEEDBACK_FILE).read_text().splitlines()]
    assert feedback == [{"id": "dds-0", "answer": "1.1 m"}, {"id": "dds-1", "verdict": "correct"}]
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= bound_mb * 1024 * 1024


def _diagnostics_until(client, done):
    values = {}
    for _ in range(40):
        sample = client.next("diagnostics", ANSWER_S)
        values = {value.key: value.value for value in sample.status[0].values}
        if done(values):
            break
    return values
