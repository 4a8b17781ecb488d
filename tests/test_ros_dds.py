"""The DDS transport: CDR byte for byte as rosbags writes it, ROS 2 topic/type naming, and multi-process end
to end on loopback (a camera + questioner process and the node process). Every participant of these tests uses
`loopback_config()` (127.0.0.1 only, no multicast) and a domain of its own."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cyclonedds.idl._machinery import BytesMachine
from rosbags.typesys import Stores

from sr_real_core.ros import outputs
from sr_real_core.ros.config import SpatialQueryConfig
from sr_real_core.ros.dds.idl import dds_typename, idl_type, to_message
from sr_real_core.ros.dds.transport import dds_topic, loopback_config
from sr_real_core.ros.msgs import image_dict
from sr_real_core.ros.types import NODE_MESSAGE_TYPES, rosbags_message, typestore
from test_ros_query_service import tiny_model  # noqa: F401 - a fixture

HEADER = {"stamp": {"sec": 1700000000, "nanosec": 123456789}, "frame_id": "camera_color_optical_frame"}
WIDTH, HEIGHT = 80, 60
K = [60.0, 0.0, 39.5, 0.0, 60.0, 29.5, 0.0, 0.0, 1.0]
CENTRES = [outputs.Centre("chair", "red bbox", (-0.4, -0.05, 1.5), {"center_3d": [-0.4, -0.05, 1.5],
                                                                   "size_3d": [0.3, 0.5, 0.2], "n_points": 600}),
           outputs.Centre("table", "blue bbox", (0.5, 0.1, 2.0))]
DTR = ('<detect>Find 2 relevant objects:\n<3d_box center="-0.40,-0.05,1.50">chair (red bbox)</3d_box>\n'
       '<3d_box center="0.50,0.10,2.00">table (blue bbox)</3d_box></detect>\n'
       "<think>About a metre apart.</think>\n<answer>1.0 m</answer>")
NODE_START_S = 60.0  # a cold process importing torch on a loaded 2-core machine
ANSWER_S = 60.0


def camera_info():
    return {"header": HEADER, "height": HEIGHT, "width": WIDTH, "distortion_model": "plumb_bob", "d": [0.0] * 5,
            "k": K, "r": [1, 0, 0, 0, 1, 0, 0, 0, 1], "p": [*K[:3], 0, *K[3:6], 0, 0, 0, 1, 0],
            "binning_x": 0, "roi": {"x_offset": 0, "width": 0, "do_rectify": False}}


def depth_image(millimetres):
    return {"header": HEADER, "height": millimetres.shape[0], "width": millimetres.shape[1], "encoding": "16UC1",
            "is_bigendian": 1, "step": millimetres.shape[1] * 2, "data": millimetres.astype(">u2").tobytes()}


SAMPLES = {
    "sensor_msgs/msg/Image": image_dict(np.arange(HEIGHT * WIDTH * 3, dtype=np.uint8).reshape(HEIGHT, WIDTH, 3),
                                        HEADER),
    "sensor_msgs/msg/CompressedImage": {"header": HEADER, "format": "jpeg", "data": b"\xff\xd8\xff" + bytes(61)},
    "sensor_msgs/msg/CameraInfo": camera_info(),
    "vision_msgs/msg/Detection2DArray": {"header": HEADER, "detections": [
        {"header": HEADER, "id": "7", "results": [{"hypothesis": {"class_id": "chair", "score": 0.75},
                                                   "pose": {"covariance": [0.5] * 36}}],
         "bbox": {"center": {"position": {"x": 20.5, "y": 25.0}, "theta": 0.1}, "size_x": 20, "size_y": 30}}]},
    "geometry_msgs/msg/PointStamped": {"header": HEADER, "point": {"x": 0.1, "y": -0.2, "z": 2.5}},
    "std_msgs/msg/String": {"data": "Wie weit ist der Stuhl? 椅子はどこ?"},
    "visualization_msgs/msg/MarkerArray": outputs.marker_array(CENTRES, HEADER, 2.5, True),
    "vision_msgs/msg/Detection3DArray": outputs.detection3d_array(CENTRES, HEADER),
    "diagnostic_msgs/msg/DiagnosticArray": outputs.diagnostic_array(outputs.WARN, "no frame", {"a": 1}, 12.5),
}


@pytest.mark.parametrize("msgtype", NODE_MESSAGE_TYPES)
def test_cdr_is_byte_identical_to_rosbags(msgtype):
    values = SAMPLES[msgtype]
    ours = to_message(msgtype, values).serialize()
    reference = typestore().serialize_cdr(rosbags_message(msgtype, values), msgtype)
    assert ours[:4] == b"\x00\x01\x00\x00"  # XCDR1 (CDR_LE), what rmw writes
    assert ours == reference
    decoded = idl_type(msgtype).deserialize(reference)  # and back: rosbags' bytes read by the transport
    assert decoded.serialize() == reference


def test_big_endian_depth_survives_the_wire():
    millimetres = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    values = depth_image(millimetres)
    reference = typestore().serialize_cdr(rosbags_message("sensor_msgs/msg/Image", values), "sensor_msgs/msg/Image")
    assert to_message("sensor_msgs/msg/Image", values).serialize() == reference
    from sr_real_core.ros.msgs import depth_to_metres

    metres = depth_to_metres(idl_type("sensor_msgs/msg/Image").deserialize(reference))
    assert np.allclose(metres[np.isfinite(metres)], millimetres[millimetres > 0] * 0.001)


def test_uint8_sequences_take_the_bytes_fast_path():
    for msgtype, field in (("sensor_msgs/msg/Image", "data"), ("sensor_msgs/msg/CompressedImage", "data")):
        members = idl_type(msgtype).__idl__.v1_machine.members_machines
        assert isinstance(members[field], BytesMachine)
    image = to_message("sensor_msgs/msg/Image", SAMPLES["sensor_msgs/msg/Image"])
    assert isinstance(idl_type("sensor_msgs/msg/Image").deserialize(image.serialize()).data, bytes)
    assert dds_typename("sensor_msgs/msg/Image") == "sensor_msgs::msg::dds_::Image_"


def test_message_layouts_are_the_same_in_humble_and_jazzy():
    humble, jazzy = typestore(Stores.ROS2_HUMBLE), typestore(Stores.ROS2_JAZZY)

    def layout(store, msgtype):
        _, fields = store.fielddefs[msgtype]
        return [(name, kind, layout(store, detail) if kind.name == "NAME" else detail) for name, (kind, detail)
                in fields]

    for msgtype in NODE_MESSAGE_TYPES:
        assert layout(humble, msgtype) == layout(jazzy, msgtype), msgtype


def test_ros_topic_names_map_to_dds_topics():
    assert dds_topic("~/query") == "rt/spatial_query_node/query"
    assert dds_topic("~/answer", "/robot1", "asker") == "rt/robot1/asker/answer"
    assert dds_topic("camera/image", "/robot1") == "rt/robot1/camera/image"
    assert dds_topic("/clicked_point", "/robot1") == "rt/clicked_point"
    config = loopback_config()
    assert '<NetworkInterface address="127.0.0.1"/>' in config and "<AllowMulticast>false" in config


# ------------------------------------------------------------------------------------- multi-process


@pytest.fixture(scope="module")
def loopback_env():
    """CYCLONEDDS_URI for this process (read when its first participant is created) and its children."""
    previous = os.environ.get("CYCLONEDDS_URI")
    os.environ["CYCLONEDDS_URI"] = loopback_config()
    yield dict(os.environ)
    if previous is None:
        del os.environ["CYCLONEDDS_URI"]
    else:
        os.environ["CYCLONEDDS_URI"] = previous


def domain_for(offset):
    """A domain per test and per run, away from the default 0 (ports stay below 65535 up to domain 232)."""
    return 100 + (os.getpid() * 7 + offset) % 120


NODE_SCRIPT = f"""
import sys, threading
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})  # the test doubles in tests/support
from sr_real_core.ros.config import SpatialQueryConfig
from sr_real_core.ros.dds.transport import DdsTransport
from sr_real_core.ros.service import SpatialQueryService
from support.scripted import ScriptedEngine
domain, completion, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
config = SpatialQueryConfig(model="scripted", diagnostics_period_s=0.5)
transport = DdsTransport(config, domain_id=domain)
service = SpatialQueryService(ScriptedEngine(completion), config, transport.publish)
service.start()
stop = threading.Event()
timer = threading.Timer(seconds, stop.set)
timer.daemon = True
timer.start()
transport.spin(service.handlers(), service.diagnostics, stop, config.diagnostics_period_s)
service.stop()
"""


def start_node(command, env):
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_node(node):
    node.terminate()
    try:
        return node.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:
        node.kill()
        return node.communicate()[0]


def connect(domain, node):
    """A client on `domain` once the node process is up on it; fails with the node's output if it exits."""
    from support.dds_client import DdsNodeClient

    client = DdsNodeClient(SpatialQueryConfig(model="unused"), domain_id=domain)
    deadline = time.monotonic() + NODE_START_S
    while time.monotonic() < deadline:
        if client.wait_for_node(1.0):
            return client
        if node.poll() is not None:
            pytest.fail(f"the node exited with {node.returncode}:\n{node.communicate()[0]}")
    pytest.fail("the node did not appear on DDS")


def publish_frame(client, rgb, millimetres):
    client.publish("camera_info", camera_info())
    client.publish("depth", depth_image(millimetres))
    client.publish("image", image_dict(rgb, HEADER))


def ask(client, query, rgb, millimetres, attempts=10):
    """Publish the frame and the query until the answer is not 'no_frame' (camera topics are best effort)."""
    for _ in range(attempts):
        publish_frame(client, rgb, millimetres)
        time.sleep(0.1)
        client.publish("query", {"data": query})
        sample = client.next("answer", ANSWER_S)
        assert sample is not None, "no answer from the node"
        answer = json.loads(sample.data)
        if answer["status"] != "no_frame":
            return answer
    raise AssertionError(f"no frame reached the node in {attempts} attempts: {answer}")


def test_end_to_end_with_markers_and_detections(loopback_env):
    domain = domain_for(1)
    node = start_node([sys.executable, "-c", NODE_SCRIPT, str(domain), DTR, "90"], loopback_env)
    try:
        client = connect(domain, node)
        rgb = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
        millimetres = np.full((HEIGHT, WIDTH), 2000, np.uint16)
        millimetres[10:40, 10:30] = 1500
        # Bad input first: a malformed query and an image whose data does not fill its step x height.
        client.publish("query", {"data": '{"question": "unterminated'})
        assert json.loads(client.next("answer", ANSWER_S).data)["status"] == "error"
        client.publish("query", {"data": '{"question": "x", "id": ' + "[" * 1000 + "]" * 1000 + "}"})  # 2 KB
        assert "nested deeper than" in json.loads(client.next("answer", ANSWER_S).data)["message"]
        broken = image_dict(rgb, HEADER)
        client.publish("image", {**broken, "data": broken["data"][:100]})

        query = json.dumps({"question": "How far apart are the chair (red bbox) <region> and the table "
                                        "(blue bbox) <region>?", "regions": [[10, 10, 30, 40], [50, 10, 75, 50]],
                            "id": "dds-1"})
        answer = ask(client, query, rgb, millimetres)
        assert answer["status"] == "ok" and answer["id"] == "dds-1" and answer["value_m"] == pytest.approx(1.0)
        markers = client.next("markers", ANSWER_S).markers
        assert markers[0].action == outputs.DELETEALL
        assert {(m.ns, m.id, m.type) for m in markers[1:]} >= {(outputs.CENTRES_NS, 0, outputs.SPHERE),
                                                                (outputs.CENTRES_NS, 1, outputs.SPHERE),
                                                                (outputs.MEASUREMENT_NS, 0, outputs.LINE_STRIP)}
        assert markers[1].header.frame_id == HEADER["frame_id"] and markers[1].pose.position.z == 1.5
        detections = client.next("detections", ANSWER_S).detections
        assert [d.results[0].hypothesis.class_id for d in detections] == ["chair", "table"]
        assert detections[0].bbox.center.position.z == pytest.approx(1.5, abs=0.01)
        debug = client.next("debug_image", ANSWER_S)
        assert (debug.width, debug.height, debug.encoding) == (WIDTH, HEIGHT, "rgb8")
        assert len(debug.data) == WIDTH * HEIGHT * 3
        deadline, diagnostics = time.monotonic() + ANSWER_S, None
        while time.monotonic() < deadline:  # the newest report counts the skipped image
            diagnostics = client.next("diagnostics", ANSWER_S)
            values = {value.key: value.value for value in diagnostics.status[0].values}
            if values.get("queries_answered") == "1":
                break
        assert values["image_skipped"] == "1" and values["queries_error"] == "2"
    finally:
        output = stop_node(node)
    assert "Traceback" not in output, output


def test_sr_real_serve_dds_with_the_real_engine(loopback_env, tiny_model):
    domain = domain_for(2)
    command = [sys.executable, "-m", "sr_real.cli", "serve", "--transport", "dds", "--loopback",
               "--domain-id", str(domain), "--model", str(tiny_model), "-p", "max_new_tokens=16", "--duration", "120"]
    node = start_node(command, loopback_env)
    try:
        client = connect(domain, node)
        rgb = np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        query = json.dumps({"question": "How far is the chair (red bbox) <region>?", "regions": [[10, 10, 30, 40]],
                            "path": "dtr"})
        answer = ask(client, query, rgb, np.full((HEIGHT, WIDTH), 1800, np.uint16))
        assert answer["status"] == "ok" and answer["requested_path"] == "dtr" and answer["completion"]
        assert client.next("markers", ANSWER_S).markers[0].action == outputs.DELETEALL
    finally:
        output = stop_node(node)
    assert node.returncode == 0 and "ready on DDS domain" in output, output
