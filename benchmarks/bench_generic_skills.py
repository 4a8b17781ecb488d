"""How fast does the random-init tiny model learn the two generic skills a DTR chain needs? (issue 17)

    python benchmarks/bench_generic_skills.py [--steps 1000] [--check-every 250] [--fixed-direction]

Text-only chat sequences, no scene and no SR-REAL question: two items with made-up x, y, z, and the request
"Which has the {larger, smaller} {x, y, z}?", answered "z: item 1 3.05, item 2 2.10. The larger: item 1.". The
first part is chosen by a word of the request and copied (reading the question, as a DTR chain must read its
relation word); the last token compares the two numbers just copied. Trained from scratch (32 sequences a step,
lr 5e-4, as the read-out stage); every `--check-every` steps, greedy answers on 96 fresh sequences: the share whose
copy is exact and the share whose answer is right. `--fixed-direction` always asks for the larger. Figures only,
nothing asserted (training/README.md, "Reading a word of the request": 1,000 steps took about 17 minutes on one
thread).
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time

AXES = "xyz"


def skill_example(rng: random.Random, fixed_direction: bool) -> tuple[str, str]:
    """(request, answer) for two items with distinct values on the asked axis."""
    items = [[round(rng.uniform(*bounds), 2) for bounds in ((-1.5, 1.5), (-1.0, 1.0), (0.3, 5.0))] for _ in range(2)]
    axis = rng.randrange(3)
    larger = fixed_direction or rng.random() < 0.5
    if items[0][axis] == items[1][axis]:
        items[1][axis] = round(items[1][axis] + 0.01, 2)
    word = "larger" if larger else "smaller"
    listing = " ".join(f"Item {k + 1}: x {v[0]:.2f}, y {v[1]:.2f}, z {v[2]:.2f}." for k, v in enumerate(items))
    first_wins = (items[0][axis] > items[1][axis]) == larger
    copy = f"{AXES[axis]}: item 1 {items[0][axis]:.2f}, item 2 {items[1][axis]:.2f}."
    return f"{listing} Which has the {word} {AXES[axis]}?", f"{copy} The {word}: item {1 if first_wins else 2}."


def _chat(processor, request: str, answer: str | None = None) -> str:
    messages = [{"role": "user", "content": [{"type": "text", "text": request}]}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=answer is None)


def check(model, processor, fixed_direction: bool, samples: int = 96, batch_size: int = 32) -> tuple[float, float]:
    """(exact copies, right answers) as shares of `samples` fresh sequences, greedy."""
    import torch

    tokenizer, rng = processor.tokenizer, random.Random(123)
    copied = right = 0
    model.eval()
    with torch.no_grad():
        for _ in range(0, samples, batch_size):
            examples = [skill_example(rng, fixed_direction) for _ in range(batch_size)]
            inputs = tokenizer([_chat(processor, request) for request, _ in examples], return_tensors="pt",
                               padding=True, padding_side="left")
            written = model.generate(**inputs, max_new_tokens=48, do_sample=False)
            for (_, answer), row in zip(examples, written[:, inputs["input_ids"].shape[1]:]):
                text = tokenizer.decode(row, skip_special_tokens=True).strip()
                copy, verdict = answer.split(" The ")
                copied += text.startswith(copy)
                right += text.rsplit(":", 1)[-1].strip() == verdict.rsplit(":", 1)[-1].strip()
    model.train()
    return copied / samples, right / samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--check-every", type=int, default=250)
    parser.add_argument("--fixed-direction", action="store_true", help="always ask for the larger value")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from sr_real.training.spatial import assistant_header, assistant_labels
    from sr_real_core.model.loading import load_model
    from sr_real_core.model.tiny import write_tiny_model

    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as directory:
        model, processor = load_model(write_tiny_model(directory, seed=args.seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 50))
    header, rng, began = assistant_header(processor.tokenizer), random.Random(args.seed), time.perf_counter()
    print(f"{'step':>6} {'minutes':>8} {'exact copies':>13} {'right answers':>14}")
    for step in range(args.steps + 1):
        if step % args.check_every == 0 or step == args.steps:
            copied, right = check(model, processor, args.fixed_direction)
            print(f"{step:>6} {(time.perf_counter() - began) / 60:>8.1f} {copied:>13.0%} {right:>14.0%}", flush=True)
        if step == args.steps:
            break
        examples = [skill_example(rng, args.fixed_direction) for _ in range(32)]
        inputs = processor.tokenizer([_chat(processor, *example) for example in examples], return_tensors="pt",
                                     padding=True, padding_side="right")
        labels = assistant_labels(*header, inputs["input_ids"], inputs["attention_mask"])
        loss = model(**inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()


if __name__ == "__main__":
    main()
