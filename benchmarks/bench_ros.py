"""ROS layer figures, side by side in one run (no ROS needed; DDS on loopback only).

    .venv/bin/python benchmarks/bench_ros.py [--seconds S]

1. CDR serialisation of a 640x480 rgb8 sensor_msgs/Image: the transport's bytes path vs cyclonedds's stock
   uint8-sequence path vs rosbags.
2. Input handling of the node core at a 30 Hz RGB-D stream (640x480 rgb8 + 16UC1 + CameraInfo): CPU per
   frame set, and with one query per frame, processed vs dropped frames and frame-to-marker latency for engines
   of 0 s (scripted, instant: the latency excludes model time), 0.1 s and 0.5 s.
3. The same stream over DDS into a node process (scripted instant engine): the node process's CPU load, and
   camera-publish-to-markers-received latency.
4. DDS round trip of a 640x480 rgb8 Image between two processes on loopback (reliable QoS).
5. With real rclpy (ROS 2 Kilted from wheels, `make ros`): 3. for the rclpy node process, and the round trip
   of 4. from rclpy (Fast DDS) through a Cyclone DDS echo process and back. Skipped, saying why, without rclpy.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
import timeit
from pathlib import Path

import numpy as np

TESTS_DIR = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS_DIR))  # the test doubles: support.scripted, support.dds_client

from sr_real import ros_env  # noqa: E402
from sr_real_core.ros.dds.transport import loopback_config  # noqa: E402

os.environ["CYCLONEDDS_URI"] = loopback_config()  # before any participant: all traffic stays on 127.0.0.1
DOMAIN = 100 + os.getpid() % 120
# rclpy (5.): discovery on this host only, a domain of its own, Fast DDS able to talk to Cyclone (ros_env)
os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(DOMAIN + 2))
ros_env.prepare()

from cyclonedds.idl import make_idl_struct  # noqa: E402

from sr_real_core.ros.config import SpatialQueryConfig  # noqa: E402
from sr_real_core.ros.dds.idl import dds_typename, idl_type, to_message  # noqa: E402
from sr_real_core.ros.msgs import image_dict  # noqa: E402
from sr_real_core.ros.service import SpatialQueryService  # noqa: E402
from sr_real_core.ros.types import rosbags_message, typestore  # noqa: E402
from support.scripted import ScriptedEngine  # noqa: E402

WIDTH, HEIGHT, RATE_HZ = 640, 480, 30.0
K = [525.0, 0.0, 319.5, 0.0, 525.0, 239.5, 0.0, 0.0, 1.0]
FRAME_ID = "camera_color_optical_frame"
DTR = ('<detect>Find 2 relevant objects:\n<3d_box center="-0.40,-0.05,1.50">chair (red bbox)</3d_box>\n'
       '<3d_box center="0.50,0.10,2.00">table (blue bbox)</3d_box></detect>\n<think>.</think>\n<answer>1.0 m</answer>')
QUERY = json.dumps({"question": "How far apart are the chair (red bbox) <region> and the table (blue bbox) "
                                "<region>?", "regions": [[100, 100, 260, 380], [380, 120, 600, 400]]})
logging.getLogger("sr_real.spatial_query").setLevel(logging.ERROR)  # 'busy' answers are expected here


def header(t: float) -> dict:
    return {"stamp": {"sec": int(t), "nanosec": int((t % 1) * 1e9)}, "frame_id": FRAME_ID}


def frame_dicts(t: float, rgb: np.ndarray, millimetres: np.ndarray) -> dict[str, dict]:
    return {"camera_info": {"header": header(t), "height": HEIGHT, "width": WIDTH, "distortion_model": "plumb_bob",
                            "d": [0.0] * 5, "k": K, "r": [1, 0, 0, 0, 1, 0, 0, 0, 1],
                            "p": [*K[:3], 0, *K[3:6], 0, 0, 0, 1, 0]},
            "depth": {"header": header(t), "height": HEIGHT, "width": WIDTH, "encoding": "16UC1", "step": WIDTH * 2,
                      "data": millimetres.tobytes()},
            "image": image_dict(rgb, header(t))}


def scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    millimetres = np.full((HEIGHT, WIDTH), 2000, np.uint16)
    millimetres[100:380, 100:260] = 1500
    return rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), millimetres


def timed(function, repeats: int) -> float:
    """Median seconds of one call."""
    return statistics.median(timeit.repeat(function, number=1, repeat=repeats))


def bench_serialisation() -> None:
    rgb, _ = scene()
    values = image_dict(rgb, header(1.0))
    fast_cls = idl_type("sensor_msgs/msg/Image")
    stock_cls = make_idl_struct("StockImage", dds_typename("sensor_msgs/msg/Image"), dict(fast_cls.__annotations__))
    fast = to_message("sensor_msgs/msg/Image", values)
    stock = stock_cls(**{**vars(fast), "data": list(values["data"])})
    wire = fast.serialize()
    assert stock.serialize() == wire
    reference = rosbags_message("sensor_msgs/msg/Image", values)
    rows = [("transport (bytes path)", timed(fast.serialize, 50), timed(lambda: fast_cls.deserialize(wire), 50)),
            ("cyclonedds stock uint8 sequence", timed(stock.serialize, 5), timed(lambda: stock_cls.deserialize(wire), 5)),
            ("rosbags serialize_cdr", timed(lambda: typestore().serialize_cdr(reference, "sensor_msgs/msg/Image"), 20),
             timed(lambda: typestore().deserialize_cdr(wire, "sensor_msgs/msg/Image"), 20))]
    print(f"\n1. 640x480 rgb8 Image CDR ({len(wire):,} bytes, identical bytes on all paths)")
    print(f"{'path':<36}{'serialise ms':>14}{'deserialise ms':>16}")
    for name, serialise, deserialise in rows:
        print(f"{name:<36}{serialise * 1e3:>14.3f}{deserialise * 1e3:>16.3f}")


class Collector:
    def __init__(self):
        self.answers, self.condition = [], threading.Condition()

    def __call__(self, key, message):
        if key == "answer":
            with self.condition:
                self.answers.append(json.loads(message["data"]))
                self.condition.notify_all()


def bench_core_stream(seconds: float) -> None:
    rgb, millimetres = scene()
    frames = int(seconds * RATE_HZ)
    messages = [{key: rosbags_message(msgtype, values) for (key, values), msgtype in
                 zip(frame_dicts(1.0 + i / RATE_HZ, rgb, millimetres).items(),
                     ("sensor_msgs/msg/CameraInfo", "sensor_msgs/msg/Image", "sensor_msgs/msg/Image"))}
                for i in range(min(frames, 60))]  # 60 distinct message sets, reused round-robin
    print(f"\n2. Node core at a {RATE_HZ:.0f} Hz RGB-D stream (640x480 rgb8 + 16UC1 + CameraInfo), {seconds:.0f} s, "
          "one query per frame")
    print(f"{'engine':<26}{'input CPU us/frame':>19}{'CPU % at 30 Hz':>15}{'processed':>10}{'dropped':>9}"
          f"{'busy':>6}{'frame->markers ms p50 / p90':>29}")
    for delay in (0.0, 0.1, 0.5):
        published = Collector()
        config = SpatialQueryConfig(model="scripted", queue_size=0, publish_debug_image=False)
        service = SpatialQueryService(ScriptedEngine(DTR, delay_s=delay), config, published)
        service.start()
        input_cpu, start = 0.0, time.perf_counter()
        for index in range(frames):
            time.sleep(max(0.0, start + index / RATE_HZ - time.perf_counter()))
            stamp = 1.0 + index / RATE_HZ
            message_set = messages[index % len(messages)]
            for message in message_set.values():  # fresh stamps: a new frame each time
                message.header.stamp.sec, message.header.stamp.nanosec = int(stamp), int((stamp % 1) * 1e9)
            cpu = time.thread_time()
            service.on_camera_info(message_set["camera_info"])
            service.on_depth(message_set["depth"])
            service.on_image(message_set["image"])
            input_cpu += time.thread_time() - cpu
            service.on_query(QUERY)
        with published.condition:
            published.condition.wait_for(lambda: len(published.answers) >= frames, timeout=delay + 5)
        service.stop()
        counts = service.frame_counts()
        latencies = sorted(a["latency_s"]["frame_to_markers_s"] * 1e3 for a in published.answers if a["status"] == "ok")
        busy = sum(a["status"] == "busy" for a in published.answers)
        label = "scripted, instant" if delay == 0 else f"scripted, {delay:.1f} s"
        print(f"{label:<26}{input_cpu / frames * 1e6:>19.0f}{input_cpu / frames * RATE_HZ * 100:>15.1f}"
              f"{counts['processed']:>10}{counts['dropped']:>9}{busy:>6}"
              f"{_percentile(latencies, 50):>16.2f} / {_percentile(latencies, 90):<9.2f}")
    print("   frame->markers: from the frame set being complete to the MarkerArray being published (queue hand-off,"
          "\n   decode, parse, markers); with the instant engine it excludes model time. Slower engines drop frames"
          "\n   and answer 'busy' instead of queueing (queue_size 0): nothing builds up.")


def _wait(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(condition())


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


NODE_SCRIPT = f"""
import logging, sys, threading
sys.path.insert(0, {str(TESTS_DIR)!r})  # the test doubles in tests/support
from sr_real_core.ros.config import SpatialQueryConfig
from sr_real_core.ros.dds.transport import DdsTransport
from sr_real_core.ros.service import SpatialQueryService
from support.scripted import ScriptedEngine
logging.getLogger("sr_real.spatial_query").setLevel(logging.ERROR)
domain, completion, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
config = SpatialQueryConfig(model="scripted", queue_size=0, publish_debug_image=False, diagnostics_period_s=0.2)
transport = DdsTransport(config, domain_id=domain)
service = SpatialQueryService(ScriptedEngine(completion), config, transport.publish)
service.start()
stop = threading.Event()
threading.Timer(seconds, stop.set).start()
transport.spin(service.handlers(), service.diagnostics, stop, config.diagnostics_period_s)
service.stop()
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_counters(client) -> dict[str, int]:
    """Frame counters of the newest diagnostics report of the node."""
    time.sleep(0.5)  # a report after the last frame
    newest = None
    while (report := client.next("diagnostics", 0.0)) is not None:
        newest = report
    values = {value.key: value.value for value in newest.status[0].values}
    return {key: int(values[f"frames_{key}"]) for key in ("synchronised", "processed", "dropped")}


def stream(client, seconds: float, with_queries: bool) -> list[float]:
    """A 30 Hz RGB-D stream (and one query per frame): camera-publish-to-markers-received latencies, ms."""
    rgb, millimetres = scene()
    latencies, start = [], time.perf_counter()
    for index in range(int(seconds * RATE_HZ)):
        time.sleep(max(0.0, start + index / RATE_HZ - time.perf_counter()))
        sent = time.perf_counter()
        for key, values in frame_dicts(1.0 + index / RATE_HZ, rgb, millimetres).items():
            client.publish(key, values)
        if with_queries:
            client.publish("query", {"data": QUERY})
            if client.next("markers", 1.0 / RATE_HZ) is not None:
                latencies.append((time.perf_counter() - sent) * 1e3)
    return latencies


def bench_dds_node(seconds: float) -> None:
    from support.dds_client import DdsNodeClient

    node = subprocess.Popen([sys.executable, "-c", NODE_SCRIPT, str(DOMAIN), DTR, str(2 * seconds + 30)])
    client = DdsNodeClient(SpatialQueryConfig(model="unused"), domain_id=DOMAIN)
    if not client.wait_for_node(60):
        node.kill()
        print("\n3. DDS node: the node process did not appear")
        return
    print(f"\n3. The same stream over DDS into a node process (scripted instant engine), {seconds:.0f} s each")
    print(f"{'phase':<34}{'node CPU % of a core':>21}{'processed':>10}{'dropped':>9}"
          f"{'publish->markers ms p50 / p90':>31}")
    before, cpu, start = node_counters(client), cpu_seconds(node.pid), time.perf_counter()
    time.sleep(2.0)
    rows = [("idle", (cpu_seconds(node.pid) - cpu) / (time.perf_counter() - start), before, [])]
    for label, with_queries in (("stream only (input handling)", False), ("stream + one query per frame", True)):
        cpu, start = cpu_seconds(node.pid), time.perf_counter()
        latencies = stream(client, seconds, with_queries)
        load = (cpu_seconds(node.pid) - cpu) / (time.perf_counter() - start)
        after = node_counters(client)
        rows.append((label, load, {key: after[key] - before[key] for key in after}, latencies))
        before = after
    node.terminate()
    node.wait(30)
    for label, load, counts, latencies in rows:
        timing = f"{_percentile(latencies, 50):>18.1f} / {_percentile(latencies, 90):<10.1f}" if latencies else ""
        print(f"{label:<34}{load * 100:>21.1f}{counts['processed']:>10}{counts['dropped']:>9}{timing}")
    print("   CPU: the node process's user + system time per second of the phase (DDS receive, CDR, checks, pairing,"
          "\n   answering); latency: from the client publishing the frame to it receiving the MarkerArray.")


ECHO_SCRIPT = """
import sys, time
from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration
from sr_real_core.ros.dds.idl import idl_type
qos = Qos(Policy.Reliability.Reliable(duration(seconds=1)), Policy.History.KeepLast(2),
          Policy.DataRepresentation(use_cdrv0_representation=True))  # XCDR1, as rmw writes: rclpy can read it
participant = DomainParticipant(int(sys.argv[1]))
image = idl_type("sensor_msgs/msg/Image")
reader = DataReader(participant, Topic(participant, "rt/bench/ping", image), qos=qos)
writer = DataWriter(participant, Topic(participant, "rt/bench/pong", image), qos=qos)
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    for sample in reader.take_iter(timeout=duration(milliseconds=100)):
        writer.write(sample)
"""


def bench_dds_round_trip(count: int) -> None:
    from cyclonedds.core import Policy, Qos
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic
    from cyclonedds.util import duration

    domain = DOMAIN + 1
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SCRIPT, str(domain), "60"])
    qos = Qos(Policy.Reliability.Reliable(duration(seconds=1)), Policy.History.KeepLast(2))
    participant = DomainParticipant(domain)
    image = idl_type("sensor_msgs/msg/Image")
    writer = DataWriter(participant, Topic(participant, "rt/bench/ping", image), qos=qos)
    reader = DataReader(participant, Topic(participant, "rt/bench/pong", image), qos=qos)
    if not _wait(lambda: writer.get_matched_subscriptions() and reader.get_matched_publications(), 60.0):
        echo.kill()
        print("\n4. DDS round trip: the echo process did not appear")
        return
    rgb, _ = scene()
    times = []
    for index in range(count):
        message = to_message("sensor_msgs/msg/Image", image_dict(rgb, header(index)))
        start = time.perf_counter()
        writer.write(message)
        for sample in reader.take_iter(timeout=duration(seconds=2)):
            if sample.header.stamp.sec == index:
                times.append((time.perf_counter() - start) * 1e3)
                break
    echo.kill()
    echo.wait()
    print(f"\n4. DDS round trip of a 640x480 rgb8 Image between two processes on loopback (reliable), {len(times)} of "
          f"{count}: p50 {_percentile(times, 50):.2f} ms, p90 {_percentile(times, 90):.2f} ms (serialise, send, "
          "deserialise, twice)")


RCLPY_NODE_SCRIPT = """
import sys, time, rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.parameter import Parameter
from sr_real import spatial_query_node
from support.scripted import ScriptedEngine
completion, seconds, reliability = sys.argv[1], float(sys.argv[2]), sys.argv[3]
spatial_query_node.load_engine = lambda config: ScriptedEngine(completion)
rclpy.init()
node = spatial_query_node.SpatialQueryNode(parameter_overrides=[Parameter(name, value=value) for name, value in (
    ("model", "scripted"), ("queue_size", 0), ("publish_debug_image", False), ("diagnostics_period_s", 0.2),
    ("sensor_reliability", reliability))])
deadline = time.monotonic() + seconds
try:
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
except ExternalShutdownException:  # SIGTERM
    pass
node.service.stop()
node.destroy_node()
rclpy.try_shutdown()
"""


class RclpyClient:
    """rclpy camera + questioner for the node of RCLPY_NODE_SCRIPT; spun by a background thread."""

    def __init__(self, reliability: str):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import String
        from visualization_msgs.msg import MarkerArray

        from sr_real.spatial_query_node import fill_message

        self.node = rclpy.create_node("sr_real_bench_camera")
        rgb, millimetres = scene()
        kinds = {"camera_info": CameraInfo, "depth": Image, "image": Image}
        self.messages = {key: fill_message(kinds[key](), values) for key, values in
                         frame_dicts(1.0, rgb, millimetres).items()}
        topics = {"camera_info": "/camera/color/camera_info", "depth": "/camera/aligned_depth_to_color/image_raw",
                  "image": "/camera/color/image_raw"}
        camera_qos = qos_profile_sensor_data if reliability == "best_effort" else QoSProfile(
            depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.writers = {key: self.node.create_publisher(kinds[key], topics[key], camera_qos) for key in kinds}
        self.query = self.node.create_publisher(String, "/spatial_query_node/query", QoSProfile(depth=10))
        self.query_msg = String(data=QUERY)
        self.markers, self.answers, self.reports = threading.Event(), [], []
        self.node.create_subscription(MarkerArray, "/spatial_query_node/markers", lambda _: self.markers.set(),
                                      QoSProfile(depth=10))
        self.node.create_subscription(String, "/spatial_query_node/answer",
                                      lambda msg: self.answers.append(json.loads(msg.data)), QoSProfile(depth=100))
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.reports.append, QoSProfile(depth=10))
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def wait_for_node(self, timeout_s: float) -> bool:
        return _wait(lambda: self.query.get_subscription_count() > 0, timeout_s)

    def counters(self) -> dict[str, int]:
        time.sleep(0.5)  # a report after the last frame
        values = {value.key: value.value for value in self.reports[-1].status[0].values}
        return {**{key: int(values[f"frames_{key}"]) for key in ("synchronised", "processed", "dropped")},
                "images": int(values.get("image_received", 0))}

    def stream(self, seconds: float, with_queries: bool) -> list[float]:
        """stream() of section 3 through rclpy: camera-publish-to-markers-received latencies, ms."""
        latencies, start = [], time.perf_counter()
        for index in range(int(seconds * RATE_HZ)):
            time.sleep(max(0.0, start + index / RATE_HZ - time.perf_counter()))
            stamp = 1.0 + index / RATE_HZ
            sent = time.perf_counter()
            for key, message in self.messages.items():
                message.header.stamp.sec, message.header.stamp.nanosec = int(stamp), int((stamp % 1) * 1e9)
                self.writers[key].publish(message)
            if with_queries:
                self.markers.clear()
                self.query.publish(self.query_msg)
                if self.markers.wait(1.0 / RATE_HZ):
                    latencies.append((time.perf_counter() - sent) * 1e3)
        return latencies

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


def bench_rclpy_node(seconds: float) -> None:
    print(f"\n5a. The stream of 3. through rclpy (Fast DDS) into the rclpy node process (scripted instant engine), "
          f"{seconds:.0f} s each, {int(seconds * RATE_HZ)} frame sets sent per phase")
    print(f"{'camera QoS / phase':<42}{'node CPU %':>11}{'images in':>10}{'processed':>10}{'dropped':>9}"
          f"{'publish->markers ms p50 / p90':>31}")
    for reliability in ("best_effort", "reliable"):
        node = subprocess.Popen([sys.executable, "-c", RCLPY_NODE_SCRIPT, DTR, str(2 * seconds + 30), reliability])
        client = RclpyClient(reliability)
        if not client.wait_for_node(60) or not _wait(lambda: client.reports, 10.0):
            node.kill()
            print(f"{reliability}: the node process did not appear")
            continue
        before, cpu, start = client.counters(), cpu_seconds(node.pid), time.perf_counter()
        time.sleep(2.0)
        rows = [("idle", (cpu_seconds(node.pid) - cpu) / (time.perf_counter() - start), before, [])]
        for label, with_queries in (("stream only", False), ("stream + one query per frame", True)):
            cpu, start = cpu_seconds(node.pid), time.perf_counter()
            latencies = client.stream(seconds, with_queries)
            load = (cpu_seconds(node.pid) - cpu) / (time.perf_counter() - start)
            after = client.counters()
            rows.append((label, load, {key: after[key] - before[key] for key in after}, latencies))
            before = after
        inside = [a["latency_s"]["frame_to_markers_s"] * 1e3 for a in client.answers if a["status"] == "ok"]
        client.close()
        node.terminate()
        node.wait(30)
        for label, load, counts, latencies in rows:
            timing = f"{_percentile(latencies, 50):>18.1f} / {_percentile(latencies, 90):<10.1f}" if latencies else ""
            print(f"{reliability + ': ' + label:<42}{load * 100:>11.1f}{counts['images']:>10}{counts['processed']:>10}"
                  f"{counts['dropped']:>9}{timing}")
        print(f"{reliability + ': frame->markers inside the node':<42} p50 {_percentile(inside, 50):.2f} ms, "
              f"p90 {_percentile(inside, 90):.2f} ms ({len(inside)} answers; model excluded)")
    print("   images in: colour images the node received of those sent. Fast DDS (Kilted, 3.2) best effort loses most"
          "\n   640x480 rgb8 images between processes on this machine; a reliable camera and sensor_reliability"
          "\n   reliable deliver all. Answers on a lost frame use the previous one: frame->markers then includes its"
          "\n   age.")


def bench_rclpy_cyclone_round_trip(count: int) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from sr_real.spatial_query_node import fill_message

    echo = subprocess.Popen([sys.executable, "-c", ECHO_SCRIPT, os.environ["ROS_DOMAIN_ID"], "60"])
    import rclpy

    node = rclpy.create_node("sr_real_bench_ping")
    qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
    pong = threading.Event()
    received = []
    writer = node.create_publisher(Image, "/bench/ping", qos)
    node.create_subscription(Image, "/bench/pong", lambda msg: (received.append(msg.header.stamp.sec), pong.set()),
                             qos)
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    if not _wait(lambda: writer.get_subscription_count() and node.count_publishers("/bench/pong"), 60.0):
        echo.kill()
        print("\n5b. rclpy <-> Cyclone round trip: the echo process did not appear")
        return
    rgb, _ = scene()
    message, times = fill_message(Image(), image_dict(rgb, header(0))), []
    for index in range(count):
        message.header.stamp.sec = index
        pong.clear()
        start = time.perf_counter()
        writer.publish(message)
        while pong.wait(2.0) and received[-1] != index:
            pong.clear()
        if received and received[-1] == index:
            times.append((time.perf_counter() - start) * 1e3)
    executor.shutdown()
    node.destroy_node()
    echo.kill()
    echo.wait()
    print(f"\n5b. Round trip of a 640x480 rgb8 Image rclpy (Fast DDS) -> Cyclone DDS echo process -> rclpy on loopback "
          f"(reliable), {len(times)} of {count}: p50 {_percentile(times, 50):.2f} ms, "
          f"p90 {_percentile(times, 90):.2f} ms"
          "\n    (compare 4.: the same with Cyclone on both ends)")


def bench_rclpy(seconds: float) -> None:
    try:
        import rclpy
    except ImportError as error:
        print(f"\n5. rclpy: skipped, needs ROS 2 (`make ros` installs it from wheels): {error}")
        return
    rclpy.init()
    try:
        bench_rclpy_node(seconds)
        bench_rclpy_cyclone_round_trip(100)
    finally:
        rclpy.try_shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each 30 Hz stream")
    parser.add_argument("--rclpy-only", action="store_true", help="only section 5")
    args = parser.parse_args()
    if not args.rclpy_only:
        bench_serialisation()
        bench_core_stream(args.seconds)
    if not args.rclpy_only:
        bench_dds_node(args.seconds)
        bench_dds_round_trip(100)
    bench_rclpy(args.seconds)


if __name__ == "__main__":
    main()
