"""Read-out pretraining: teach a random-init model to write a region's 3D centre from its region token before
SR-REAL's SFT (the quickstart's `pretrain` stage; `sr-real train pretrain`).

Why: each `<region>` token carries its region's measured 3D evidence (centre and extent, `region_point_encoder`),
and a DTR answer starts by writing the objects' centres. The tiny model starts from random weights, and at the
SFT's learning rate it did not learn to read that evidence out: its `<detect>` centres stayed a few constants
(median error 0.38 m against the evidence's own 0.04 m). Measured on this task alone (training/README.md), the
read-out is a circuit that forms within a few hundred steps at a learning rate of 5e-4 and not at all at 2e-3,
and it forms fastest on short sequences, so it gets its own short stage.

The task is generic: a plain-colour image with one to three `<region>` tokens, each given made-up evidence (a
centre anywhere a camera sees, an extent), and the request to write each item's centre in the `<3d_box
center="x,y,z">` format. No scene, rendered image, spatial relation or SR-REAL question family is involved, and
no held-out data: the numbers are drawn at random. Optionally (`keyword_fraction`, off) a sequence also ends by
naming one reading (x, y, z or the count), which its answer writes as a `<think>` step. Plain PyTorch (the causal
LM loss on the answer tokens), like nanoGPT's loop.
"""
from __future__ import annotations

import json
import math
import random
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

IMAGE_SIDE = 56  # the smallest image the processor takes: 4 image tokens, so the sequences stay short
# Made-up evidence: camera-frame centres (metres; +x right, +y down, +z forward) and extents.
CENTRE_RANGE = ((-1.5, 1.5), (-1.0, 1.0), (0.3, 5.0))
EXTENT_RANGE = (0.03, 1.5)


@dataclass
class PretrainSettings:
    steps: int = 600  # the read-out forms after ~300 steps of 32 sequences (0.44 -> 0.13 -> 0.08 m)
    batch_size: int = 32
    learning_rate: float = 5.0e-4  # 2e-3 stalls on the format's prior and never reads the evidence (1.06 m)
    warmup_steps: int = 50
    weight_decay: float = 0.01
    max_items: int = 3  # regions per sequence: the k-th box must read the k-th region
    check_samples: int = 48  # fresh sequences for the read-out error at the end
    # Share of sequences with two or more items that also ask for one reading named by a word of the request (x,
    # y or z off the centres just written, or the count), answered in a `<think>` step: reading a word of the
    # request to choose the step, as a DTR chain must read its question's relation; 0: none. Tried at 0.5 and off:
    # read within the stage, not carried to SR-REAL's relation words (training/README.md, "Reading a word")
    keyword_fraction: float = 0.0


@dataclass(frozen=True)
class ReadoutExample:
    """One sequence: the user's request (with its `<region>` tokens), the answer, and each region's evidence
    (centre x, y, z, extent w, h, d, as the processor's `region_points` rows) and the image's colour."""

    request: str
    answer: str
    evidence: tuple[tuple[float, ...], ...]
    colour: tuple[int, int, int]
    reading: str | None = None  # the reading the request names (READINGS), if any


READINGS = ("x", "y", "z", "count")  # what a request can name (the word it ends with)


def reading_opening(reading: str) -> str:
    """How the `<think>` step for `reading` opens: a coordinate read off the written centres opens as the DTR
    chain's copy step does (`data.cot.COPY_STEP_OPENING`), the count with "There are"."""
    if reading == "count":
        return "There are"
    from sr_real_core.data.cot import COPY_STEP_OPENING

    return COPY_STEP_OPENING.format(axis=reading)


def reading_step(reading: str, centres: list[tuple[float, ...]]) -> str:
    """The `<think>` step for `reading`, from the centres as written (two decimals)."""
    if reading == "count":
        return f"{reading_opening(reading)} {len(centres)} marked items."
    index = "xyz".index(reading)
    values = ", ".join(f"item {k + 1} {centre[index]:.2f}" for k, centre in enumerate(centres))
    return f"{reading_opening(reading)} {values}."


def readout_example(rng: random.Random, max_items: int = 3, keyword_fraction: float = 0.0,
                    min_items: int = 1) -> ReadoutExample:
    from sr_real_core.grammar import Detection, render_box
    from sr_real_core.query import REGION_TOKEN

    count = rng.randint(min_items, max_items)
    evidence = tuple((*(rng.uniform(*bounds) for bounds in CENTRE_RANGE), *(rng.uniform(*EXTENT_RANGE)
                                                                            for _ in range(3)))
                     for _ in range(count))
    items = ", ".join(f"item {index + 1} {REGION_TOKEN}" for index in range(count))
    boxes = "\n".join(render_box(Detection(f"item {index + 1}", None, row[:3])) for index, row in enumerate(evidence))
    request = f"Write the 3D centre of each marked item: {items}."
    colour = tuple(rng.randrange(256) for _ in range(3))
    if count > 1 and keyword_fraction and rng.random() < keyword_fraction:
        reading = rng.choice(READINGS)
        written = [tuple(round(value, 2) for value in row[:3]) for row in evidence]
        return ReadoutExample(f"{request} Then read off their {reading}.",
                              f"{boxes}\n<think>{reading_step(reading, written)}</think>", evidence, colour, reading)
    return ReadoutExample(request, boxes, evidence, colour)


def _inputs(processor, examples: list[ReadoutExample], with_answers: bool) -> dict[str, Any]:
    """Model inputs: the chat text (with the answers for training, up to the assistant's turn for generation),
    the plain images, one whole-image region per `<region>` token, and the made-up evidence as `region_points`."""
    import torch
    from PIL import Image

    from sr_real_core.query import Region

    texts = []
    for example in examples:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": example.request}]}]
        if with_answers:
            messages.append({"role": "assistant", "content": example.answer})
        texts.append(processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=not with_answers))
    whole = Region(box=(0, 0, IMAGE_SIDE, IMAGE_SIDE))
    batch = processor(images=[Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), e.colour) for e in examples], text=texts,
                      regions=[[whole] * len(e.evidence) for e in examples], padding=True,
                      padding_side="right" if with_answers else "left", return_tensors="pt")
    batch["region_points"] = torch.tensor([row for e in examples for row in e.evidence], dtype=torch.float32)
    return dict(batch)


def readout_loss(model, processor, rng: random.Random, batch_size: int, max_items: int = 3,
                 keyword_fraction: float = 0.0):
    """The causal LM loss of `batch_size` fresh read-out sequences, on their answer tokens only (as in SFT)."""
    from sr_real.training.spatial import assistant_header, assistant_labels

    inputs = _inputs(processor, [readout_example(rng, max_items, keyword_fraction) for _ in range(batch_size)],
                     with_answers=True)
    inputs = {name: value.to(model.device) for name, value in inputs.items()}
    labels = assistant_labels(*assistant_header(processor.tokenizer), inputs["input_ids"], inputs["attention_mask"])
    return model(**inputs, labels=labels).loss


def readout_errors(model, processor, rng: random.Random, samples: int, max_items: int,
                   batch_size: int = 8) -> list[float]:
    """Distance (m) from each written centre to its region's evidence centre on fresh sequences; a region whose
    box is not written counts as infinitely far."""
    import torch

    from sr_real_core.grammar import parse_completion

    model.eval()
    errors = []
    with torch.no_grad():
        for start in range(0, samples, batch_size):
            examples = [readout_example(rng, max_items) for _ in range(min(batch_size, samples - start))]
            inputs = _inputs(processor, examples, with_answers=False)
            written = model.generate(**inputs, max_new_tokens=32 * max_items, do_sample=False)
            for example, row in zip(examples, written[:, inputs["input_ids"].shape[1]:]):
                text = processor.tokenizer.decode(row, skip_special_tokens=True)
                detections = parse_completion(f"<detect>{text}</detect>").detections
                for index, evidence in enumerate(example.evidence):
                    centre = detections[index].center if index < len(detections) else None
                    errors.append(float("inf") if centre is None else math.dist(centre, evidence[:3]))
    model.train()
    return errors


def reading_accuracy(model, processor, rng: random.Random, samples: int, max_items: int,
                     batch_size: int = 8) -> dict[str, float]:
    """On fresh sequences that each name a reading: the share whose `<think>` step is the one named, and the share
    whose step is exactly `reading_step` of the centres the model itself wrote (named and copied)."""
    import torch

    from sr_real_core.grammar import parse_completion

    model.eval()
    named = exact = 0
    with torch.no_grad():
        for start in range(0, samples, batch_size):
            examples = [readout_example(rng, max_items, keyword_fraction=1.0, min_items=2)
                        for _ in range(min(batch_size, samples - start))]
            inputs = _inputs(processor, examples, with_answers=False)
            written = model.generate(**inputs, max_new_tokens=40 * max_items + 48, do_sample=False)
            for example, row in zip(examples, written[:, inputs["input_ids"].shape[1]:]):
                boxes, _, rest = processor.tokenizer.decode(row, skip_special_tokens=True).partition("<think>")
                think = rest.split("</think>", 1)[0]
                named += think.startswith(reading_opening(example.reading))
                centres = [d.center for d in parse_completion(f"<detect>{boxes}</detect>").detections]
                exact += bool(centres) and think == reading_step(example.reading, centres)
    model.train()
    return {"named": named / samples, "exact": exact / samples}


def pretrain_readout(model_dir: str | Path, out: str | Path, settings: PretrainSettings = PretrainSettings(),
                     seed: int = 0) -> dict[str, Any]:
    """Read-out-pretrain the checkpoint at `model_dir` into `out` (weights + processor, staged); returns and writes
    `out/pretrain.json`: the loss at the start and end, the median read-out error before and after, minutes."""
    import torch
    from tqdm import tqdm

    from sr_real_core.errors import staged_output
    from sr_real_core.model.loading import load_model

    out = Path(out)
    if (out / "pretrain.json").is_file():  # a finished stage is reused when the quickstart is resumed
        return json.loads((out / "pretrain.json").read_text(encoding="utf-8"))
    began = time.perf_counter()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model, processor = load_model(model_dir)

    def median_error(check_seed: int) -> float | None:
        """None where most regions get no box (an untrained model writes none)."""
        median = statistics.median(readout_errors(model, processor, random.Random(check_seed),
                                                  settings.check_samples, settings.max_items))
        return median if math.isfinite(median) else None

    before = median_error(seed + 1)
    readings = settings.keyword_fraction > 0 and settings.max_items > 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / settings.warmup_steps))
    losses = []
    model.train()
    for _ in tqdm(range(settings.steps), desc="read-out pretraining"):
        loss = readout_loss(model, processor, rng, settings.batch_size, settings.max_items, settings.keyword_fraction)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    figures = {"settings": asdict(settings), "steps": settings.steps, "first_loss": losses[0] if losses else None,
               "last_loss": sum(losses[-20:]) / len(losses[-20:]) if losses else None,
               "readout_error_before": before, "readout_error_after": median_error(seed + 2),
               "readings": reading_accuracy(model, processor, random.Random(seed + 3), settings.check_samples,
                                            settings.max_items) if readings else None,
               "check_samples": settings.check_samples, "minutes": (time.perf_counter() - began) / 60}
    with staged_output(out, folder=True) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        (staging / "pretrain.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures
