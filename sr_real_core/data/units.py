"""Lengths said the way people say them: under 1 m mostly centimetres or inches, 1-3 m metres or feet,
over 3 m mostly metres (method.md, question families).

``LengthStyle`` fixes a unit system and spelling for one question, so its answer and every length in its
chain of thought read alike. ``say_length`` rounds to what a person would say and returns the metres of
exactly the text it wrote, which is what ``answers.parse_length_m`` reads back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INCH_M = 0.0254
INCHES_PER_FOOT = 12
# Chance of imperial units per magnitude band: < 1 m, 1-3 m, > 3 m.
IMPERIAL_CHANCE = ((1.0, 0.3), (3.0, 0.4), (math.inf, 0.15))


@dataclass(frozen=True)
class LengthStyle:
    imperial: bool = False
    long_names: bool = False  # "centimeters" rather than "cm"


@dataclass(frozen=True)
class Length:
    text: str
    metres: float


def pick_style(metres: float, rng: np.random.Generator) -> LengthStyle:
    """A unit system with the human-like odds for a length of this size, and a spelling."""
    chance = next(p for bound, p in IMPERIAL_CHANCE if metres < bound)
    return LengthStyle(imperial=bool(rng.random() < chance), long_names=bool(rng.random() < 0.4))


def _rounded(value: float) -> tuple[float, str]:
    """A count rounded half up, to 0.1 under 10 and to 1 from 10 on, with its text."""
    if value < 9.95:
        tenths = math.floor(value * 10 + 0.5)
        return tenths / 10, (f"{tenths // 10}" if tenths % 10 == 0 else f"{tenths / 10:.1f}")
    whole = math.floor(value + 0.5)
    return float(whole), f"{whole}"


def centimetres(metres: float) -> int:
    """Whole centimetres, half up: the one rounding used for every value shown with two decimals."""
    return math.floor(metres * 100 + 0.5)


def metres_text(metres: float) -> str:
    """Metres with two decimals, from whole centimetres (so it always agrees with ``say_length``)."""
    return f"{centimetres(metres) / 100:.2f}"


def say_length(metres: float, style: LengthStyle) -> Length:
    """``metres`` in the style's unit, rounded as people do; ``Length.metres`` is the value of the text."""
    if metres < 0:
        raise ValueError(f"a length must be non-negative, got {metres}")
    if style.imperial and metres < 1.0:
        count, text = _rounded(metres / INCH_M)
        return Length(f"{text} {'inch' if text == '1' else 'inches'}", count * INCH_M)
    if style.imperial:
        inches = math.floor(metres / INCH_M + 0.5)
        feet, rest = divmod(inches, INCHES_PER_FOOT)
        text = f"{feet} {'foot' if feet == 1 else 'feet'}" + (f" {rest} {'inch' if rest == 1 else 'inches'}" if rest else "")
        return Length(text, inches * INCH_M)
    if metres < 1.0:
        count, text = _rounded(metres * 100)
        return Length(f"{text} {'centimeters' if style.long_names else 'cm'}", round(count / 100, 6))
    cm = centimetres(metres)
    text = f"{cm / 100:.2f}".rstrip("0").rstrip(".")
    return Length(f"{text} {'meters' if style.long_names else 'm'}", cm / 100)
