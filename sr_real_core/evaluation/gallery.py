"""An HTML gallery of examples: the image with its regions, the projected predicted and true 3D centres,
the question, the answer and how it was read, the reasoning and the verdict.

``gallery.html`` sits beside ``gallery/`` (one JPEG per example). Examples are chosen round-robin over the
categories, wrong answers first, so that a small gallery still shows every category and its failures.
On each image: the regions' boxes in their colour with their reference; a ring at each true centre
(``gt_centers``) and a cross at the centre the DTR completion detected for the same region, joined by a
line. Projection needs the record's ``intrinsics`` (scaled to the image's size if it differs); without
them, or without an image, the card says so and shows what it can.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sr_real_core.evaluation.records import QARecord
from sr_real_core.evaluation.scoring import Verdict
from sr_real_core.grammar import Detection, find_detection, normalise_ref

_NAMED_COLOURS = {"red": (230, 57, 70), "blue": (29, 120, 230), "green": (46, 160, 67), "yellow": (240, 200, 20),
                  "orange": (245, 130, 30), "purple": (150, 80, 200), "cyan": (20, 190, 210), "magenta": (220, 40, 180)}
_FALLBACK_COLOURS = ((230, 57, 70), (29, 120, 230), (46, 160, 67), (240, 200, 20), (150, 80, 200))
_REASONING_CHARS = 4000
_ANSWER_CHARS = 600


@dataclass(frozen=True)
class GalleryConfig:
    size: int = 24  # examples shown; 0 writes no gallery
    image_width: int = 480  # pixels of the saved example images


def select_examples(verdicts: Sequence[Verdict], size: int) -> list[Verdict]:
    """Up to ``size`` verdicts, round-robin over categories, wrong (and unparsed) answers first."""
    queues: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in sorted(verdicts, key=lambda verdict: verdict.correct):  # stable: keeps the file order
        queues[verdict.category or "uncategorised"].append(verdict)
    chosen: list[Verdict] = []
    while len(chosen) < size and any(queues.values()):
        for category in sorted(queues):
            if queues[category] and len(chosen) < size:
                chosen.append(queues[category].pop(0))
    return chosen


def write_gallery(out_dir: str | Path, records: Sequence[QARecord], verdicts: Sequence[Verdict],
                  config: GalleryConfig = GalleryConfig(), title: str = "Evaluation examples") -> Path | None:
    """Write ``gallery.html`` and ``gallery/*.jpg`` into ``out_dir``; None when ``config.size`` is 0."""
    if config.size <= 0:
        return None
    out_dir = Path(out_dir)
    image_dir = out_dir / "gallery"
    image_dir.mkdir(parents=True, exist_ok=True)
    by_id = {record.id: record for record in records}
    cards = []
    for index, verdict in enumerate(select_examples(verdicts, config.size)):
        record = by_id[verdict.id]
        image_name, note = _example_image(record, verdict, image_dir / f"{index:04d}.jpg", config.image_width)
        cards.append(_card(record, verdict, image_name and f"gallery/{image_name}", note))
    path = out_dir / "gallery.html"
    path.write_text(_page(title, verdicts, cards), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- drawing


def _example_image(record: QARecord, verdict: Verdict, target: Path, width: int) -> tuple[str | None, str]:
    """Draw the example at ``width`` pixels; returns (file name or None, a note on what could not be drawn)."""
    from PIL import Image, ImageDraw, ImageFont

    source = record.resolve("image")
    if source is None or not source.is_file():
        return None, "image not found" if source else "no image"
    with Image.open(source) as opened:
        original_size = opened.size
        scale = width / opened.width  # resized before drawing, so that marks and labels keep their size
        image = opened.convert("RGB").resize((width, max(1, round(opened.height * scale))), Image.LANCZOS)
    pen = _Pen(ImageDraw.Draw(image), ImageFont.load_default(size=max(11, width // 36)), max(2, width // 200), scale)
    colours = _region_colours(record)
    _draw_regions(pen, record, colours)
    note = _draw_centres(pen, record, verdict, original_size, image.size, colours)
    image.save(target, quality=90)
    return target.name, note


@dataclass(frozen=True)
class _Pen:
    draw: Any  # PIL ImageDraw
    font: Any
    line: int
    scale: float  # drawn pixels per pixel of the original image


def _region_colours(record: QARecord) -> dict[str, tuple[int, int, int]]:
    """Colour per normalised ref: the colour its name says ("red bbox"), else a fixed palette."""
    refs = [str(region.get("ref")) for region in record.raw.get("regions") or [] if isinstance(region, Mapping)]
    refs += [str(center.get("ref")) for center in record.raw.get("gt_centers") or [] if isinstance(center, Mapping)]
    colours: dict[str, tuple[int, int, int]] = {}
    for ref in dict.fromkeys(refs):
        named = next((rgb for word, rgb in _NAMED_COLOURS.items() if word in normalise_ref(ref).split()), None)
        colours[normalise_ref(ref)] = named or _FALLBACK_COLOURS[len(colours) % len(_FALLBACK_COLOURS)]
    return colours


def _draw_regions(pen: _Pen, record: QARecord, colours: Mapping[str, tuple[int, int, int]]) -> None:
    for region in record.raw.get("regions") or []:
        box = region.get("bbox_2d") if isinstance(region, Mapping) else None
        if not (isinstance(box, (list, tuple)) and len(box) == 4):
            continue
        colour = colours.get(normalise_ref(region.get("ref")), _FALLBACK_COLOURS[0])
        x1, y1, x2, y2 = (float(value) * pen.scale for value in box)
        pen.draw.rectangle((x1, y1, x2, y2), outline=colour, width=pen.line)
        label = str(region.get("ref", ""))
        height = pen.draw.textbbox((0, 0), label, font=pen.font)[3]
        anchor = (x1, y1 - height - 4 if y1 >= height + 4 else y2 + 2)  # outside the box: points are tiny
        left, top, right, bottom = pen.draw.textbbox(anchor, label, font=pen.font)
        pen.draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=(255, 255, 255))
        pen.draw.text(anchor, label, fill=colour, font=pen.font)


def _draw_centres(pen: _Pen, record: QARecord, verdict: Verdict, original_size: tuple[int, int],
                  drawn_size: tuple[int, int], colours: Mapping[str, tuple[int, int, int]]) -> str:
    truths = [c for c in record.raw.get("gt_centers") or [] if isinstance(c, Mapping)]
    if not truths and not verdict.detections:
        return ""
    camera = _camera(record.raw.get("intrinsics"), original_size, drawn_size)
    if camera is None:
        return "no intrinsics: 3D centres not projected"
    detections = [Detection(d["name"], d["ref"], tuple(d["center"])) for d in verdict.detections]
    radius = 3 * pen.line
    for truth in truths:
        colour = colours.get(normalise_ref(truth["ref"]), _FALLBACK_COLOURS[0])
        true_px = _project(camera, truth["center"])
        detection = find_detection(detections, truth["ref"])
        predicted_px = _project(camera, detection.center) if detection else None
        if true_px and predicted_px:
            pen.draw.line((*true_px, *predicted_px), fill=colour, width=max(1, pen.line // 2))
        if true_px:
            x, y = true_px
            pen.draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=colour, width=pen.line)
        if predicted_px:
            x, y = predicted_px
            pen.draw.line((x - radius, y - radius, x + radius, y + radius), fill=colour, width=pen.line)
            pen.draw.line((x - radius, y + radius, x + radius, y - radius), fill=colour, width=pen.line)
    return ""


def _camera(intrinsics: Any, original_size: tuple[int, int], drawn_size: tuple[int, int]):
    """The record's camera for the drawn image: intrinsics are given for the original image's size."""
    from sr_real_core.geometry import CalibrationError, Intrinsics

    if not isinstance(intrinsics, Mapping):
        return None
    try:
        camera = Intrinsics.from_dict(intrinsics)
    except CalibrationError:
        return None
    if (camera.width, camera.height) != original_size:
        camera = camera.scaled(*original_size)
    return camera.scaled(*drawn_size)


def _project(camera, center: Sequence[float]) -> tuple[float, float] | None:
    u, v = camera.project([float(value) for value in center])
    return (float(u), float(v)) if math.isfinite(u) and math.isfinite(v) else None


# ------------------------------------------------------------------------------------------------- HTML


def _verdict_label(verdict: Verdict) -> tuple[str, str]:
    if verdict.missing:
        return "missing prediction", "missing"
    if not verdict.parsed:
        return "unparsed", "unparsed"
    return ("correct", "correct") if verdict.correct else ("wrong", "wrong")


def _card(record: QARecord, verdict: Verdict, image_src: str | None, note: str) -> str:
    label, css = _verdict_label(verdict)
    escape = html.escape
    picture = f'<img src="{escape(image_src)}" alt="{escape(verdict.id)}">' if image_src else ""
    facts = [
        ("Question", verdict.question),
        ("Truth", _truth(verdict, record)),
        ("Answer", _clip(verdict.answer, _ANSWER_CHARS) if verdict.answer is not None else "–"),
        ("Understood as", "–" if verdict.pred is None else _value(verdict.pred, verdict.answer_type)),
    ]
    if verdict.center_errors:
        errors = ("missed" if error is None else f"{error:.2f} m" for error in verdict.center_errors)
        facts.append(("Centre errors", ", ".join(errors)))
    if verdict.format_errors:
        facts.append(("Format", "; ".join(verdict.format_errors)))
    rows = "".join(f"<dt>{escape(name)}</dt><dd>{escape(str(value))}</dd>" for name, value in facts)
    reasoning = (f"<details><summary>Reasoning</summary><pre>{escape(_clip(verdict.reasoning, _REASONING_CHARS))}</pre>"
                 "</details>" if verdict.reasoning else "")
    notes = f'<p class="note">{escape(note)}</p>' if note else ""
    return (f'<article class="card {css}">{picture}{notes}<header><span class="badge">{escape(label)}</span> '
            f"<code>{escape(verdict.id)}</code> · {escape(verdict.category or 'uncategorised')} · "
            f"path {escape(verdict.path or 'none')}</header><dl>{rows}</dl>{reasoning}</article>")


def _truth(verdict: Verdict, record: QARecord) -> str:
    """The solution, and the benchmark's own answer text when it says more ("11.4 meters apart")."""
    solution = _value(verdict.solution, verdict.answer_type)
    answer = record.raw.get("answer")
    says_more = isinstance(answer, str) and answer.strip() not in (str(verdict.solution), solution)
    return f"{solution} ({answer})" if says_more else solution


def _value(value: Any, answer_type: str) -> str:
    if answer_type == "numeric":
        return f"{value:.3f} m"
    return f"{value} o'clock" if answer_type == "direction" else str(value)


def _clip(text: str | None, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;background:#f6f7f9;color:#222}
h1{font-size:1.4rem}.legend{color:#555;font-size:.9rem}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1rem}
.card{background:#fff;border-radius:8px;padding:.8rem;border-top:6px solid #999;box-shadow:0 1px 3px #0002}
.card img{width:100%;border-radius:4px}.card header{font-size:.85rem;margin:.4rem 0;color:#444}
.correct{border-top-color:#2e9e43}.wrong{border-top-color:#e63946}.unparsed,.missing{border-top-color:#f0a500}
.badge{font-weight:600;text-transform:uppercase;font-size:.75rem}
dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem .6rem;font-size:.85rem;margin:.3rem 0}
dt{color:#666}dd{margin:0;overflow-wrap:anywhere}pre{white-space:pre-wrap;font-size:.8rem}
.note{color:#a06000;font-size:.8rem;margin:.3rem 0}
"""


def _page(title: str, verdicts: Sequence[Verdict], cards: Sequence[str]) -> str:
    correct = sum(verdict.correct for verdict in verdicts)
    summary = (f"{len(cards)} of {len(verdicts)} questions shown (every category, wrong answers first); "
               f"{correct}/{len(verdicts)} correct overall.")
    legend = "On the images: boxes = regions; ring = true 3D centre; cross = detected (DTR) centre; line = error."
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>"
            f"<p class=\"legend\">{html.escape(legend)}</p><main>{''.join(cards)}</main></body></html>\n")
