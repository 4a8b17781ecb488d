"""A stand-in inference engine: every question gets the same completion, parsed exactly as the real engine
parses (`inference.parse_spatial_answer`), after an optional delay or until a gate opens. It measures and
tests the node without model time: transports, queueing, markers (`benchmarks/bench_ros.py`,
`tests/test_ros_*.py`)."""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sr_real_core.inference import SpatialAnswer, parse_spatial_answer
from sr_real_core.query import DEFAULT_PATH_MODE, Query, Region, prompt_path


class ScriptedEngine:
    def __init__(self, completion: str, *, delay_s: float = 0.0, gate: threading.Event | None = None,
                 gate_timeout_s: float = 30.0):
        self.completion, self.delay_s, self.gate, self.gate_timeout_s = completion, delay_s, gate, gate_timeout_s
        self.calls: list[dict[str, Any]] = []

    def answer(self, query: Query) -> SpatialAnswer:
        return self.ask(query.question, query.images[0], depth=(query.depths or [None])[0],
                        intrinsics=(query.intrinsics or [None])[0], regions=query.regions, path=query.path,
                        answer_type=query.answer_type)

    def ask(self, question: str, images: Any, *, depth: Any = None, intrinsics: Any = None,
            regions: Sequence[Region | Mapping[str, Any]] = (), path: str = DEFAULT_PATH_MODE,
            answer_type: str | None = None) -> SpatialAnswer:
        start = time.perf_counter()
        regions = [Region.from_value(region) for region in regions]
        self.calls.append({"question": question, "image_shape": getattr(images, "shape", None),
                           "depth_shape": getattr(depth, "shape", None), "intrinsics": intrinsics,
                           "regions": [{"image_index": r.image_index, "box": list(r.box)} for r in regions],
                           "path": path, "answer_type": answer_type})
        if self.gate is not None:
            self.gate.wait(self.gate_timeout_s)
        if self.delay_s:
            time.sleep(self.delay_s)
        answer = parse_spatial_answer(self.completion, prompt_path(path, bool(regions)), answer_type)
        answer.latency_s = time.perf_counter() - start
        return answer
