"""Evaluation throughput: how many predictions per second the harness scores.

    .venv/bin/python benchmarks/bench_eval.py [--size N] [--repeats R]

A synthetic benchmark of N questions (numeric, yes/no predicates, region choices, clock directions) with a mix
of completions: DTR with two detections, LOR, free text without the grammar ("Region [1] is below."), and
gibberish. Prints predictions/s for: understanding + verdicts (``score_all``), the figures
(``build_metrics``: overall, per category, per path), and the whole scoring from JSON Lines files (load,
validate, score, metrics); then the seconds taken by the Markdown report with its plots and by a 24-example
gallery. Medians over the repeats.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sr_real_core.evaluation.gallery import GalleryConfig, write_gallery
from sr_real_core.evaluation.records import load_predictions, load_qa
from sr_real_core.evaluation.report import write_report
from sr_real_core.evaluation.scoring import build_metrics, score_all

INTRINSICS = {"fx": 300.0, "fy": 300.0, "cx": 160.0, "cy": 120.0, "width": 320, "height": 240}
REGIONS = [{"ref": "Region [0]", "bbox_2d": [40, 60, 120, 200]}, {"ref": "Region [1]", "bbox_2d": [180, 50, 260, 190]}]


def _question(index: int, rng: np.random.Generator) -> tuple[dict, str]:
    """One QA record and a completion for it."""
    truth = round(float(rng.uniform(0.3, 6.0)), 2)
    centers = [rng.uniform(-1, 3, 3).round(2).tolist() for _ in range(2)]
    base = {"id": f"q{index}", "image": "scene.png", "intrinsics": INTRINSICS, "regions": REGIONS,
            "gt_centers": [{"ref": r["ref"], "center": c} for r, c in zip(REGIONS, centers)]}
    kind = index % 4
    if kind == 0:
        record = {"question": "How far apart are Region [0] and Region [1]?", "answer_type": "numeric",
                  "solution": truth, "category": "distance"}
        answer = f"{truth * rng.uniform(0.6, 1.4) * 100:.0f} cm"
    elif kind == 1:
        record = {"question": "Is Region [0] to the left of Region [1]?", "answer_type": "yesno", "solution": "yes",
                  "category": "left_predicate"}
        answer = "In fact, Region [0] is to the right of Region [1]." if index % 8 == 1 else "Yes, it is."
    elif kind == 2:
        record = {"question": "Which is above, Region [0] or Region [1]?", "answer_type": "choice", "solution": "A",
                  "category": "above_choice"}
        answer = "Region [1] is below."
    else:
        record = {"question": "If you are at Region [0], where will you find Region [1]?", "answer_type": "direction",
                  "solution": int(rng.integers(1, 13)), "category": "direction"}
        answer = f"around the {int(rng.integers(1, 13))} o'clock direction"
    return base | record, _completion(index, answer, centers, rng)


def _completion(index: int, answer: str, centers: list[list[float]], rng: np.random.Generator) -> str:
    style = (index // 4) % 4
    if style == 0:
        noisy = [",".join(f"{value + rng.normal(0, 0.1):.2f}" for value in center) for center in centers]
        boxes = "\n".join(f'<3d_box center="{center}">thing (Region [{i}])</3d_box>' for i, center in enumerate(noisy))
        return f"<detect>Find 2 relevant objects:\n{boxes}</detect>\n<think>{'Comparing the centres. ' * 8}</think>\n" \
               f"<answer>{answer}</answer>"
    if style == 1:
        return f"<think>{'Reasoning about the scene step by step. ' * 10}</think>\n<answer>{answer}</answer>"
    if style == 2:
        return answer
    return "TwelveMug photo photo photo photo photo photo"


def _write_inputs(folder: Path, size: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    Image.new("RGB", (320, 240), (128, 128, 128)).save(folder / "scene.png")
    pairs = [_question(index, rng) for index in range(size)]
    qa, predictions = folder / "qa.jsonl", folder / "pred.jsonl"
    qa.write_text("".join(json.dumps(record | {"id": f"q{i}"}) + "\n" for i, (record, _) in enumerate(pairs)))
    predictions.write_text("".join(json.dumps({"id": f"q{i}", "completion": completion}) + "\n"
                                   for i, (_, completion) in enumerate(pairs)))
    return qa, predictions


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4000, help="questions in the synthetic benchmark (default 4000)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        qa_path, predictions_path = _write_inputs(folder, args.size)
        records, predictions = load_qa(qa_path), load_predictions(predictions_path)
        verdicts = score_all(records, predictions)

        print(f"{'evaluation, ' + str(args.size) + ' mixed predictions':<48}{'predictions/s':>15}")
        scoring = _median_seconds(lambda: score_all(records, predictions), args.repeats)
        print(f"{'understanding + verdicts (score_all)':<48}{args.size / scoring:>15,.0f}")
        figures = _median_seconds(lambda: build_metrics(verdicts), args.repeats)
        print(f"{'figures (build_metrics)':<48}{args.size / figures:>15,.0f}")
        whole = _median_seconds(lambda: build_metrics(score_all(load_qa(qa_path), load_predictions(predictions_path))),
                                args.repeats)
        print(f"{'files -> metrics (load, validate, score)':<48}{args.size / whole:>15,.0f}")

        metrics = build_metrics(verdicts)
        print(f"\n{'outputs':<48}{'seconds':>15}")
        report = _median_seconds(lambda: write_report(folder / "out", metrics, verdicts), 1)
        print(f"{'report.md + 3 plots':<48}{report:>15.2f}")
        gallery = _median_seconds(lambda: write_gallery(folder / "out", records, verdicts, GalleryConfig(size=24)), 1)
        print(f"{'gallery.html, 24 examples':<48}{gallery:>15.2f}")


if __name__ == "__main__":
    main()
