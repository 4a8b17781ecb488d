"""Random and mutated messages of every type the spatial query node subscribes to, as hypothesis strategies.

Shared by tests/test_node_fuzz.py (a few hundred per run of `make test`) and benchmarks/bench_fuzz.py (tens of
thousands). Each strategy draws a ROS message dict whose fields are, one by one, either those of a valid message
or random values of the field's type (edge values included: NaN, inf, 0, 2**32 - 1, empty and mismatched
sizes, unknown encodings, random bytes), and delivers it the way a transport does: a message object (rosbags, as
in bag mode; the DDS types, as the DDS transport hands them over) or CDR bytes from the wire, randomly mutated,
that the DDS types then deserialise (a sample that does not deserialise is dropped by the transport's guard).
Queries are random text, mutations of valid queries, random JSON and deeply nested JSON.
`fuzz_input` sends them into a running node core (`scripted_node`), `answer_after` asks it a valid query.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sr_real_core.ros.config import SpatialQueryConfig
from sr_real_core.ros.dds.idl import idl_type, to_message
from sr_real_core.ros.service import SpatialQueryService
from sr_real_core.ros.types import rosbags_message
from support.scripted import ScriptedEngine

WIDTH, HEIGHT = 32, 24
FRAME = "camera_color_optical_frame"
K = [30.0, 0.0, 15.5, 0.0, 30.0, 11.5, 0.0, 0.0, 1.0]
CHAIR_BOX = [4, 4, 14, 18]
MSGTYPES = {"image": "sensor_msgs/msg/Image", "compressed_image": "sensor_msgs/msg/CompressedImage",
            "depth": "sensor_msgs/msg/Image", "camera_info": "sensor_msgs/msg/CameraInfo",
            "detections_2d": "vision_msgs/msg/Detection2DArray", "clicked_point": "geometry_msgs/msg/PointStamped",
            "query": "std_msgs/msg/String"}


def header(t: float = 1.0) -> dict[str, Any]:
    return {"stamp": {"sec": int(t), "nanosec": int(round((t % 1) * 1e9))}, "frame_id": FRAME}


def valid(key: str, t: float = 1.0) -> dict[str, Any]:
    """A valid message of each input: a grey 32x24 frame, depth 2 m with a 1.5 m block, its CameraInfo."""
    if key == "image":
        return {"header": header(t), "height": HEIGHT, "width": WIDTH, "encoding": "rgb8", "step": WIDTH * 3,
                "data": bytes([90]) * (WIDTH * HEIGHT * 3)}
    if key == "depth":
        millimetres = np.full((HEIGHT, WIDTH), 2000, np.uint16)
        millimetres[CHAIR_BOX[1]:CHAIR_BOX[3], CHAIR_BOX[0]:CHAIR_BOX[2]] = 1500
        return {"header": header(t), "height": HEIGHT, "width": WIDTH, "encoding": "16UC1", "step": WIDTH * 2,
                "data": millimetres.tobytes()}
    if key == "compressed_image":
        import cv2

        return {"header": header(t), "format": "jpeg",
                "data": cv2.imencode(".jpg", np.full((HEIGHT, WIDTH, 3), 90, np.uint8))[1].tobytes()}
    if key == "camera_info":
        return {"header": header(t), "height": HEIGHT, "width": WIDTH, "distortion_model": "plumb_bob",
                "d": [0.0] * 5, "k": K, "r": [1, 0, 0, 0, 1, 0, 0, 0, 1], "p": [*K[:3], 0, *K[3:6], 0, 0, 0, 1, 0]}
    if key == "detections_2d":
        return {"header": header(t), "detections": [
            {"header": header(t), "id": "7", "results": [{"hypothesis": {"class_id": "chair", "score": 0.75}}],
             "bbox": {"center": {"position": {"x": 9.0, "y": 11.0}, "theta": 0.0}, "size_x": 10, "size_y": 14}}]}
    if key == "clicked_point":
        return {"header": header(t), "point": {"x": 0.1, "y": -0.05, "z": 1.5}}
    return {"data": json.dumps({"question": "How far is the chair (red bbox) <region>?", "regions": [CHAIR_BOX],
                                "id": "valid"})}


# ------------------------------------------------------------------ field values

FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, -1.0, 1.0, 1e-300, 1e300, math.nan, math.inf, -math.inf]))
UINT32 = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 2, WIDTH, HEIGHT, WIDTH * 3, 2**31, 2**32 - 1]))
INT32 = st.integers(-2**31, 2**31 - 1)
TEXT = st.one_of(st.text(max_size=24), st.sampled_from(["", "rgb8", "bgr8", "rgba8", "mono8", "mono16", "16UC1",
                                                        "32FC1", "8UC3", "bayer_rggb8", "yuv422", "jpeg", "png",
                                                        "rgb8; jpeg compressed bgr8", FRAME, "plumb_bob",
                                                        "equidistant", "rational_polynomial"]))


def random_bytes(size: int, seed: int) -> bytes:
    """Random bytes drawn from a seed: large buffers cost hypothesis nothing to generate."""
    return np.random.default_rng(seed).bytes(size)


SEEDS = st.integers(0, 2**32 - 1)
BYTES = st.one_of(st.binary(max_size=64), st.builds(random_bytes, st.integers(0, 8192), SEEDS),
                  st.sampled_from([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"]))
HEADER = st.fixed_dictionaries({"stamp": st.fixed_dictionaries({"sec": INT32, "nanosec": UINT32}),
                                "frame_id": TEXT})


def _either(valid_value: Any, random_value: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the valid value, else a random one: most fields stay plausible, a few break."""
    return st.one_of(st.just(valid_value), st.just(valid_value), random_value)


def _mutated(key: str, fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    base = valid(key)
    return st.fixed_dictionaries({name: _either(base.get(name), strategy) for name, strategy in fields.items()})


@st.composite
def _consistent_image(draw, encodings: tuple[str, ...]) -> dict[str, Any]:
    """Sizes, step and data that agree, with random pixels and any encoding: decodable-looking images."""
    encoding = draw(st.sampled_from(encodings))
    height, width = draw(st.integers(1, 2 * HEIGHT)), draw(st.integers(1, 2 * WIDTH))
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "mono8": 1, "16UC1": 2, "mono16": 2, "32FC1": 4}.get(encoding, 1)
    data = random_bytes(height * width * channels, draw(SEEDS))
    return {"header": draw(HEADER), "height": height, "width": width, "encoding": encoding,
            "is_bigendian": draw(st.integers(0, 1)), "step": width * channels, "data": data}


def _image_fields() -> dict[str, st.SearchStrategy]:
    return {"header": HEADER, "height": UINT32, "width": UINT32, "encoding": TEXT,
            "is_bigendian": st.integers(0, 255), "step": UINT32, "data": BYTES}


def _detection() -> st.SearchStrategy:
    hypothesis = st.fixed_dictionaries({"hypothesis": st.fixed_dictionaries({"class_id": TEXT, "score": FLOATS})})
    bbox = st.fixed_dictionaries({"center": st.fixed_dictionaries({
        "position": st.fixed_dictionaries({"x": FLOATS, "y": FLOATS}), "theta": FLOATS}),
        "size_x": FLOATS, "size_y": FLOATS})
    return st.fixed_dictionaries({"header": HEADER, "id": TEXT, "results": st.lists(hypothesis, max_size=3),
                                  "bbox": bbox})


def field_values(key: str) -> st.SearchStrategy:
    """ROS message dicts of one input: valid messages with some fields replaced by random values."""
    if key == "image":
        return st.one_of(_mutated(key, _image_fields()), _consistent_image(("rgb8", "bgr8", "rgba8", "mono8",
                                                                            "8UC3", "yuv422")))
    if key == "depth":
        return st.one_of(_mutated(key, _image_fields()), _consistent_image(("16UC1", "mono16", "32FC1", "8UC1")))
    if key == "compressed_image":
        base = valid(key)["data"]
        corrupted = st.builds(lambda cut, junk: base[:cut] + junk, st.integers(0, len(base)), st.binary(max_size=64))
        return _mutated(key, {"header": HEADER, "format": TEXT, "data": st.one_of(BYTES, corrupted)})
    if key == "camera_info":
        return _mutated(key, {"header": HEADER, "height": UINT32, "width": UINT32, "distortion_model": TEXT,
                              "d": st.lists(FLOATS, max_size=16), "k": st.lists(FLOATS, min_size=9, max_size=9),
                              "r": st.lists(FLOATS, min_size=9, max_size=9),
                              "p": st.lists(FLOATS, min_size=12, max_size=12)})
    if key == "detections_2d":
        return _mutated(key, {"header": HEADER, "detections": st.lists(_detection(), max_size=4)})
    if key == "clicked_point":
        return _mutated(key, {"header": HEADER, "point": st.fixed_dictionaries({"x": FLOATS, "y": FLOATS,
                                                                                "z": FLOATS})})
    return st.fixed_dictionaries({"data": query_texts()})


# ------------------------------------------------------------------ queries

_JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                               st.text(max_size=12)),
                     lambda children: st.one_of(st.lists(children, max_size=5),
                                                st.dictionaries(st.text(max_size=8), children, max_size=5)),
                     max_leaves=12)
_QUERY_VALUES = {"question": st.one_of(st.text(max_size=40), st.just("How far is it (red bbox) <region>?"), _JSON),
                 "regions": st.one_of(_JSON, st.lists(st.one_of(
                     st.lists(FLOATS, max_size=5), st.fixed_dictionaries({"box": st.lists(FLOATS, max_size=5)}),
                     st.fixed_dictionaries({"point": st.lists(FLOATS, max_size=3)}),
                     st.fixed_dictionaries({"detection": st.one_of(st.integers(-2, 5), TEXT)}),
                     st.fixed_dictionaries({"clicked_point": st.one_of(st.integers(-2, 10), FLOATS)})), max_size=5)),
                 "path": st.one_of(st.sampled_from(["lor", "dtr", "auto", "reference"]), _JSON),
                 "answer_type": st.one_of(st.sampled_from(["numeric", "choice", "yesno", "direction"]), _JSON),
                 "id": _JSON}


def _dump(value: Any) -> str:
    return json.dumps(value, allow_nan=True)  # NaN and Infinity as a careless (or hostile) peer writes them


def _nested(depth: int, opening: str) -> str:
    closing = {"[": "]", "{": "}"}[opening]
    inner = '{"a": ' * depth + "1" + "}" * depth if opening == "{" else opening * depth + closing * depth
    return '{"question": "x", "id": ' + inner + "}"


def _edit(text: str, position: int, cut: int, insert: str) -> str:
    position %= len(text) + 1
    return text[:position] + insert + text[position + cut:]


# Known killers (the nested query, numbers no float holds, lone surrogates), drawn twice as often.
# Hypothesis raises the recursion limit while it runs a test: the deep ones are what still overflows then.
HOSTILE_QUERIES = ['{"question": "x", "id": ' + "[" * 1000 + "]" * 1000 + "}", _nested(20_000, "["),
                   '{"question": "x", "regions": [[0, 0, Infinity, 1e999]]}',
                   '{"question": "x", "id": ' + "9" * 5000 + "}",
                   '{"question": "x", "regions": [{"point": [NaN, 1]}]}',
                   "{", "[]", '{"question": "\\ud800"}', "\x00", "\udcff"]


def query_texts() -> st.SearchStrategy:
    """Query texts: random, random JSON objects with the query's keys, nested thousands deep, edits of valid."""
    fields = st.dictionaries(st.sampled_from([*_QUERY_VALUES, "extra"]), _JSON, max_size=6).flatmap(
        lambda extra: st.fixed_dictionaries({}, optional=_QUERY_VALUES).map(lambda query: {**extra, **query}))
    return st.one_of(
        st.text(max_size=200),
        fields.map(_dump),
        st.builds(_nested, st.one_of(st.integers(1, 64), st.sampled_from([1000, 5000, 20_000, 100_000])),
                  st.sampled_from("[{")),
        st.sampled_from(HOSTILE_QUERIES),
        st.builds(_edit, st.just(valid("query")["data"]), st.integers(0, 200), st.integers(0, 20),
                  st.text(max_size=8)),
        st.builds(lambda n: "x" * n, st.sampled_from([0, 16383, 16385, 100_000])),
        st.sampled_from(HOSTILE_QUERIES))


# ------------------------------------------------------------------ delivery

def _mutate_bytes(data: bytes, flips: list[tuple[int, int]], cut: int | None, extra: bytes) -> bytes:
    mutable = bytearray(data)
    for position, value in flips:
        if mutable:
            mutable[position % len(mutable)] = value
    if cut is not None:
        del mutable[cut % (len(mutable) + 1):]
    return bytes(mutable) + extra


CDR_MUTATIONS = st.tuples(st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), max_size=6),
                          st.one_of(st.none(), st.integers(0, 2**16)), st.binary(max_size=16))


class Undeliverable(Exception):
    """CDR bytes that do not deserialise: the transport's guard drops the sample before any handler."""


def deliver_as(how: str, key: str, values: dict[str, Any], mutation: tuple) -> Any:
    """The message as a transport hands it to the node core: "rosbags" (bag mode), "dds" (DDS objects) or
    "cdr" (wire bytes, mutated, deserialised by the DDS types). Undeliverable for values the wire cannot carry
    (e.g. a lone surrogate in a DDS string) and bytes that do not deserialise."""
    msgtype = MSGTYPES[key]
    if how == "rosbags":
        return rosbags_message(msgtype, values)
    try:
        message = to_message(msgtype, values)
        if how == "dds":
            return message
        return idl_type(msgtype).deserialize(_mutate_bytes(message.serialize(), *mutation))
    except Exception as error:  # noqa: BLE001 - whatever the (de)serialiser raises, the transport drops it
        raise Undeliverable(f"{type(error).__name__}: {error}") from error


def messages(key: str) -> st.SearchStrategy:
    """(how, key, values, mutation) of one input: the arguments of `deliver_as`."""
    return st.tuples(st.sampled_from(["rosbags", "dds", "cdr"]), st.just(key), field_values(key), CDR_MUTATIONS)


# ------------------------------------------------------------------ the node under fuzz

ANSWER_WAIT_S = 10.0
DTR = ('<detect>Find 1 relevant object:\n<3d_box center="-0.40,-0.05,1.50">chair (red bbox)</3d_box></detect>\n'
       "<think>It is about 1.5 m away.</think>\n<answer>1.5 m</answer>")
FOLLOW_UP = {"detections_2d": {"detection": 0}, "clicked_point": {"clicked_point": 0}}


class Published:
    """What the service publishes; `fail` names outputs whose publishing raises (a broken middleware)."""

    def __init__(self):
        self.answers: list[str] = []
        self.fail: set[str] = set()
        self.condition = threading.Condition()

    def __call__(self, key: str, message: Any) -> None:
        if key in self.fail:
            raise RuntimeError(f"cannot publish {key}")
        if key == "answer":
            with self.condition:
                self.answers.append(message["data"])
                self.condition.notify_all()

    def answer(self, request_id: str | None = None, timeout_s: float = ANSWER_WAIT_S) -> dict[str, Any] | None:
        """The latest answer (with this id), waiting for it."""
        def find():
            for text in reversed(self.answers):
                answer = json.loads(text)
                if request_id is None or answer.get("id") == request_id:
                    return answer
            return None

        with self.condition:
            self.condition.wait_for(find, timeout_s)
            return find()


def scripted_node() -> tuple[SpatialQueryService, Published]:
    """The node core with every input subscribed and an instant scripted engine, started."""
    published = Published()
    service = SpatialQueryService(ScriptedEngine(DTR), SpatialQueryConfig(model="scripted",
                                                                          detections_topic="/detections"), published)
    service.start()
    return service, published


def send(service: SpatialQueryService, key: str, values: dict[str, Any]) -> None:
    service.handlers()[key](rosbags_message(MSGTYPES[key], values))


def feed_frame(service: SpatialQueryService, t: float = 1.0) -> None:
    for key in ("camera_info", "depth", "image"):
        send(service, key, valid(key, t))


def query(service: SpatialQueryService, text: str) -> None:
    send(service, "query", {"data": text})


def answer_after(service: SpatialQueryService, published: Published, request_id: str = "alive") -> dict[str, Any]:
    """The answer to a valid query on a valid frame (asked again while earlier queries keep the node busy)."""
    feed_frame(service, t=100.0)
    deadline, answer = time.monotonic() + ANSWER_WAIT_S, None
    for attempt in range(10_000):
        query(service, json.dumps({"question": "How far is the chair (red bbox) <region>?", "regions": [CHAIR_BOX],
                                   "id": f"{request_id}-{attempt}"}))
        answer = published.answer(f"{request_id}-{attempt}")
        if answer is None or answer["status"] != "busy" or time.monotonic() > deadline:
            return answer
        time.sleep(0.01)
    return answer


def fuzz_input(service: SpatialQueryService, key: str, examples: int, *, seed: int | None = 0) -> Counter:
    """Send `examples` random messages of one input (each but queries followed by a query on what it left:
    frames, detections, clicked points); counts delivered and dropped. A handler that raises fails the run."""
    sent: Counter = Counter()

    @settings(max_examples=examples, deadline=None, database=None, derandomize=seed is not None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(messages(key))
    def deliver(arguments):
        try:
            message = deliver_as(*arguments)
        except Undeliverable:
            sent["dropped at the transport"] += 1
            return
        service.handlers()[key](message)  # must return, whatever the message
        sent["delivered"] += 1
        if key != "query":
            query(service, json.dumps({"question": "x <region>", "regions": [FOLLOW_UP.get(key, [1, 1, 5, 5])]}))
            sent["follow-up queries"] += 1

    deliver()
    return sent
