"""Does a checkpoint read the regions' 3D evidence into its `<detect>` centres? (issue 17's blank-the-evidence check)

    python benchmarks/bench_evidence_readout.py [--model runs/quickstart/sft/final] [--data runs/quickstart/data]
                                                [--records 24]

Greedy DTR answers on held-out 3D-grounding records (`sft_eval.jsonl`, kind grounding_3d), the median distance
from the first detection's centre to the record's true centre, measured twice: as the checkpoint is, and with the
evidence blanked (region_points NaN, and no evidence text where the processor writes it). A model that reads the
evidence is much worse blanked; a model that answers by a prior is the same. The geometric lift's own error is
the floor (about 0.04 m on the quickstart's scenes). Figures only, nothing asserted.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def centre_errors(engine, records, data: Path) -> list[float]:
    from sr_real_core.grammar import parse_completion
    from sr_real_core.query import Query

    errors = []
    for record in records:
        content = record["messages"][0]["content"]
        question = (content if isinstance(content, str) else content[-1]["text"]).split("\n")[0]
        answer = engine.answer(Query.from_record(record, data, question=question, path="dtr"))
        truth = parse_completion(record["messages"][1]["content"]).detections[0].center
        if answer.detections:
            errors.append(math.dist(answer.detections[0].center_3d, truth))
    return errors


class _Blanked:
    """The processor with the evidence removed: NaN region_points (the model adds nothing) and no evidence text."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, *args, **kwargs):
        batch = self.processor(*args, **kwargs)
        if "region_points" in batch:
            batch["region_points"] = batch["region_points"].new_full(batch["region_points"].shape, float("nan"))
        return batch

    def __getattr__(self, name):
        return getattr(self.processor, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(REPO / "runs/quickstart/sft/final"))
    parser.add_argument("--data", default=str(REPO / "runs/quickstart/data"))
    parser.add_argument("--records", type=int, default=24)
    args = parser.parse_args()
    data = Path(args.data)
    if not (Path(args.model) / "config.json").is_file() or not (data / "sft_eval.jsonl").is_file():
        print(f"skipped: no checkpoint at {args.model} or no mixture at {data} (run `make demo` first)")
        return
    from sr_real_core.inference import SpatialReasoner

    engine = SpatialReasoner.from_pretrained(args.model)
    engine.max_new_tokens = 70  # the <detect> block and a little more
    with open(data / "sft_eval.jsonl", encoding="utf-8") as lines:
        records = [r for r in map(json.loads, lines) if r.get("kind") == "grounding_3d"][:args.records]
    processor, evidence_text = engine.processor, engine.processor.evidence_text
    rows = {"as is": centre_errors(engine, records, data)}
    engine.processor, processor.evidence_text = _Blanked(processor), False
    rows["evidence blanked"] = centre_errors(engine, records, data)
    engine.processor, processor.evidence_text = processor, evidence_text
    print(f"| {args.model} (evidence text {'on' if evidence_text else 'off'}) | records with a detection | "
          f"median centre error (m) |\n|---|---|---|")
    for name, errors in rows.items():
        median = f"{statistics.median(errors):.3f}" if errors else "n/a"
        print(f"| {name} | {len(errors)} / {len(records)} | {median} |")


if __name__ == "__main__":
    main()
