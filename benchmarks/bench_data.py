"""Data-engine figures: synthetic scenes/s (rendering alone vs the whole pipeline), QA records/s, mixture build
time, questions per family.

    .venv/bin/python benchmarks/bench_data.py [--scenes N] [--sizes WxH,WxH] [--per-scene K] [--workers W]

For each size (default 320x240 and 640x480) renders N scenes into a temporary directory and reports the time
spent in pybullet's renderer alone next to the whole pipeline (physics settling, annotation, checks, files).
Then generates K questions per scene (marked images included) and builds a mixture with the default proportions.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from sr_real_core.data.mixture import MixtureConfig, build_mixture
from sr_real_core.data.qa import QAConfig, generate_qa, load_qa
from sr_real_core.data import synth
from sr_real_core.data.synth import SynthConfig, synthesize


def _timed_renderer() -> list[float]:
    """Wrap the renderer so its share of the pipeline can be reported (in-process: run with one worker)."""
    spent: list[float] = []
    render = synth._render

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return render(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    synth._render = timed
    return spent


def bench_synth(num_scenes: int, width: int, height: int, out_dir: Path) -> Path:
    render_times = _timed_renderer()
    start = time.perf_counter()
    scenes = synthesize(SynthConfig(num_scenes=num_scenes, width=width, height=height, workers=1), out_dir,
                        progress=False)
    total_s = time.perf_counter() - start
    render_s = sum(render_times)
    print(f"synth  {width}x{height}: {num_scenes / total_s:6.2f} scenes/s whole pipeline "
          f"({total_s / num_scenes * 1000:.0f} ms/scene), rendering alone {render_s / num_scenes * 1000:.0f} ms/scene "
          f"over {len(render_times)} renders ({render_s / total_s:.0%} of the pipeline)")
    return scenes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument("--sizes", default="320x240,640x480")
    parser.add_argument("--per-scene", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for width, height in sizes:
            scenes = bench_synth(args.scenes, width, height, root / f"synth-{width}x{height}")
        if args.workers > 1:
            start = time.perf_counter()
            synthesize(SynthConfig(num_scenes=args.scenes, width=width, height=height, workers=args.workers),
                       root / "synth-workers", progress=False)
            print(f"synth  {width}x{height}, {args.workers} workers: "
                  f"{args.scenes / (time.perf_counter() - start):6.2f} scenes/s")
        stats = json.loads((scenes.parent / "synth_stats.json").read_text())

        start = time.perf_counter()
        qa_path = generate_qa(scenes, root / "qa", QAConfig(per_scene=args.per_scene), progress=False)
        qa_s = time.perf_counter() - start
        records = load_qa(qa_path)

        start = time.perf_counter()
        build_mixture(MixtureConfig(scenes=[str(scenes)], out_dir=str(root / "mixture"),
                                    qa=QAConfig(per_scene=args.per_scene)), progress=False)
        build_s = time.perf_counter() - start

    print(f"objects in the last synth run: {stats['objects']} kept, dropped {stats['dropped']}")
    print(f"qa     {len(records)} questions: {len(records) / qa_s:8.0f} records/s (marked images included)")
    print(f"build  mixture of {args.scenes} scenes: {build_s:.2f} s")
    print("questions per family:", dict(sorted(Counter(r["family"] for r in records).items())))
    print("questions per answer type:", dict(sorted(Counter(r["answer_type"] for r in records).items())))
    print(f"with regions: {sum(bool(r['regions']) for r in records)} / {len(records)}")


if __name__ == "__main__":
    main()
