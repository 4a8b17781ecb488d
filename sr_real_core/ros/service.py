"""The spatial query node's core, shared by the rclpy node (`sr_real.spatial_query_node`) and the DDS
transport (`sr_real_core.ros.dds.transport`): both only move messages between their middleware and this class.

- Inputs (`handlers()`, one per `input_endpoints()` entry) are cheap and never block on the model: camera
  messages are checked and paired (`frames.FrameSynchroniser`), queries are parsed, checked against the
  latest frame and queued. Bad messages are logged (throttled) and skipped; nothing raises into the transport.
- One worker thread answers queries, one at a time; at most `queue_size` wait behind it, more are answered
  "busy" at once. A query before the first complete frame is answered "no_frame" with what is missing.
- Outputs go through `publish(key, message_dict)` with the keys of `OUTPUT_ENDPOINTS`, in this order per
  answer: markers, detections, debug image, answer.
"""
from __future__ import annotations

import functools
import json
import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from sr_real_core.errors import describe, guarded
from sr_real_core.geometry import Intrinsics
from sr_real_core.grammar import find_detection
from sr_real_core.inputs import InputError, check_inputs, image_size
from sr_real_core.query import Query, Region
from sr_real_core.region3d import RegionLiftError, lift_region
from sr_real_core.ros import outputs
from sr_real_core.ros.config import SpatialQueryConfig
from sr_real_core.ros.feedback import FeedbackError, RecentIds, parse_feedback
from sr_real_core.ros.frames import CoreImageDecoder, Frame, FrameSynchroniser, ImageDecoder
from sr_real_core.ros.msgs import header_dict, stamp_seconds
from sr_real_core.ros.recorder import QueryRecorder
from sr_real_core.ros.requests import QueryError, QueryRequest, parse_query, resolve_regions

Publish = Callable[[str, Mapping[str, Any]], None]
CLICKED_POINTS_KEPT = 8
LOG_THROTTLE_S = 5.0


class SpatialQueryEngine(Protocol):
    """What the service needs of an inference engine: `sr_real_core.inference.SpatialReasoner.answer`."""

    def answer(self, query: Query) -> Any: ...


@dataclass(frozen=True)
class Endpoint:
    """A topic of the node: `key` names its handler or output, `msgtype` its ROS type ("pkg/msg/Name");
    `sensor` topics use the sensor-data QoS (keep last, volatile, reliability from the parameters), the
    others reliable, keep last 10."""

    key: str
    topic: str
    msgtype: str
    sensor: bool = False


OUTPUT_ENDPOINTS = (
    Endpoint("answer", "~/answer", "std_msgs/msg/String"),
    Endpoint("markers", "~/markers", "visualization_msgs/msg/MarkerArray"),
    Endpoint("detections", "~/detections", "vision_msgs/msg/Detection3DArray"),
    Endpoint("debug_image", "~/debug_image", "sensor_msgs/msg/Image"),
    Endpoint("diagnostics", "/diagnostics", "diagnostic_msgs/msg/DiagnosticArray"),
)


def input_endpoints(config: SpatialQueryConfig) -> list[Endpoint]:
    """The subscriptions a configuration asks for (optional inputs only when their topic is set)."""
    if config.image_transport == "compressed":
        endpoints = [Endpoint("compressed_image", f"{config.image_topic}/compressed",
                              "sensor_msgs/msg/CompressedImage", sensor=True)]
    else:
        endpoints = [Endpoint("image", config.image_topic, "sensor_msgs/msg/Image", sensor=True)]
    endpoints.append(Endpoint("camera_info", config.camera_info_topic, "sensor_msgs/msg/CameraInfo", sensor=True))
    optional = (("depth", config.depth_topic, "sensor_msgs/msg/Image", True),
                ("detections_2d", config.detections_topic, "vision_msgs/msg/Detection2DArray", True),
                ("clicked_point", config.clicked_point_topic, "geometry_msgs/msg/PointStamped", False))
    endpoints += [Endpoint(key, topic, msgtype, sensor) for key, topic, msgtype, sensor in optional if topic]
    endpoints.append(Endpoint("query", "~/query", "std_msgs/msg/String"))
    endpoints.append(Endpoint("feedback", "~/feedback", "std_msgs/msg/String"))
    return endpoints


def load_engine(config: SpatialQueryConfig) -> SpatialQueryEngine:
    """The inference engine the configuration names (loads the model: seconds to minutes)."""
    if not config.model:
        raise ValueError("model: set the checkpoint directory (sr-real model tiny --out DIR writes a test one)")
    from sr_real_core.inference import SpatialReasoner

    return SpatialReasoner.from_pretrained(config.model, backend=config.backend, device=config.device or None,
                                           max_new_tokens=config.max_new_tokens,
                                           constrain_answer=config.constrain_answer)


@dataclass(frozen=True)
class _Job:
    request: QueryRequest
    frame: Frame
    regions: list[Region]
    received_s: float


class _ThrottledLog:
    """Each kind of problem at most once every LOG_THROTTLE_S: a broken camera at 30 Hz must not flood the log,
    yet a new kind of problem shows at once."""

    MAX_KINDS = 256  # forget old kinds rather than grow without bound

    def __init__(self, logger: Any, clock: Callable[[], float]):
        self.logger, self.clock = logger, clock
        self._last: dict[str, float] = {}

    def warning(self, kind: str, text: str) -> None:
        now = self.clock()
        if now - self._last.get(kind, -LOG_THROTTLE_S) >= LOG_THROTTLE_S:
            if len(self._last) >= self.MAX_KINDS:
                self._last.clear()
            self._last[kind] = now
            self.logger.warning(text)


class SpatialQueryService:
    def __init__(self, engine: SpatialQueryEngine, config: SpatialQueryConfig, publish: Publish, *,
                 decoder: ImageDecoder = CoreImageDecoder(), logger: Any = None,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        self.engine, self.config, self.publish, self.decoder = engine, config, publish, decoder
        self.logger = logger or logging.getLogger("sr_real.spatial_query")
        self.clock, self.wall_clock = clock, wall_clock
        self.counters: Counter[str] = Counter()
        self._sync = FrameSynchroniser(slop_s=config.sync_slop_s, with_depth=bool(config.depth_topic))
        self._detections: Any | None = None
        self._clicked: deque[Any] = deque(maxlen=CLICKED_POINTS_KEPT)
        self._lock = threading.Lock()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._outstanding = 0
        self._last_problem: str | None = None
        self._last_latency: dict[str, float] = {}
        self._throttled = _ThrottledLog(self.logger, clock)
        self._worker: threading.Thread | None = None
        self.recorder = QueryRecorder.from_config(config)  # None unless record_dir is set
        self._answered = RecentIds()  # ids that ~/feedback may label

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._worker = threading.Thread(target=self._work, name="sr_real-spatial-query", daemon=True)
        self._worker.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Let the running query finish (up to `timeout_s`), then stop the worker."""
        if self._worker is not None:
            self._jobs.put(None)
            self._worker.join(timeout_s)
            self._worker = None

    # ------------------------------------------------------------------ inputs

    def handlers(self) -> dict[str, Callable[[Any], None]]:
        """Input callbacks by `Endpoint.key`, each guarded: whatever a message does, the callback returns and
        the failure is counted (`count_failure`)."""
        callbacks = {"image": self.on_image, "compressed_image": self.on_compressed_image, "depth": self.on_depth,
                     "camera_info": self.on_camera_info, "detections_2d": self.on_detections,
                     "clicked_point": self.on_clicked_point, "query": self.on_query,
                     "feedback": self.on_feedback}
        return {key: guarded(callback, functools.partial(self.count_failure, key))
                for key, callback in callbacks.items()}

    def on_image(self, msg: Any) -> None:
        self._input("image", lambda now: self._sync.add_colour(msg, compressed=False, now=now))

    def on_compressed_image(self, msg: Any) -> None:
        self._input("compressed_image", lambda now: self._sync.add_colour(msg, compressed=True, now=now))

    def on_depth(self, msg: Any) -> None:
        self._input("depth", lambda now: self._sync.add_depth(msg, now=now))

    def on_camera_info(self, msg: Any) -> None:
        self._input("camera_info", lambda now: self._sync.add_camera_info(msg, now=now))

    def on_detections(self, msg: Any) -> None:
        def store(now: float) -> None:
            self._detections = msg

        self._input("detections_2d", store)

    def on_clicked_point(self, msg: Any) -> None:
        self._input("clicked_point", lambda now: self._clicked.append(msg))

    def on_query(self, msg: Any) -> None:
        """A std_msgs/String query (or its text). Answers busy / no_frame / error at once, else queues it."""
        received, request = self.clock(), None
        try:
            request = parse_query(_query_text(msg, self.config.max_query_bytes), self.config.path_mode)
            with self._lock:
                rejection = self._admit(request, received)
        except QueryError as error:
            rejection = "error", str(error)
        except Exception as error:  # noqa: BLE001 - any query gets an answer, and the node goes on
            rejection = "error", f"{type(error).__name__}: {error}"
        if rejection is not None:
            self._reject(*rejection, request)

    def on_feedback(self, msg: Any) -> None:
        """A std_msgs/String operator label for an answered query (`ros.feedback`); recorded when recording
        (outside the lock: a slow disk must not hold up the camera callbacks)."""
        accepted = []

        def check(now: float) -> None:
            feedback = parse_feedback(str(getattr(msg, "data", msg)))
            if feedback.id not in self._answered:
                raise FeedbackError(f"id: {feedback.id!r} is not among the recently answered query ids")
            accepted.append(feedback)

        self._input("feedback", check)
        if accepted and self.recorder is not None:
            outcome = self._record(lambda: self.recorder.record_feedback(accepted[0]))
            with self._lock:
                self.counters[f"recorder_feedback_{outcome}"] += 1

    def _admit(self, request: QueryRequest, received: float) -> tuple[str, str] | None:
        """Queue the query on the latest frame, or say why not: (status, message). Called under the lock."""
        frame = self._sync.latest
        if frame is None:
            return "no_frame", f"no frame yet: {self._sync.waiting_for()}"
        if self._outstanding > self.config.queue_size:
            return "busy", (f"busy: {self._outstanding} queries running or waiting "
                            f"(queue_size {self.config.queue_size})")
        try:
            regions = resolve_regions(request.regions, frame.intrinsics, frame.frame_id, self._detections,
                                      list(self._clicked))
        except QueryError as error:
            return "error", str(error)
        self._sync.take()
        self._outstanding += 1
        self.counters["queries_queued"] += 1
        self._jobs.put(_Job(request, frame, regions, received))
        return None

    def _input(self, stream: str, add: Callable[[float], None]) -> None:
        with self._lock:
            self.counters[f"{stream}_received"] += 1
            try:
                add(self.clock())
            except Exception as error:  # noqa: BLE001 - a bad message must never take the node down
                self.counters[f"{stream}_skipped"] += 1
                self._last_problem = f"{stream}: skipped a message: {error}"
                # The kind of problem is the text before the error's first colon: the field it names.
                self._throttled.warning(f"{stream}: {str(error).split(':', 1)[0]}", self._last_problem)

    def count_failure(self, stream: str, problem: str) -> None:
        """A failure that escaped a callback, a job, a transport's loop or timer (`<stream>_failed`): counted,
        logged and reported in the diagnostics."""
        with self._lock:
            self.counters[f"{stream}_failed"] += 1
            self._last_problem = f"{stream}: {problem}"
            self._throttled.warning(f"{stream} failed", self._last_problem)

    def _reject(self, status: str, message: str, request: QueryRequest | None = None) -> None:
        with self._lock:
            self.counters[f"queries_{status}"] += 1
            self._throttled.warning(f"query {status}", f"query not answered ({status}): {message}")
        self.publish("answer", {"data": outputs.status_json(status, message, request)})

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._run(job)
            except Exception as error:  # noqa: BLE001 - e.g. publishing failed: the worker goes on
                self.count_failure("worker", describe(error))

    def _run(self, job: _Job) -> None:
        answer, failure = None, ""
        try:
            answer = self._answer(job)
        except InputError as error:
            failure = str(error)
        except Exception as error:  # noqa: BLE001 - one failed query must not stop the worker
            failure = f"{type(error).__name__}: {error}"
            self.logger.error(f"query failed: {failure}")
        finally:
            with self._lock:
                self._outstanding -= 1  # before the answer goes out: its reader may ask again at once
        if answer is None:
            self._reject("error", failure, job.request)
        else:
            self.publish("answer", answer)

    def _answer(self, job: _Job) -> dict[str, str]:
        """Publish the markers, detections and debug image of a query; return its answer message."""
        frame, request = job.frame, job.request
        rgb, depth = frame.decode(self.decoder)
        checked = check_inputs(request.question, *image_size(rgb), depth=depth, intrinsics=frame.intrinsics,
                               boxes=[region.box for region in job.regions])  # as `sr-real ask` checks them
        result = self.engine.answer(Query(request.question, [rgb], depths=[depth], intrinsics=[frame.intrinsics],
                                          regions=job.regions, path=request.path,
                                          answer_type=request.answer_type))
        result.notes = list(dict.fromkeys([*checked.notes, *getattr(result, "notes", [])]))
        centres = _centres(result.detections)
        header = header_dict(frame.stamp, frame.frame_id)
        self.publish("markers", outputs.marker_array(centres, header, self.config.marker_lifetime_s,
                                                     outputs.is_distance_question(request.question)))
        markers_s = self.clock()
        centres = _measured(centres, job.regions, depth, frame.intrinsics)  # after the markers: lifting takes ms
        self.publish("detections", outputs.detection3d_array(centres, header))
        if self.config.publish_debug_image:
            self.publish("debug_image", outputs.debug_image(rgb, job.regions, centres, frame.intrinsics, header))
        latency = {"model_s": float(result.latency_s), "query_to_answer_s": self.clock() - job.received_s,
                   "frame_to_markers_s": markers_s - frame.received_s}
        answer = outputs.answer_json(request, result, centres, job.regions, latency, stamp_seconds(frame.stamp))
        recorded = None if self.recorder is None else self._record(lambda: self.recorder.record_answer(
            json.loads(answer), rgb, depth, frame.intrinsics, stamp_seconds(frame.stamp),
            frame.colour if frame.compressed else None))
        with self._lock:
            self.counters["queries_answered"] += 1
            self._answered.add(request.request_id)
            self._last_latency = latency
            if recorded:
                self.counters[f"recorder_{recorded}"] += 1
        return {"data": answer}

    def _record(self, write: Callable[[], str]) -> str:
        """The recorder's outcome of `write` (recorded, full), or "error": a failing disk never fails an answer."""
        try:
            return write()
        except OSError as error:
            with self._lock:
                self._throttled.warning("recorder", f"recorder: could not write: {error}")
            return "error"

    # ------------------------------------------------------------------ diagnostics

    def diagnostics(self) -> dict[str, Any]:
        """A diagnostic_msgs/DiagnosticArray dict: WARN while there is no frame or after skipped messages
        (since the last report), OK otherwise."""
        with self._lock:
            waiting, problem = self._sync.waiting_for(), self._last_problem
            self._last_problem = None
            values = {**dict(sorted(self.counters.items())),
                      **{f"frames_{key}": value for key, value in self._frame_counts().items()},
                      "queries_outstanding": self._outstanding,
                      **{f"last_{key}": f"{value:.4f}" for key, value in self._last_latency.items()}}
        level = outputs.WARN if waiting or problem else outputs.OK
        message = "; ".join(text for text in (waiting, problem) if text) or "ready"
        return outputs.diagnostic_array(level, message, values, self.wall_clock())

    def frame_counts(self) -> dict[str, int]:
        """Frames synchronised, processed (used by a query) and dropped (replaced before any query used them)."""
        with self._lock:
            return self._frame_counts()

    def _frame_counts(self) -> dict[str, int]:
        return {"synchronised": self._sync.synchronised, "processed": self._sync.processed,
                "dropped": self._sync.dropped}


def _query_text(msg: Any, max_bytes: int) -> str:
    """The text of a std_msgs/String query (or a str); QueryError beyond `max_bytes` (UTF-8), unread."""
    text = getattr(msg, "data", msg)
    if not isinstance(text, str):
        raise QueryError(f"query: expected text, got {type(text).__name__}")
    size = len(text) if len(text) > max_bytes else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise QueryError(f"query of {size} bytes or more exceeds max_query_bytes ({max_bytes})")
    return text


def _centres(detections: Sequence[Any]) -> list[outputs.Centre]:
    """The model's detections with finite centres."""
    centres = [outputs.Centre(d.name, d.ref, tuple(float(c) for c in d.center_3d)) for d in detections]
    return [centre for centre in centres if np.all(np.isfinite(centre.center))]


def _measured(centres: list[outputs.Centre], regions: Sequence[Region], depth: np.ndarray | None,
              intrinsics: Intrinsics) -> list[outputs.Centre]:
    """The centres, those naming a query region with the region's centre and extent measured from depth."""
    if depth is None:
        return centres
    measured = list(centres)
    for region in regions:
        centre = find_detection(measured, region.ref)
        if centre is None or centre.measured is not None:
            continue
        try:
            lifted = lift_region(depth, intrinsics, box=region.box).to_dict()
        except RegionLiftError:
            continue  # no usable depth in the region: the model's centre stands alone
        measured[measured.index(centre)] = replace(centre, measured=lifted)
    return measured
