"""The node core (`SpatialQueryService`) without any middleware: frames, queries, the bounded queue, markers,
detections, debug image, diagnostics and bad input. Engines: a scripted one (deterministic completions) and,
at the end, the real inference engine on the tiny model."""
import json
import logging
import threading

import cv2
import numpy as np
import pytest

from sr_real.cli import main
from sr_real_core.geometry import Intrinsics, depth_to_points
from sr_real_core.inference import SpatialReasoner
from sr_real_core.ros import outputs
from sr_real_core.ros.config import SpatialQueryConfig, parameter_specs
from sr_real_core.ros.frames import HISTORY
from sr_real_core.ros.requests import QueryError, parse_query, project_points
from sr_real_core.ros.service import SpatialQueryService, input_endpoints
from sr_real_core.ros.types import rosbags_message
from support.scripted import ScriptedEngine

WIDTH, HEIGHT = 80, 60
FRAME = "camera_color_optical_frame"
K = (60.0, 0.0, 39.5, 0.0, 60.0, 29.5, 0.0, 0.0, 1.0)
CHAIR_BOX = [10, 10, 30, 40]  # nearer block in the depth map
DTR = ('<detect>Find 2 relevant objects:\n<3d_box center="-0.40,-0.05,1.50">chair (red bbox)</3d_box>\n'
       '<3d_box center="0.50,0.10,2.00">table (blue bbox)</3d_box></detect>\n'
       "<think>They are about 1.0 m apart.</think>\n<answer>1.0 m</answer>")
LOR = "<think>Looks near.</think>\n<answer>2 m</answer>"
WAIT_S = 10.0


def header(t):
    return {"stamp": {"sec": int(t), "nanosec": int(round((t % 1) * 1e9))}, "frame_id": FRAME}


def colour_msg(t, rgb=None, **fields):
    rgb = np.full((HEIGHT, WIDTH, 3), 90, np.uint8) if rgb is None else rgb
    return rosbags_message("sensor_msgs/msg/Image", {
        "header": header(t), "height": rgb.shape[0], "width": rgb.shape[1], "encoding": "rgb8",
        "step": rgb.shape[1] * 3, "data": rgb.tobytes(), **fields})


def depth_msg(t, width=WIDTH, height=HEIGHT, background=2000, chair=1500):
    millimetres = np.full((height, width), background, np.uint16)
    millimetres[CHAIR_BOX[1]:CHAIR_BOX[3], CHAIR_BOX[0]:CHAIR_BOX[2]] = chair
    return rosbags_message("sensor_msgs/msg/Image", {
        "header": header(t), "height": height, "width": width, "encoding": "16UC1", "step": width * 2,
        "data": millimetres.tobytes()})


def camera_info(k=K):
    return rosbags_message("sensor_msgs/msg/CameraInfo", {
        "header": header(0), "height": HEIGHT, "width": WIDTH, "distortion_model": "plumb_bob", "d": [0.0] * 5,
        "k": list(k), "r": [1, 0, 0, 0, 1, 0, 0, 0, 1], "p": [*K[:3], 0, *K[3:6], 0, 0, 0, 1, 0]})


class Outputs:
    """What the service publishes, by key; waits are bounded."""

    def __init__(self):
        self.messages, self.condition = [], threading.Condition()

    def __call__(self, key, message):
        with self.condition:
            self.messages.append((key, message))
            self.condition.notify_all()

    def of(self, key):
        with self.condition:
            return [message for k, message in self.messages if k == key]

    def answers(self, count, timeout_s=WAIT_S):
        with self.condition:
            self.condition.wait_for(lambda: len(self.of_locked("answer")) >= count, timeout_s)
            return [json.loads(message["data"]) for message in self.of_locked("answer")]

    def of_locked(self, key):
        return [message for k, message in self.messages if k == key]


@pytest.fixture
def make_service():
    services = []

    def make(engine=None, **parameters):
        published = Outputs()
        config = SpatialQueryConfig.from_mapping({"model": "unused", **parameters})
        service = SpatialQueryService(engine or ScriptedEngine(DTR), config, published)
        service.start()
        services.append(service)
        return service, published

    yield make
    for service in services:
        service.stop()


def feed_frame(service, t=1.0, **colour_fields):
    service.on_camera_info(camera_info())
    service.on_depth(depth_msg(t))
    service.on_image(colour_msg(t, **colour_fields))


def ask(service, question, **fields):
    service.on_query(rosbags_message("std_msgs/msg/String",
                                     {"data": json.dumps({"question": question, **fields}) if fields else question}))


def test_answer_markers_detections_and_debug_image(make_service):
    engine = ScriptedEngine(DTR)
    service, published = make_service(engine, marker_lifetime_s=4.5)
    feed_frame(service, t=12.25)
    ask(service, "How far apart are the chair (red bbox) <region> and the table (blue bbox) <region>?",
        regions=[CHAIR_BOX, [50, 10, 75, 50]], id="q7", answer_type="numeric")
    answer, = published.answers(1)
    assert answer["status"] == "ok" and answer["id"] == "q7" and answer["path"] == "dtr"
    assert answer["value_m"] == pytest.approx(1.0) and answer["answer"] == "1.0 m"
    assert answer["reasoning"] == "They are about 1.0 m apart." and answer["frame_stamp"] == pytest.approx(12.25)
    assert set(answer["latency_s"]) == {"model_s", "query_to_answer_s", "frame_to_markers_s"}
    assert [region["ref"] for region in answer["regions"]] == ["red bbox", "blue bbox"]
    chair, table = answer["detections"]
    assert chair["measured"]["center_3d"][2] == pytest.approx(1.5, abs=0.01)  # lifted from the depth block
    assert table["measured"]["center_3d"][2] == pytest.approx(2.0, abs=0.01)  # the 2 m background
    call, = engine.calls
    assert call["image_shape"] == (HEIGHT, WIDTH, 3) and call["depth_shape"] == (HEIGHT, WIDTH)
    assert call["regions"][0] == {"image_index": 0, "box": [10.0, 10.0, 30.0, 40.0]}

    markers = published.of("markers")[0]["markers"]
    assert markers[0]["action"] == outputs.DELETEALL
    by_ns = {(m["ns"], m["id"]): m for m in markers[1:]}
    assert set(by_ns) == {(outputs.CENTRES_NS, 0), (outputs.CENTRES_NS, 1), (outputs.LABELS_NS, 0),
                          (outputs.LABELS_NS, 1), (outputs.MEASUREMENT_NS, 0), (outputs.MEASUREMENT_NS, 1)}
    sphere = by_ns[(outputs.CENTRES_NS, 0)]
    assert sphere["type"] == outputs.SPHERE and sphere["pose"]["position"] == {"x": -0.4, "y": -0.05, "z": 1.5}
    assert sphere["header"] == {"stamp": {"sec": 12, "nanosec": 250000000}, "frame_id": FRAME}
    assert sphere["lifetime"] == {"sec": 4, "nanosec": 500000000} and sphere["color"]["r"] == 1.0
    assert by_ns[(outputs.LABELS_NS, 1)]["text"] == "table (0.50, 0.10, 2.00) m"
    assert by_ns[(outputs.MEASUREMENT_NS, 1)]["text"] == f"{np.linalg.norm([0.9, 0.15, 0.5]):.2f} m"
    assert len(by_ns[(outputs.MEASUREMENT_NS, 0)]["points"]) == 2

    detections = published.of("detections")[0]
    assert [d["results"][0]["hypothesis"]["class_id"] for d in detections["detections"]] == ["chair", "table"]
    chair_box = detections["detections"][0]["bbox"]
    assert chair_box["center"]["position"]["z"] == pytest.approx(1.5, abs=0.01) and chair_box["size"]["x"] > 0.2
    image = published.of("debug_image")[0]
    drawn = np.frombuffer(image["data"], np.uint8).reshape(HEIGHT, WIDTH, 3)
    assert image["encoding"] == "rgb8" and (drawn != 90).any()  # regions and centres drawn on the grey frame


def test_no_line_for_questions_that_are_not_about_distance(make_service):
    service, published = make_service()
    feed_frame(service)
    ask(service, "Is the chair (red bbox) <region> left of the table (blue bbox) <region>?",
        regions=[CHAIR_BOX, [40, 10, 70, 50]])
    published.answers(1)
    namespaces = {m.get("ns") for m in published.of("markers")[0]["markers"]}
    assert outputs.MEASUREMENT_NS not in namespaces and outputs.CENTRES_NS in namespaces


def test_no_frame_yet_says_what_is_missing(make_service):
    service, published = make_service()
    ask(service, "How far is it?")
    service.on_camera_info(camera_info())
    ask(service, "How far is it?")
    service.on_image(colour_msg(1.0))
    service.on_depth(depth_msg(2.0))  # a second away: outside the 0.05 s slop
    ask(service, "How far is it?")
    first, second, third = published.answers(3)
    assert all(answer["status"] == "no_frame" for answer in (first, second, third))
    assert "no colour image and no camera_info and no depth image" in first["message"]
    assert "no colour image and no depth image" in second["message"]
    assert "within 0.05 s" in third["message"]


def test_busy_answers_and_bounded_queue(make_service):
    gate = threading.Event()
    service, published = make_service(ScriptedEngine(LOR, gate=gate), queue_size=1)
    feed_frame(service)
    for index in range(4):  # one runs, one waits, two are refused at once
        ask(service, "How far?", id=str(index))
    busy = published.answers(2)
    assert [answer["status"] for answer in busy] == ["busy", "busy"]
    assert [answer["id"] for answer in busy] == ["2", "3"] and "queue_size 1" in busy[0]["message"]
    gate.set()
    answers = published.answers(4)
    assert sorted(answer["id"] for answer in answers if answer["status"] == "ok") == ["0", "1"]
    ask(service, "And now?")
    assert published.answers(5)[-1]["status"] == "ok"


def test_queue_size_zero_refuses_while_running(make_service):
    gate = threading.Event()
    service, published = make_service(ScriptedEngine(LOR, gate=gate), queue_size=0)
    feed_frame(service)
    ask(service, "first")
    ask(service, "second")
    assert published.answers(1)[0]["status"] == "busy"
    gate.set()
    assert [answer["status"] for answer in published.answers(2)] == ["busy", "ok"]


@pytest.mark.parametrize("text, message", [
    ('{"question": "How far?", ', "malformed JSON query"),
    ('{"question": ""}', "question: expected a non-empty string"),
    ('{"question": "x", "colour": 1}', "unknown query field"),
    ('{"question": "x", "path": "fast"}', "path: 'fast' is not one of"),
    ('{"question": "x", "regions": [[1, 2, 3, 4]] }', None),
    ('{"question": "x", "regions": [[1, 2, 3]]}', "box: expected 4 numbers"),
    ('{"question": "x", "regions": [[0,0,1,1],[0,0,1,1],[0,0,1,1],[0,0,1,1],[0,0,1,1]]}', "at most 4"),
    ('{"question": "x", "regions": [{"detection": "7"}]}', "no Detection2DArray"),
    ('{"question": "x", "regions": [{"clicked_point": 0}]}', "0 clicked point"),
    ('{"question": "x", "regions": [{"point": [500, 2]}]}', "outside the 80x60 image"),
    ('{"question": "x", "regions": [{"mask": 1}]}', "unknown kind 'mask'"),
    ("   ", "empty query"),
])
def test_malformed_queries_get_error_answers_and_the_node_goes_on(make_service, text, message):
    service, published = make_service(ScriptedEngine(LOR))
    feed_frame(service)
    service.on_query(rosbags_message("std_msgs/msg/String", {"data": text}))
    ask(service, "Still there?")
    answers = published.answers(2)
    if message is None:  # the valid control case: regions given, the scripted engine ignores tokens
        assert [answer["status"] for answer in answers] == ["ok", "ok"]
        return
    assert answers[0]["status"] == "error" and message in answers[0]["message"]
    assert answers[1]["status"] == "ok"


def test_bad_camera_messages_are_logged_skipped_and_reported(make_service, caplog):
    service, published = make_service(ScriptedEngine(LOR))
    caplog.set_level(logging.WARNING, logger="sr_real.spatial_query")
    service.on_camera_info(camera_info(k=[0.0] * 9))  # uncalibrated camera
    service.on_image(colour_msg(1.0, encoding="weird8"))  # unknown encoding
    service.on_image(colour_msg(1.0, step=WIDTH * 3 - 1))  # wrong step
    service.on_depth(depth_msg(1.0, background=0, chair=0))  # no valid depth at all
    nan_depth = rosbags_message("sensor_msgs/msg/Image", {
        "header": header(1.0), "height": HEIGHT, "width": WIDTH, "encoding": "32FC1", "step": WIDTH * 4,
        "data": np.full((HEIGHT, WIDTH), np.nan, np.float32).tobytes()})
    service.on_depth(nan_depth)
    ask(service, "How far?")  # camera_info is still missing
    assert published.answers(1)[0]["status"] == "no_frame"
    service.on_camera_info(camera_info())
    service.on_depth(depth_msg(1.0, width=WIDTH // 2, height=HEIGHT // 2))  # depth/image size mismatch
    diagnostics = service.diagnostics()["status"][0]
    assert diagnostics["level"] == outputs.WARN and "depth image is 40x30" in diagnostics["message"]
    counters = {value["key"]: value["value"] for value in diagnostics["values"]}
    assert counters["image_skipped"] == "2" and counters["depth_skipped"] == "3"
    assert counters["camera_info_skipped"] == "1"
    logged = caplog.text
    for fragment in ("encoding 'weird8'", "step 239", "no valid depth", "uncalibrated", "depth image is 40x30"):
        assert fragment in logged
    feed_frame(service, t=2.0)
    ask(service, "And now?")
    assert published.answers(2)[1]["status"] == "ok"
    assert service.diagnostics()["status"][0]["level"] == outputs.OK


def test_a_failing_engine_gives_an_error_answer_and_the_worker_goes_on(make_service):
    class Flaky(ScriptedEngine):
        def ask(self, question, images, **kwargs):
            if "fail" in question:
                raise RuntimeError("CUDA out of memory")
            return super().ask(question, images, **kwargs)

    service, published = make_service(Flaky(LOR))
    feed_frame(service)
    ask(service, "please fail")
    ask(service, "please answer")
    first, second = published.answers(2)
    assert first["status"] == "error" and "CUDA out of memory" in first["message"]
    assert second["status"] == "ok"


def test_a_compressed_image_that_does_not_fit_camera_info_is_an_error_answer(make_service):
    service, published = make_service(ScriptedEngine(LOR), image_transport="compressed", depth_topic="")
    _, jpeg = cv2.imencode(".jpg", np.zeros((HEIGHT * 2, WIDTH * 2, 3), np.uint8))
    service.on_camera_info(camera_info())
    service.on_compressed_image(rosbags_message("sensor_msgs/msg/CompressedImage",
                                                {"header": header(1.0), "format": "jpeg", "data": jpeg.tobytes()}))
    ask(service, "How far?")
    answer, = published.answers(1)
    assert answer["status"] == "error" and "160x120 but camera_info describes 80x60" in answer["message"]


def test_latest_synchronised_set_only_and_frame_counts(make_service):
    engine = ScriptedEngine(LOR)
    service, published = make_service(engine, sync_slop_s=0.02)
    service.on_camera_info(camera_info())
    for index in range(200):  # 200 frames, no query: no backlog, only the latest is kept
        t = 1.0 + index / 30
        service.on_image(colour_msg(t))
        service.on_depth(depth_msg(t + 0.01))
    assert service.frame_counts() == {"synchronised": 200, "processed": 0, "dropped": 199}
    assert len(service._sync._colour) <= HISTORY and len(service._sync._depth) <= HISTORY
    ask(service, "How far?")
    assert published.answers(1)[0]["frame_stamp"] == pytest.approx(1.0 + 199 / 30)
    service.on_image(colour_msg(20.0))
    service.on_depth(depth_msg(20.015))
    service.on_depth(depth_msg(20.001))  # closer in time: the same frame, better paired
    ask(service, "How far?")
    assert published.answers(2)[1]["status"] == "ok"
    assert service.frame_counts() == {"synchronised": 201, "processed": 2, "dropped": 199}
    assert service._sync.latest.depth.header.stamp.nanosec == 1_000_000
    service.on_image(colour_msg(3.0))  # stamps back in time: a restarted camera or a looping bag
    service.on_depth(depth_msg(3.0))
    ask(service, "How far?")
    assert published.answers(3)[2]["frame_stamp"] == pytest.approx(3.0)


def test_regions_from_a_2d_detector_and_rviz_clicked_points(make_service):
    engine = ScriptedEngine(LOR)
    service, published = make_service(engine, detections_topic="/detector/detections", queue_size=4)
    feed_frame(service)
    detection = {"bbox": {"center": {"position": {"x": 20, "y": 25}}, "size_x": 20, "size_y": 30}, "id": "7",
                 "results": [{"hypothesis": {"class_id": "chair", "score": 0.8}}]}
    service.on_detections(rosbags_message("vision_msgs/msg/Detection2DArray", {"detections": [detection]}))
    clicked = {"header": {"frame_id": FRAME}, "point": {"x": 0.0, "y": 0.0, "z": 2.0}}
    service.on_clicked_point(rosbags_message("geometry_msgs/msg/PointStamped", clicked))
    for regions in ([{"detection": "7"}], [{"detection": "chair"}], [{"detection": 0}], [{"clicked_point": 0}]):
        ask(service, "Where is it <region>?", regions=regions)
    answers = published.answers(4)
    assert [answer["status"] for answer in answers] == ["ok"] * 4
    assert [call["regions"][0]["box"] for call in engine.calls[:3]] == [[10.0, 10.0, 30.0, 40.0]] * 3
    x1, y1, x2, y2 = engine.calls[3]["regions"][0]["box"]  # a small box around the principal point
    assert x1 < 39.5 < x2 and y1 < 29.5 < y2 and answers[3]["regions"][0]["ref"] == "red point"
    elsewhere = {"header": {"frame_id": "map"}, "point": {"x": 0.0, "y": 0.0, "z": 2.0}}
    service.on_clicked_point(rosbags_message("geometry_msgs/msg/PointStamped", elsewhere))
    ask(service, "Where is it <region>?", regions=[{"clicked_point": 0}])
    assert "in frame 'map', not the camera frame" in published.answers(5)[4]["message"]


def test_query_parsing():
    assert parse_query("  How far?  ", "auto").question == "How far?"
    request = parse_query('{"question": "q <region>", "regions": [[1, 2, 3, 4]], "path": "lor", "id": 5}', "dtr")
    assert (request.path, request.request_id, request.regions) == ("lor", "5", ([1, 2, 3, 4],))
    assert parse_query('{"question": "q"}', "dtr").path == "dtr"
    with pytest.raises(QueryError, match="malformed JSON"):
        parse_query("{1}", "auto")


def test_projection_inverts_the_undistortion_of_depth_to_points():
    for model, coefficients in (("plumb_bob", (-0.3, 0.1, 0.001, -0.002, 0.0)),
                                ("equidistant", (0.1, -0.05, 0.01, 0.0)), ("none", ())):
        intrinsics = Intrinsics(fx=500, fy=480, cx=320, cy=240, width=640, height=480, skew=2.0,
                                distortion_model=model, distortion=coefficients)
        points = depth_to_points(np.full((480, 640), 2.0, np.float32), intrinsics)
        pixels = project_points(intrinsics, [points[100, 50], points[400, 600]])
        assert np.allclose(pixels, [[50, 100], [600, 400]], atol=1e-3)


def test_configuration_checks_and_endpoints():
    with pytest.raises(ValueError, match="queue_size: 99 is outside"):
        SpatialQueryConfig(queue_size=99)
    with pytest.raises(ValueError, match="backend: 'tflite' is not one of"):
        SpatialQueryConfig(backend="tflite")
    with pytest.raises(ValueError, match="sync_slop_s: expected a float"):
        SpatialQueryConfig(sync_slop_s="fast")
    with pytest.raises(ValueError, match="unknown parameter"):
        SpatialQueryConfig.from_mapping({"modle": "x"})
    assert SpatialQueryConfig(sync_slop_s=1).sync_slop_s == 1  # an int is a fine float
    assert all(spec.description for spec in parameter_specs())
    keys = [endpoint.key for endpoint in input_endpoints(SpatialQueryConfig(image_transport="compressed",
                                                                            depth_topic=""))]
    assert keys == ["compressed_image", "camera_info", "clicked_point", "query", "feedback"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """The tiny checkpoint, written once per session (test_ros_dds and test_ros_bag import this fixture)."""
    out = tmp_path_factory.getbasetemp() / "tiny-model"
    if not (out / "config.json").exists():
        assert main(["model", "tiny", "--out", str(out)]) == 0
    return out


def test_real_inference_engine_on_the_tiny_model(make_service, tiny_model):
    """The real engine end to end through the node core: preprocessing of the frame (RGB, metric depth,
    intrinsics, regions), generation and parsing. The untrained tiny model writes gibberish, so the answer
    is not well formed and there are no centres, but every output is published."""
    engine = SpatialReasoner.from_pretrained(str(tiny_model), max_new_tokens=12)
    service, published = make_service(engine)
    rgb = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    service.on_camera_info(camera_info())
    service.on_depth(depth_msg(1.0))
    service.on_image(colour_msg(1.0, rgb=rgb))
    ask(service, "How far is the chair (red bbox) <region>?", regions=[CHAIR_BOX], path="dtr")
    ask(service, "How far is the chair (red bbox) <region> from the table (blue bbox) <region>?",
        regions=[CHAIR_BOX])  # token count mismatch: the engine's error becomes an error answer
    answers = published.answers(2, timeout_s=60)
    assert answers[0]["status"] == "ok" and answers[0]["requested_path"] == "dtr" and answers[0]["completion"]
    assert answers[0]["latency_s"]["model_s"] > 0
    assert answers[1]["status"] == "error" and "2 <region> tokens but 1 regions" in answers[1]["message"]
    assert published.of("markers")[0]["markers"][0]["action"] == outputs.DELETEALL
    assert service.diagnostics()["status"][0]["level"] == outputs.OK
