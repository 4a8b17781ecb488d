"""The node survives every message: hostile queries, broken camera messages, failing outputs, samples that do
not deserialise; each rejection is answered or counted, and the node answers a valid query afterwards.
Hypothesis sends a few hundred random and mutated messages of every subscribed type (benchmarks/bench_fuzz.py
sends tens of thousands)."""
import json
import threading
import time

import numpy as np
import pytest

from sr_real_core.ros.dds.transport import DdsTransport
from sr_real_core.ros.types import rosbags_message
from support.fuzz_messages import MSGTYPES, answer_after, feed_frame, fuzz_input, query, scripted_node, send, valid

FUZZ_EXAMPLES = 50  # per input type and run; benchmarks/bench_fuzz.py sends 10,000 per type


@pytest.fixture
def node():
    service, published = scripted_node()
    yield service, published
    service.stop()


def assert_alive(service, published, request_id="alive"):
    answer = answer_after(service, published, request_id)
    assert answer is not None and answer["status"] == "ok" and answer["value_m"] == pytest.approx(1.5), answer


@pytest.mark.parametrize("text, message", [
    ('{"question": "x", "id": ' + "[" * 1000 + "]" * 1000 + "}", "nested deeper than"),  # 2 KB: RecursionError
    ('{"question": "x", "regions": [[0, 0, Infinity, 5]]}', "Infinity is not a finite number"),
    ('{"question": "x", "regions": [[0, 0, 1e999, 5]]}', "1e999 is not a finite number"),
    ('{"question": "x", "regions": [{"point": [NaN, 3]}]}', "NaN is not a finite number"),
    ('{"question": "x", "id": ' + "9" * 5000 + "}", "too large"),
    ("x" * 16385, "exceeds max_query_bytes (16384)"),
    ("How far \udcff?", "not valid UTF-8"),
    ("How far? " * 600, "more than the limit"),
])
def test_hostile_queries_are_answered_error_and_the_node_goes_on(node, text, message):
    service, published = node
    feed_frame(service)
    query(service, text)
    answer = published.answer()
    assert answer["status"] == "error" and message in answer["message"], answer
    assert_alive(service, published)
    assert service.diagnostics()["status"][0]["values"]


def test_regions_that_break_at_resolution_are_error_answers(node):
    service, published = node
    feed_frame(service)
    send(service, "clicked_point", {"header": {"frame_id": ""}, "point": {"x": float("nan"), "y": 0.0, "z": 1.0}})
    query(service, json.dumps({"question": "x <region>", "regions": [{"clicked_point": 0}], "id": "nan-click"}))
    assert "not a finite point" in published.answer("nan-click")["message"]
    send(service, "detections_2d", {"detections": [{"id": "3", "bbox": {"size_x": float("inf"), "size_y": 2.0}}]})
    query(service, json.dumps({"question": "x <region>", "regions": [{"detection": "3"}], "id": "inf-detection"}))
    assert published.answer("inf-detection")["status"] == "error"
    query(service, json.dumps({"question": "x <region>", "regions": [[-50, 0, 10, 10]], "id": "outside"}))
    assert "is not a box inside the 32x24 image" in published.answer("outside")["message"]
    assert_alive(service, published)


def test_a_region_without_depth_is_named_in_the_answer(node):
    service, published = node
    millimetres = np.full((24, 32), 2000, np.uint16)
    millimetres[:10, :10] = 0  # a hole in the depth camera's view
    send(service, "camera_info", valid("camera_info"))
    send(service, "depth", {**valid("depth"), "data": millimetres.tobytes()})
    send(service, "image", valid("image"))
    query(service, json.dumps({"question": "How far is the chair (red bbox) <region>?", "regions": [[0, 0, 8, 8]],
                               "id": "hole"}))
    answer = published.answer("hole")
    assert answer["status"] == "ok" and answer["notes"] == [
        "region 1 [0.0, 0.0, 8.0, 8.0]: no valid depth pixel; its 3D position rests on the image alone"]


def test_failing_outputs_are_counted_and_the_node_goes_on(node):
    service, published = node
    published.fail = {"answer"}
    query(service, "How far is it?")  # answered 'no_frame' at once: publishing it raises in the callback
    feed_frame(service)
    query(service, json.dumps({"question": "x", "id": "lost"}))  # answered by the worker: raises there
    deadline = time.monotonic() + 10.0
    while service.counters["worker_failed"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    published.fail = set()
    assert service.counters["query_failed"] == 1 and service.counters["worker_failed"] == 1
    values = {v["key"]: v["value"] for v in service.diagnostics()["status"][0]["values"]}
    assert values["query_failed"] == "1" and values["worker_failed"] == "1"
    assert_alive(service, published)


class _LoopbackFreeTransport(DdsTransport):
    """DdsTransport's loop without DDS: samples come from lists, and `take` of one reader raises (a sample that
    does not deserialise)."""

    def __init__(self, samples, stop):
        self.samples, self.stop, self.published = samples, stop, []
        self.readers = dict.fromkeys([*samples, "broken"])
        self._waitset = type("Waitset", (), {"wait": lambda self, timeout: None})()

    def take(self, key, count=32):
        if key == "broken":
            raise ValueError("malformed CDR")
        taken, self.samples[key] = self.samples[key], []
        if not any(self.samples.values()):
            self.stop.set()
        return taken

    def publish(self, key, message):
        self.published.append((key, message))


def test_dds_spin_survives_a_raising_handler_and_an_unreadable_sample():
    stop, delivered, failures = threading.Event(), [], []

    def handler(sample):
        if sample == "hostile":
            raise RecursionError("maximum recursion depth exceeded")
        delivered.append(sample)

    transport = _LoopbackFreeTransport({"query": ["hostile", "valid"]}, stop)
    transport.spin({"query": handler}, lambda: {"status": []}, stop, 0.0,
                   on_error=lambda key, error: failures.append((key, type(error).__name__)))
    assert delivered == ["valid"]
    assert sorted(set(failures)) == [("broken", "ValueError"), ("query", "RecursionError")]
    assert ("diagnostics", {"status": []}) in transport.published


@pytest.mark.parametrize("key", MSGTYPES)
def test_fuzz_every_input_then_a_valid_query_is_answered(node, key):
    service, published = node
    feed_frame(service)  # queries reach the worker and region resolution, not only 'no_frame'
    sent = fuzz_input(service, key, FUZZ_EXAMPLES)
    assert sum(sent.values()) >= FUZZ_EXAMPLES // 2 and sent["delivered"] > 0, sent
    assert_alive(service, published, f"alive-after-{key}")
    failed = {name: count for name, count in service.counters.items() if name.endswith("_failed")}
    assert not failed  # every rejection was a checked one: none reached a guard


def test_hostile_query_over_the_wire_objects(node):
    """The exact message of the issue, as the DDS transport's type hands it over."""
    service, published = node
    feed_frame(service)
    hostile = '{"question": "x", "id": ' + "[" * 1000 + "]" * 1000 + "}"
    service.handlers()["query"](rosbags_message("std_msgs/msg/String", {"data": hostile}))
    assert published.answer()["status"] == "error"
    assert_alive(service, published)
