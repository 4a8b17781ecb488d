"""Cost of constrained answer decoding (`sr_real_core.constrained`), free and constrained side by side.

    .venv/bin/python benchmarks/bench_constrained.py [--model DIR --qa QA.jsonl] [--questions N] [--repeats R]

1. Per decoding step, for a batch of 32 rows: `AnswerConstraint.pick` when every argmax is allowed (the common
   step) and when every argmax is ruled out inside an answer (the scores sorted, allowed tokens searched), at the
   tiny model's vocabulary and at Qwen2.5-VL's (151,936 tokens).
2. With `--model` and `--qa` (e.g. a quickstart's `rl/final` and `data/heldout_eval.jsonl`): the engine's
   seconds for N held-out questions on the DTR path, free and constrained, and how many answers the constraint
   changed. Medians over the repeats.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sr_real_core.constrained import AnswerConstraint  # noqa: E402

from benchmarks.bench_model import timed as median_time  # noqa: E402  (a warm-up call, then the median)

ROWS = 32


def step_costs(vocab: int, repeats: int) -> tuple[float, float]:
    """(ms per step with every argmax allowed, ms per step with every argmax ruled out) for ROWS rows."""
    rng = np.random.default_rng(0)
    texts = [f"t{index}" for index in range(vocab)]
    texts[:4] = ["<answer>", "yes", "no", "B"]
    scores = rng.normal(size=(ROWS, vocab)).astype(np.float32)
    scores[:, 3] = 10.0  # "B" is every row's argmax
    free_rows = AnswerConstraint(texts, ["yesno"] * ROWS, [""] * ROWS)  # no <answer> yet: "B" is allowed
    in_answer = AnswerConstraint(texts, ["yesno"] * ROWS, [""] * ROWS, prefix="<answer>")  # "B" is ruled out
    best = scores.argmax(-1)
    allowed = median_time(lambda: free_rows.pick(best, scores.__getitem__), repeats)
    ruled_out = median_time(lambda: in_answer.pick(best, scores.__getitem__), repeats)
    return 1000 * allowed, 1000 * ruled_out


def engine_costs(model: str, qa: str, questions: int, repeats: int) -> dict[str, float]:
    from sr_real_core.evaluation.records import load_qa
    from sr_real_core.evaluation.run_model import _query
    from sr_real_core.inference import SpatialReasoner

    queries = [_query(record, "dtr") for record in load_qa(qa)[:questions]]
    result = {}
    answers = {}
    for constrained in (False, True):
        reasoner = SpatialReasoner.from_pretrained(model, max_new_tokens=384, constrain_answer=constrained)

        def run() -> None:
            answers[constrained] = [a.answer for start in range(0, len(queries), 32)
                                    for a in reasoner.ask_batch(queries[start:start + 32])]

        result["constrained" if constrained else "free"] = median_time(run, repeats)
    result["answers changed"] = sum(a != b for a, b in zip(answers[False], answers[True]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a checkpoint (with --qa): the engine's time, free and constrained")
    parser.add_argument("--qa", help="QA records the checkpoint is asked (e.g. a quickstart's heldout_eval.jsonl)")
    parser.add_argument("--questions", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from sr_real_core.model.tiny import train_tiny_tokenizer

    print(f"per decoding step, {ROWS} rows (ms): vocabulary, every argmax allowed, every argmax ruled out")
    for name, vocab in (("tiny", len(train_tiny_tokenizer())), ("Qwen2.5-VL", 151_936)):
        allowed, ruled_out = step_costs(vocab, args.repeats)
        print(f"  {name:<11} {vocab:>7}  {allowed:8.2f}  {ruled_out:8.2f}")
    if args.model and args.qa:
        costs = engine_costs(args.model, args.qa, args.questions, max(1, args.repeats // 2))
        print(f"engine, {args.questions} questions on the DTR path (s): free {costs['free']:.1f}, constrained "
              f"{costs['constrained']:.1f}; answers changed by the constraint: {costs['answers changed']}")


if __name__ == "__main__":
    main()
