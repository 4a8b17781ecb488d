"""A stand-in inference engine: every question gets the same completion, parsed exactly as the real engine
parses (`SpatialReasoner`), after an optional delay or until a gate opens. It measures and tests the node
without model time: transports, queueing, markers (`benchmarks/bench_ros.py`, `tests/test_ros_*.py`)."""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sr_real_core.inference import SpatialAnswer, SpatialReasoner, prompt_path


class ScriptedEngine:
    def __init__(self, completion: str, *, delay_s: float = 0.0, gate: threading.Event | None = None,
                 gate_timeout_s: float = 30.0):
        self.completion, self.delay_s, self.gate, self.gate_timeout_s = completion, delay_s, gate, gate_timeout_s
        self.calls: list[dict[str, Any]] = []

    def ask(self, question: str, images: Any, *, depth: Any = None, intrinsics: Any = None,
            regions: Sequence[Mapping[str, Any]] = (), path: str = "reference",
            answer_type: str | None = None) -> SpatialAnswer:
        start = time.perf_counter()
        self.calls.append({"question": question, "image_shape": getattr(images, "shape", None),
                           "depth_shape": getattr(depth, "shape", None), "intrinsics": intrinsics,
                           "regions": list(regions), "path": path, "answer_type": answer_type})
        if self.gate is not None:
            self.gate.wait(self.gate_timeout_s)
        if self.delay_s:
            time.sleep(self.delay_s)
        answer = SpatialReasoner._parse(self.completion, prompt_path(path, bool(regions)), answer_type)
        answer.latency_s = time.perf_counter() - start
        return answer
