"""The node's recorder: every answered query, with what the model saw, into a robot dataset folder (`data.robot`).

On with the node parameter `record_dir` (a folder; created if missing, appended to if it holds a dataset), bounded
by `record_max_mb`. Per answered query: the colour frame (the camera's JPEG/PNG bytes when it sent compressed
images, else PNG), the depth map (16-bit mm PNG), the intrinsics, the query's regions as objects (centre and size
measured from depth, marked measured), and the model's answer, as one scene record appended to `scenes.jsonl`;
operator feedback (`ros.feedback`) is appended to `feedback.jsonl`. `sr-real data labels DIR` turns the folder
into training records.

Bounded disk use: files are encoded in memory first; a record that would take the folder past `max_bytes`
is not written (the node counts `recorder_full`) and nothing is deleted: the operator decides what to keep.
Crash safety: image files are written under temporary names and renamed, then the record line is appended
with one write and fsync'd; a record line never names a file that is not complete.
"""
from __future__ import annotations

import json
import os
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from sr_real_core.data import robot
from sr_real_core.geometry import Intrinsics
from sr_real_core.ros.feedback import Feedback

RECORDED, FULL = "recorded", "full"


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


class QueryRecorder:
    def __init__(self, folder: str | Path, max_bytes: int):
        self.folder, self.max_bytes = Path(folder), int(max_bytes)
        for sub in (robot.IMAGES_DIR, robot.DEPTH_DIR):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.used_bytes = _folder_bytes(self.folder)
        self._lock = threading.Lock()  # answers (worker thread) and feedback (a callback) both append
        self._run = uuid.uuid4().hex[:8]  # scene ids stay unique across restarts into the same folder
        self._count = 0

    @classmethod
    def from_config(cls, config: Any) -> QueryRecorder | None:
        """The recorder a node configuration asks for (`record_dir`, `record_max_mb`), or None when off."""
        if not config.record_dir:
            return None
        return cls(config.record_dir, int(config.record_max_mb * 1024 * 1024))

    def record_answer(self, answer: dict[str, Any], rgb: np.ndarray, depth: np.ndarray | None,
                      intrinsics: Intrinsics, stamp: float, compressed: Any | None = None) -> str:
        """Record one answered query (`answer`: the ~/answer JSON as a dict); RECORDED or FULL."""
        with self._lock:
            stem = f"{self._run}-{self._count:06d}"
            files = {robot.IMAGES_DIR: robot.encode_colour(rgb, compressed)}
            if depth is not None:
                files[robot.DEPTH_DIR] = (".png", robot.encode_depth(depth))
            objects = robot.scene_objects(robot.query_objects(answer), depth, intrinsics, Counter())
            paths = {sub: f"{sub}/{stem}{suffix}" for sub, (suffix, _) in files.items()}
            scene = robot.frame_scene(f"rec-{stem}", paths[robot.IMAGES_DIR], intrinsics, paths.get(robot.DEPTH_DIR),
                                      objects, stamp, queries=[robot.query_record(answer)])
            line = json.dumps(scene.to_record(), ensure_ascii=False) + "\n"
            size = sum(len(data) for _, data in files.values()) + len(line.encode("utf-8"))
            if self.used_bytes + size > self.max_bytes:
                return FULL
            for sub, (_, data) in files.items():
                _write_atomic(self.folder / paths[sub], data)
            self._append(robot.SCENES_FILE, line)
            self.used_bytes += size
            self._count += 1
            return RECORDED

    def record_feedback(self, feedback: Feedback) -> str:
        line = json.dumps(feedback.to_dict(), ensure_ascii=False) + "\n"
        with self._lock:
            if self.used_bytes + len(line.encode("utf-8")) > self.max_bytes:
                return FULL
            self._append(robot.FEEDBACK_FILE, line)
            self.used_bytes += len(line.encode("utf-8"))
            return RECORDED

    def _append(self, name: str, line: str) -> None:
        descriptor = os.open(self.folder / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line.encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
