"""Core figures, side by side in one run: reward throughput and region-to-3D latency.

    .venv/bin/python benchmarks/bench_core.py [--repeats N]

Prints completions/s for each reward function (TRL batch call, mixed LOR/DTR/malformed completions) and the
latency of `lift_region` on a 640x480 depth map (box, mask, noisy box with a background wall).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from sr_real_core.geometry import Intrinsics
from sr_real_core.grammar import Detection, render_dtr, render_lor
from sr_real_core.region3d import lift_region
from sr_real_core.rewards import accuracy_reward, detection_reward, format_reward, sr_real_reward


def _reward_batch(size: int, rng: np.random.Generator) -> tuple[list[str], dict[str, list]]:
    completions, columns = [], {"path": [], "solution": [], "answer_type": [], "gt_centers": []}
    for i in range(size):
        truth = float(rng.uniform(0.2, 5.0))
        centers = [rng.uniform(-1, 3, 3).round(2) for _ in range(2)]
        kind = i % 3
        if kind == 0:
            dets = [Detection("chair", "red bbox", tuple(centers[0])), Detection("table", "blue bbox", tuple(centers[1]))]
            completions.append(render_dtr(dets, "The centres give the distance." * 5, f"{truth * 1.1:.2f} m"))
        elif kind == 1:
            completions.append(render_lor("The chair is left of the table. " * 8, f"{truth * 39.37:.0f} inches"))
        else:
            completions.append("<think>unterminated " * 10 + f"<answer>{truth}</answer>")
        columns["path"].append("auto")
        columns["solution"].append(truth)
        columns["answer_type"].append("numeric")
        columns["gt_centers"].append([{"ref": "red bbox", "center": centers[0].tolist()},
                                      {"ref": "blue bbox", "center": centers[1].tolist()}])
    return completions, columns


def bench_rewards(repeats: int) -> None:
    completions, columns = _reward_batch(512, np.random.default_rng(0))
    print(f"{'reward (batch of 512, mixed paths)':<40}{'completions/s':>15}")
    for reward in (format_reward, accuracy_reward, detection_reward, sr_real_reward):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            reward(completions, **columns)
            times.append(time.perf_counter() - start)
        print(f"{reward.__name__:<40}{len(completions) / statistics.median(times):>15,.0f}")


def _scene_640x480(rng: np.random.Generator) -> tuple[np.ndarray, Intrinsics, list[int], np.ndarray]:
    intrinsics = Intrinsics(fx=525.0, fy=525.0, cx=319.5, cy=239.5, width=640, height=480)
    depth = np.full((480, 640), 3.0, np.float32)  # a wall 3 m away
    box = [220, 140, 420, 340]
    mask = np.zeros_like(depth, bool)
    mask[170:310, 250:390] = True
    depth[mask] = 1.5 + rng.normal(0, 0.005, mask.sum())  # an object in front of it, with sensor noise
    holes = rng.random(depth.shape) < 0.1
    depth[holes] = 0.0  # 10% invalid pixels
    return depth, intrinsics, box, mask


def bench_lift(repeats: int) -> None:
    depth, intrinsics, box, mask = _scene_640x480(np.random.default_rng(0))
    cases = {"box 200x200 (object + wall)": {"box": box}, "mask 140x140": {"mask": mask},
             "box + mask": {"box": box, "mask": mask}}
    print(f"\n{'region-to-3D, 640x480 depth':<40}{'median ms':>15}{'p95 ms':>10}")
    for name, region in cases.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            lift_region(depth, intrinsics, **region)
            times.append((time.perf_counter() - start) * 1e3)
        print(f"{name:<40}{statistics.median(times):>15.2f}{np.percentile(times, 95):>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    bench_rewards(args.repeats)
    bench_lift(args.repeats * 5)


if __name__ == "__main__":
    main()
