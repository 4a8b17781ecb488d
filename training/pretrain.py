"""Copy pretraining: teach a random-init model to copy written numbers before SR-REAL's SFT (the quickstart's
`pretrain` stage; `sr-real train pretrain`).

Why: the processor writes each region's measured 3D evidence after its `<region>` token (`evidence_text`), and a
DTR answer starts by writing the objects' centres. A pretrained VLM copies numbers from its prompt; the tiny
model starts from random weights and, measured here, does not learn to within the quickstart's SFT: after 400
SFT steps, and after 250 steps of 3D grounding alone, its `<detect>` centres were the same few constants
whatever the evidence said (median error 0.40-0.45 m against 0.04 m for the evidence itself). Copying is a
circuit that forms abruptly once enough copy examples are seen (exact copies 0/20 at step 100, 9/20 at step 200
of this task), so it gets its own short stage on cheap text-only sequences. Opt-in (recipe `pretrain.steps`):
measured, it did not carry into the quickstart's SFT (training/README.md).

The task is generic: a few named items, each with made-up numbers in the processor's evidence format, and a
request to write one item's centre in the `<3d_box center="x,y,z">` format. No scene, image, spatial relation or
SR-REAL question family is involved, and no held-out data: the numbers and names are drawn at random. Plain
PyTorch (a text-only causal LM loss on the answer tokens), like nanoGPT's loop.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

NAMES = ("apple", "box", "lamp", "cup", "chair", "book", "ball", "toy", "vase", "shoe", "bottle", "plant")


@dataclass
class PretrainSettings:
    steps: int = 400  # the copy circuit forms after ~200 steps of 32 sequences
    batch_size: int = 32
    learning_rate: float = 2.0e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    max_items: int = 3  # items per sequence: the model must pick the named one, not the last numbers seen
    check_samples: int = 50  # fresh sequences for the exact-copy rate at the end


def _number(rng: random.Random) -> float:
    """Half the numbers near zero (where centres' x and y usually are), half anywhere in [-2, 4]."""
    return rng.uniform(-2, 4) if rng.random() < 0.5 else rng.uniform(-0.5, 0.5)


def copy_example(rng: random.Random, max_items: int = 3) -> tuple[str, str]:
    """(prompt in the chat template, answer ending with <|im_end|>) of one copy sequence; each item's numbers are
    written as the processor writes a region's evidence (`processing.evidence_words`)."""
    import numpy as np

    from sr_real_core.model.processing import evidence_words

    names = rng.sample(NAMES, rng.randint(1, max_items))
    items = {name: np.array([*(_number(rng) for _ in range(3)), *(rng.uniform(0.02, 2) for _ in range(3))])
             for name in names}
    asked = rng.choice(names)
    listed = "; ".join(f"{name}{evidence_words(row)}" for name, row in items.items())
    prompt = (f"<|im_start|>user\nItems: {listed}. Write the centre of the {asked}.<|im_end|>\n"
              f"<|im_start|>assistant\n")
    centre = ",".join(f"{value:.2f}" for value in items[asked][:3])
    return prompt, f'<3d_box center="{centre}">{asked}</3d_box><|im_end|>'


def _batch(tokenizer, examples: list[tuple[str, str]]):
    import torch

    from sr_real.training.sft import IGNORE_INDEX  # the labels' ignored value, as in SFT

    rows, labels = [], []
    for prompt, answer in examples:
        prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
        answer_ids = tokenizer.encode(answer, add_special_tokens=False)
        rows.append(prompt_ids + answer_ids)
        labels.append([IGNORE_INDEX] * len(prompt_ids) + answer_ids)
    width = max(map(len, rows))
    mask = [[1] * len(row) + [0] * (width - len(row)) for row in rows]
    rows = [row + [tokenizer.pad_token_id] * (width - len(row)) for row in rows]
    labels = [row + [IGNORE_INDEX] * (width - len(row)) for row in labels]
    return torch.tensor(rows), torch.tensor(mask), torch.tensor(labels)


def exact_copy_rate(model, tokenizer, rng: random.Random, samples: int, max_items: int) -> float:
    """Share of fresh sequences whose greedy answer writes the asked item's centre exactly."""
    import torch

    model.eval()
    hits = 0
    with torch.no_grad():
        for _ in range(samples):
            prompt, answer = copy_example(rng, max_items)
            ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False)])
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=32,
                                 do_sample=False)
            written = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
            hits += written.split('">')[0] == answer.split('">')[0]
    model.train()
    return hits / samples


def pretrain_copy(model_dir: str | Path, out: str | Path, settings: PretrainSettings = PretrainSettings(),
                  seed: int = 0) -> dict[str, Any]:
    """Copy-pretrain the checkpoint at `model_dir` into `out` (weights + processor, staged); returns and writes
    `out/pretrain.json`: the loss at the start and end, the exact-copy rate before and after, minutes."""
    import torch
    from tqdm import tqdm

    from sr_real_core.errors import staged_output
    from sr_real_core.model.loading import load_model

    out = Path(out)
    if (out / "pretrain.json").is_file():  # a finished stage is reused when the quickstart is resumed
        return json.loads((out / "pretrain.json").read_text(encoding="utf-8"))
    began = time.perf_counter()
    torch.manual_seed(seed)
    rng, check = random.Random(seed), random.Random(seed + 1)
    model, processor = load_model(model_dir)
    tokenizer = processor.tokenizer
    before = exact_copy_rate(model, tokenizer, random.Random(seed + 2), settings.check_samples, settings.max_items)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / settings.warmup_steps))
    losses = []
    model.train()
    for _ in tqdm(range(settings.steps), desc="copy pretraining"):
        rows, mask, labels = _batch(tokenizer, [copy_example(rng, settings.max_items)
                                                for _ in range(settings.batch_size)])
        loss = model(input_ids=rows, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    figures = {"settings": asdict(settings), "steps": settings.steps, "first_loss": losses[0] if losses else None,
               "last_loss": sum(losses[-20:]) / len(losses[-20:]) if losses else None,
               "exact_copy_before": before,
               "exact_copy_after": exact_copy_rate(model, tokenizer, check, settings.check_samples,
                                                   settings.max_items),
               "check_samples": settings.check_samples, "minutes": (time.perf_counter() - began) / 60}
    with staged_output(out, folder=True) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        (staging / "pretrain.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures
