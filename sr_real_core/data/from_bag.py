"""`sr-real data from-bag`: a recorded robot camera stream -> a robot dataset folder (`data.robot`).

    sr-real data from-bag BAG --image-topic /camera/color/image_raw --info-topic /camera/color/camera_info \
        [--depth-topic /camera/aligned_depth_to_color/image_raw] [--regions-topic /detections] \
        [--answers-topic /spatial_query_node/answer] [--feedback-topic /spatial_query_node/feedback] --out DIR

Bags: rosbag2 (sqlite3, mcap, split into several files) and ROS 1 bags, read with `rosbags`. Two passes:
the first reads every message of the chosen topics and indexes stamps, calibrations, detections and answers
(small); the matching decides each colour frame's fate; the second decodes and writes only the kept frames.

Matching, per colour frame in stamp order (header stamps, not recording times):
- camera_info: the one nearest in stamp (calibration is static, so any gap unless `info_slop_s` is set);
  none -> skipped "no camera_info".
- depth (with `--depth-topic`): the depth image nearest in stamp within `slop_s`; none at all in the bag ->
  "no depth"; none within the slop -> "unsynchronised".
- rate (`rate_hz`): at most one frame per 1/rate_hz seconds of stamps -> else "rate".
- motion (`min_change`): the frame's 32x24 grey thumbnail must differ from the last kept frame's by at least
  this mean absolute difference (0-255) -> else "camera still" (no odometry needed).
Objects: the nearest `vision_msgs/Detection2DArray` within `slop_s` (named by best class id) and the regions of
the node's answers whose `frame_stamp` is this frame's (named by the model's detection). With depth, their
centres and sizes are lifted from the depth map (`region3d.lift_region`) and marked measured, not ground truth;
without depth, the report says 3D labels are unavailable.

Honest accounting: `import_report.json` (and the printed summary) gives, per topic, the messages the bag's
metadata lists and the messages read, corrupt ones (undecodable) separately; per colour frame, imported or the
reason it was skipped (the ones above, and "corrupt message", "size mismatch"). The output is written to a
temporary folder beside `--out` and renamed when complete: a failure leaves nothing behind.
"""
from __future__ import annotations

import bisect
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sr_real_core.data import robot
from sr_real_core.errors import staged_output
from sr_real_core.geometry import CalibrationError, Intrinsics
from sr_real_core.ros.bag import open_bag, topic_name
from sr_real_core.ros.feedback import FeedbackError, parse_feedback
from sr_real_core.ros.msgs import (ImageMessageError, camera_info_intrinsics, compressed_to_rgb, depth_to_metres,
                                   detection_box, detection_label, image_to_rgb, stamp_seconds)
from sr_real_core.scenes import write_scenes

REPORT_FILE = "import_report.json"
IMAGE, COMPRESSED, INFO, DEPTH = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", \
    "sensor_msgs/msg/CameraInfo", "sensor_msgs/msg/Image"
DETECTIONS, STRING = "vision_msgs/msg/Detection2DArray", "std_msgs/msg/String"
THUMBNAIL = (32, 24)
STAMP_MATCH_S = 1e-6  # an answer's frame_stamp names the frame whose stamp it is


class BagImportError(ValueError):
    """A bag or option that cannot give a dataset; one line naming the input and what is wrong."""


@dataclass(frozen=True)
class BagImportConfig:
    image_topic: str
    info_topic: str
    depth_topic: str | None = None
    regions_topic: str | None = None  # vision_msgs/Detection2DArray
    answers_topic: str | None = None  # the node's ~/answer (std_msgs/String JSON)
    feedback_topic: str | None = None  # the node's ~/feedback (std_msgs/String JSON)
    slop_s: float = 0.05
    info_slop_s: float | None = None
    rate_hz: float | None = None
    min_change: float | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        for name in ("slop_s", "info_slop_s", "rate_hz", "min_change"):
            value = getattr(self, name)
            if value is not None and not (value >= 0 and np.isfinite(value)):
                raise BagImportError(f"--{name.removesuffix('_s').replace('_', '-')}: expected a non-negative "
                                     f"number, got {value!r}")
        if self.rate_hz == 0:
            raise BagImportError("--rate: expected a positive number of frames per second, got 0")
        if self.max_frames is not None and self.max_frames < 1:
            raise BagImportError(f"--max-frames: expected a positive integer, got {self.max_frames}")


@dataclass
class _Index:
    """What the first pass keeps: stamps of the image streams, and the small messages themselves."""

    colour: list[tuple[float, int]] = field(default_factory=list)  # (stamp, ordinal on the topic)
    depth: list[tuple[float, int]] = field(default_factory=list)
    infos: list[tuple[float, Intrinsics]] = field(default_factory=list)
    detections: list[tuple[float, list[robot.BoxObject]]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    feedback: dict[str, dict[str, Any]] = field(default_factory=dict)
    topics: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class _Plan:
    colour: int  # ordinal
    stamp: float
    intrinsics: Intrinsics
    depth: int | None


def _roles(connections: dict[str, str], counts: dict[str, int], config: BagImportConfig) -> dict[str, str]:
    """{topic: role} for the configured topics, each checked against the bag; BagImportError names a wrong one."""
    listing = ", ".join(f"{topic} ({kind.split('/')[-1]}, {counts.get(topic, 0)})"
                        for topic, kind in sorted(connections.items())) or "no topics"

    def find(option: str, topic: str | None, kinds: tuple[str, ...]) -> str | None:
        if topic is None:
            return None
        for candidate in (topic_name(topic), topic_name(topic) + "/compressed"):
            if connections.get(candidate) in kinds:
                return candidate
        found = connections.get(topic_name(topic))
        problem = f"is a {found}, expected {' or '.join(kinds)}" if found else "is not in the bag"
        raise BagImportError(f"{option} {topic}: {problem}; the bag has {listing}")

    roles = {find("--image-topic", config.image_topic, (IMAGE, COMPRESSED)): "colour",
             find("--info-topic", config.info_topic, (INFO,)): "info"}
    optional = (("--depth-topic", config.depth_topic, (DEPTH,), "depth"),
                ("--regions-topic", config.regions_topic, (DETECTIONS,), "detections"),
                ("--answers-topic", config.answers_topic, (STRING,), "answers"),
                ("--feedback-topic", config.feedback_topic, (STRING,), "feedback"))
    for option, topic, kinds, role in optional:
        found = find(option, topic, kinds)
        if found is not None:
            if found in roles:
                raise BagImportError(f"{option} {topic}: already used as the {roles[found]} topic")
            roles[found] = role
    return roles


def _messages(bag: Path, roles: dict[str, str], index: _Index | None = None) -> Iterator[tuple[str, int, Any]]:
    """(role, ordinal on its topic, message) of the chosen topics in recorded order; an undecodable message is
    counted in `index` (when given) and yields None."""
    ordinals: Counter = Counter()
    with open_bag(bag) as reader:
        chosen = [c for c in reader.connections if topic_name(c.topic) in roles]
        for connection, raw in _raw_messages(bag, reader, chosen):
            topic = topic_name(connection.topic)
            ordinal = ordinals[topic]
            ordinals[topic] += 1
            try:
                message = reader.deserialize(raw, connection.msgtype)
            except Exception:  # noqa: BLE001 - rosbags raises several types for a corrupt message
                message = None
            if index is not None:
                index.topics[topic]["read"] += 1
                index.topics[topic]["corrupt"] += message is None
            yield roles[topic], ordinal, message


def _raw_messages(bag: Path, reader: Any, connections: list[Any]) -> Iterator[tuple[Any, bytes]]:
    """(connection, raw bytes) in recorded order; a storage that breaks midway (truncated file, bad chunk)
    is a BagImportError naming how far it got, never a partial dataset."""
    iterator, count = iter(reader.messages(connections=connections)), 0
    while True:
        try:
            connection, _, raw = next(iterator)
        except StopIteration:
            return
        except Exception as error:  # noqa: BLE001 - storage plugins raise many types
            raise BagImportError(f"{bag}: the bag cannot be read past message {count}: {error}") from error
        count += 1
        yield connection, raw


def _index(bag: Path, roles: dict[str, str], metadata_counts: dict[str, int]) -> _Index:
    index = _Index(topics={topic: {"role": role, "in_metadata": metadata_counts.get(topic), "read": 0,
                                   "corrupt": 0} for topic, role in roles.items()})
    for role, ordinal, message in _messages(bag, roles, index):
        if message is None:
            index.problems[f"{role}: corrupt message"] += 1
        elif role in ("colour", "depth"):
            getattr(index, role).append((stamp_seconds(message.header.stamp), ordinal))
        elif role == "info":
            try:
                index.infos.append((stamp_seconds(message.header.stamp), camera_info_intrinsics(message)))
            except (CalibrationError, ValueError):
                index.problems["camera_info: unusable calibration"] += 1
        elif role == "detections":
            objects = [robot.BoxObject(detection_label(d) or "object", detection_box(d), "detections",
                                       {"detection_id": str(d.id)} if str(d.id) else {})
                       for d in message.detections]
            index.detections.append((stamp_seconds(message.header.stamp), objects))
        else:
            _json_message(index, role, message.data)
    for stream in (index.colour, index.depth, index.infos, index.detections):
        stream.sort(key=lambda item: item[0])
    return index


def _json_message(index: _Index, role: str, text: str) -> None:
    if role == "feedback":
        try:
            feedback = parse_feedback(text)
        except FeedbackError as error:
            index.problems[f"feedback: {str(error).split(':', 1)[0]}"] += 1
        else:
            index.feedback[feedback.id] = feedback.to_dict()  # the latest word on a query wins
        return
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        index.problems["answers: not JSON"] += 1
        return
    if isinstance(record, dict) and record.get("status") == "ok" and isinstance(record.get("frame_stamp"), (int, float)):
        index.answers.append(record)
    else:
        index.problems["answers: not an answered query (status other than ok)"] += 1


def _nearest(stream: list[tuple[float, Any]], stamp: float) -> tuple[float, Any] | None:
    """(gap, value) of the entry of a stamp-sorted stream nearest to `stamp`; None for an empty stream."""
    if not stream:
        return None
    position = bisect.bisect_left(stream, stamp, key=lambda item: item[0])
    candidates = stream[max(position - 1, 0):position + 1]
    best = min(candidates, key=lambda item: abs(item[0] - stamp))
    return abs(best[0] - stamp), best[1]


def plan_frames(index: _Index, config: BagImportConfig, skipped: Counter) -> list[_Plan]:
    """The colour frames to decode, with their calibration and depth; `skipped` gains the reasons of the rest
    (the motion rule needs pixels and is applied while writing)."""
    plans, last_kept = [], None
    for stamp, ordinal in index.colour:
        info = _nearest(index.infos, stamp)
        if info is None or (config.info_slop_s is not None and info[0] > config.info_slop_s):
            skipped["no camera_info" if info is None else "camera_info unsynchronised"] += 1
            continue
        depth = None
        if config.depth_topic:
            match = _nearest(index.depth, stamp)
            if match is None or match[0] > config.slop_s:
                skipped["no depth" if match is None else "unsynchronised"] += 1
                continue
            depth = match[1]
        if config.rate_hz and last_kept is not None and stamp - last_kept < 1.0 / config.rate_hz:
            skipped["rate"] += 1
            continue
        last_kept = stamp
        plans.append(_Plan(ordinal, stamp, info[1], depth))
    return plans


class _Writer:
    """Decodes and writes the planned frames into `folder` (second pass)."""

    def __init__(self, folder: Path, index: _Index, config: BagImportConfig, bag: Path):
        self.folder, self.index, self.config, self.bag = folder, index, config, bag
        self.scenes, self.skipped, self.counts, self.queries = [], Counter(), Counter(), Counter()
        self._last_thumbnail: np.ndarray | None = None
        self._answers = defaultdict(list)
        for answer in index.answers:
            self._answers[round(float(answer["frame_stamp"]) / STAMP_MATCH_S)].append(answer)
        (folder / robot.IMAGES_DIR).mkdir()
        if config.depth_topic:
            (folder / robot.DEPTH_DIR).mkdir()

    def frame(self, plan: _Plan, colour: Any, compressed: bool, depth_msg: Any | None) -> None:
        if self.config.max_frames is not None and len(self.scenes) >= self.config.max_frames:
            self.skipped["max_frames"] += 1
            return
        try:
            rgb = compressed_to_rgb(colour) if compressed else image_to_rgb(colour)
            depth = None if depth_msg is None else depth_to_metres(depth_msg)
        except ImageMessageError as error:
            self.skipped[f"undecodable image ({str(error).split(':', 1)[0]})"] += 1
            return
        size = (plan.intrinsics.height, plan.intrinsics.width)
        if rgb.shape[:2] != size or (depth is not None and depth.shape != size):
            self.skipped["size mismatch (image, depth and camera_info differ)"] += 1
            return
        if not self._moved(rgb):
            self.skipped["camera still"] += 1
            return
        self._write(plan, rgb, depth, colour if compressed else None)

    def _moved(self, rgb: np.ndarray) -> bool:
        if self.config.min_change is None:
            return True
        thumbnail = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), THUMBNAIL, interpolation=cv2.INTER_AREA)
        thumbnail = thumbnail.astype(np.float32)
        if self._last_thumbnail is not None and np.abs(thumbnail - self._last_thumbnail).mean() < self.config.min_change:
            return False
        self._last_thumbnail = thumbnail
        return True

    def _write(self, plan: _Plan, rgb: np.ndarray, depth: np.ndarray | None, compressed: Any | None) -> None:
        stem = f"{len(self.scenes):06d}"
        image = robot.save_colour(self.folder, stem, rgb, compressed)
        depth_path = None if depth is None else robot.save_depth(self.folder, stem, depth)
        boxes = []
        if self.config.regions_topic:
            match = _nearest(self.index.detections, plan.stamp)
            boxes += match[1] if match is not None and match[0] <= self.config.slop_s else []
        answers = self._answers.get(round(plan.stamp / STAMP_MATCH_S), [])
        for answer in answers:
            boxes += robot.query_objects(answer)
        objects = robot.scene_objects(boxes, depth, plan.intrinsics, self.counts)
        queries = [robot.query_record(answer) | {"feedback": robot.feedback_for(answer, self.index.feedback)}
                   for answer in answers]
        self.queries["on_imported_frames"] += len(queries)
        self.queries["with_feedback"] += sum(q["feedback"] is not None for q in queries)
        extra = {"source": {"bag": self.bag.name, "topic_ordinal": plan.colour}} | ({"queries": queries} if queries else {})
        self.scenes.append(robot.frame_scene(f"{self.bag.name}-{stem}", image, plan.intrinsics, depth_path, objects,
                                             plan.stamp, **extra))


def _second_pass(bag: Path, roles: dict[str, str], plans: list[_Plan], writer: _Writer, compressed: bool) -> None:
    """Decode the planned frames in recorded order, holding a colour image until its depth image has come
    (and depth images until their colour image has): buffers stay within the sync window."""
    by_colour = {plan.colour: plan for plan in plans}
    wanted_depth = Counter(plan.depth for plan in plans if plan.depth is not None)
    colours: dict[int, Any] = {}
    depths: dict[int, Any] = {}
    for role, ordinal, message in _messages(bag, roles):
        if role == "colour" and ordinal in by_colour:
            colours[ordinal] = message
        elif role == "depth" and wanted_depth[ordinal]:
            depths[ordinal] = message
        else:
            continue
        for ready in [o for o in colours if by_colour[o].depth is None or by_colour[o].depth in depths]:
            plan = by_colour[ready]
            writer.frame(plan, colours.pop(ready), compressed, depths.get(plan.depth))
            if plan.depth is not None:
                wanted_depth[plan.depth] -= 1
                if not wanted_depth[plan.depth]:
                    depths.pop(plan.depth)
    writer.scenes.sort(key=lambda scene: scene.extra["stamp"])


def import_bag(bag: str | Path, out: str | Path, config: BagImportConfig) -> dict[str, Any]:
    """Import `bag` into the dataset folder `out` (see the module docstring); returns the import report.
    Raises BagImportError (or ros.bag.BagError) for an unusable bag or option, leaving nothing behind."""
    bag, out = Path(bag), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BagImportError(f"--out {out}: exists and is not empty; choose a new folder")
    began = time.perf_counter()
    with open_bag(bag) as reader:
        connections = {topic_name(c.topic): c.msgtype for c in reader.connections}
        metadata_counts = {topic_name(topic): info.msgcount for topic, info in reader.topics.items()}
    roles = _roles(connections, metadata_counts, config)
    index = _index(bag, roles, metadata_counts)
    skipped = Counter({"corrupt message": index.problems.get("colour: corrupt message", 0)})
    plans = plan_frames(index, config, skipped)
    compressed = connections[next(t for t, r in roles.items() if r == "colour")] == COMPRESSED
    with staged_output(out, folder=True) as staging:  # renamed into place only when complete
        writer = _Writer(staging, index, config, bag)
        _second_pass(bag, roles, plans, writer, compressed)
        skipped += writer.skipped
        report = _report(bag, config, index, writer, skipped, time.perf_counter() - began)
        if not writer.scenes:
            reasons = ", ".join(f"{n} {reason}" for reason, n in skipped.items() if n) or "no colour messages"
            raise BagImportError(f"{bag}: no frame could be imported ({reasons})")
        write_scenes(staging / robot.SCENES_FILE, writer.scenes)
        (staging / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _report(bag: Path, config: BagImportConfig, index: _Index, writer: _Writer, skipped: Counter,
            seconds: float) -> dict[str, Any]:
    topics = index.topics
    complete = all(t["in_metadata"] is None or t["read"] == t["in_metadata"] for t in topics.values())
    depth_note = (robot.MEASURED + " (lifted from depth, not ground truth)" if config.depth_topic
                  else robot.UNAVAILABLE + " (no depth topic: objects have 2D boxes only)")
    return {
        "bag": str(bag), "config": asdict(config), "topics": topics, "complete": complete,
        "frames": {"colour_messages": len(index.colour) + index.problems.get("colour: corrupt message", 0),
                   "imported": len(writer.scenes), "skipped": dict(sorted((k, v) for k, v in skipped.items() if v))},
        "labels_3d": depth_note,
        "objects": dict(sorted(writer.counts.items())),
        "queries": {"answered_in_bag": len(index.answers), **writer.queries, "feedback_in_bag": len(index.feedback)},
        "problems": dict(sorted(index.problems.items())),
        "seconds": round(seconds, 3),
        "frames_per_s": round(len(writer.scenes) / seconds, 2) if seconds > 0 else None,
    }


def summary(report: dict[str, Any]) -> str:
    """One line per fact a user checks after an import."""
    frames = report["frames"]
    skipped = ", ".join(f"{n} {reason}" for reason, n in frames["skipped"].items()) or "none"
    topics = "; ".join(f"{topic}: read {t['read']}" + (f" of {t['in_metadata']} in the metadata"
                                                         if t["in_metadata"] is not None else "")
                       + (f", {t['corrupt']} corrupt" if t["corrupt"] else "") for topic, t in report["topics"].items())
    lines = [f"imported {frames['imported']} of {frames['colour_messages']} colour frames "
             f"({report['frames_per_s']} frames/s); skipped: {skipped}",
             f"messages: {topics}" + ("" if report["complete"] else "  <- fewer than the metadata lists"),
             f"3D labels: {report['labels_3d']}; objects: {json.dumps(report['objects'])}"]
    if report["problems"]:
        lines.append(f"problems: {json.dumps(report['problems'])}")
    return "\n".join(lines)
