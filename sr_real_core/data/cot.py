"""Chains of thought written from the exact geometry, for both reasoning paths.

- LOR (language-only): where each object is in the image and how far from the camera, then the relative
  offsets, sizes or depth cues the question needs, in words and human units (no coordinates), then the
  conclusion.
- DTR (detect-then-reason): the ``<detect>`` block lists the objects' camera-frame centres (two decimals,
  ``grammar.render_dtr``). Left/right and behind/in front are read straight off those centres (x, z) where
  that coordinate orders the pair as gravity does (every question on a camera without roll, and behind/in
  front is only asked where the range agrees); otherwise the reasoning restates the centres in the
  gravity-aligned frame when the camera is pitched or rolled. Either way it computes the answer from exactly
  the numbers it shows.

Both close with "So the answer is X." and put X in ``<answer>``. Every number shown comes from the same
centimetre-resolution geometry the truth is computed from (``facts``), so the stated numbers, the
conclusion and the truth agree. Each step has several phrasings, picked with the question's generator.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sr_real_core import relations as rel
from sr_real_core.data.facts import Fact, Thing
from sr_real_core.data.units import LengthStyle, metres_text, say_length
from sr_real_core.geometry import DEFAULT_UP, Intrinsics
from sr_real_core.grammar import Detection, render_dtr, render_lor

LEVEL_TOLERANCE_DEG = 0.5


@dataclass(frozen=True)
class Subject:
    """An object as a chain of thought names it."""

    thing: Thing
    label: str  # "the duck in the red bbox", "the duck"
    detection: Detection
    position: str  # where it appears in the image: "on the left side of the image"


@dataclass(frozen=True)
class Question:
    """Everything the reasoning needs besides the generator."""

    fact: Fact
    subjects: tuple[Subject, ...]
    answer: str  # the natural answer text, as in <answer>
    style: LengthStyle
    up: tuple[float, float, float] = DEFAULT_UP


def image_position(intrinsics: Intrinsics, center: Sequence[float]) -> str:
    """Where a camera-frame point appears in the image, in words ("in the upper left of the image")."""
    u, v = intrinsics.project(np.asarray(center, dtype=np.float64))
    horizontal = "left" if u < intrinsics.width / 3 else "right" if u > 2 * intrinsics.width / 3 else ""
    vertical = "upper" if v < intrinsics.height / 3 else "lower" if v > 2 * intrinsics.height / 3 else ""
    if horizontal and vertical:
        return f"in the {vertical} {horizontal} of the image"
    if horizontal:
        return f"on the {horizontal} side of the image"
    return f"in the {vertical} part of the image" if vertical else "near the centre of the image"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pick(rng: np.random.Generator, templates: tuple[str, ...], **fields: str) -> str:
    return _capital(templates[int(rng.integers(len(templates)))].format(**fields))


# ---------------------------------------------------------------------------------------------- phrases

_SEE = (
    "{label} is {position}, about {distance} from the camera.",
    "I can see {label} {position}, roughly {distance} away.",
    "{label} appears {position}, at a distance of about {distance}.",
)
_PREDICATE_PHRASES = {
    "left": "to the left of", "right": "to the right of", "above": "above", "below": "below",
    "behind": "behind", "front": "in front of", "wide": "wider than", "thin": "thinner than",
    "tall": "taller than", "short": "shorter than", "big": "bigger than", "small": "smaller than",
}
_CHOICE_PHRASES = {
    "left": "further to the left", "right": "further to the right", "above": "higher up", "below": "lower down",
    "behind": "farther back", "front": "closer to the camera", "wide": "wider", "thin": "thinner",
    "tall": "taller", "short": "shorter", "big": "bigger", "small": "smaller",
}


def _conclusion(question: Question, rng: np.random.Generator) -> str:
    """The sentence that turns the reasoning into the answer, then "So the answer is X."."""
    fact, subjects = question.fact, question.subjects
    if fact.answer_type == "yesno":
        a, b = subjects
        negation = "" if fact.truth == "yes" else "not "
        sentence = _pick(rng, ("Therefore {a} is {neg}{phrase} {b}.", "This means {a} is {neg}{phrase} {b}."),
                         a=a.label, b=b.label, neg=negation, phrase=_PREDICATE_PHRASES[fact.word])
    elif fact.answer_type == "choice":
        winner = subjects[0] if fact.truth == "A" else subjects[1]
        sentence = _pick(rng, ("Therefore {w} is {phrase}, which is option {letter}.",
                               "Of the two, {w} is {phrase}: option {letter}."),
                         w=winner.label, phrase=_CHOICE_PHRASES[fact.word], letter=fact.truth)
    else:
        sentence = ""
    return f"{sentence} So the answer is {question.answer}.".strip()


# ------------------------------------------------------------------------------------------------- LOR


def _say(question: Question, metres: float) -> str:
    return say_length(abs(metres), question.style).text


def _lor_observations(question: Question, rng: np.random.Generator) -> list[str]:
    return [
        _pick(rng, _SEE, label=s.label, position=s.position,
              distance=_say(question, float(np.linalg.norm(s.thing.camera_center))))
        for s in question.subjects
    ]


def _lor_relation(question: Question, rng: np.random.Generator) -> str:
    """The step that carries the information the question needs, in words and human units."""
    fact, say = question.fact, functools.partial(_say, question)
    subjects = question.subjects
    a = subjects[0]
    A, ta = a.label, a.thing
    if len(subjects) == 2:
        B, tb = subjects[1].label, subjects[1].thing
        d_right, d_up, d_forward = tb.right - ta.right, tb.height_above - ta.height_above, tb.forward - ta.forward
    family = fact.family
    if family == "left_right":
        side = "left" if ta.right < tb.right else "right"
        return _pick(rng, ("Across the view, {A} is about {d} to the {side} of {B}.",
                           "Comparing their horizontal positions, {A} lies roughly {d} further {side} than {B}.",
                           "Measured across the image, the centre of {A} is about {d} {side} of the centre of {B}."),
                     A=A, B=B, d=say(d_right), side=side)
    if family == "above_below":
        side = "higher" if ta.height_above > tb.height_above else "lower"
        return _pick(rng, ("The centre of {A} is about {d} {side} than the centre of {B}.",
                           "Vertically, {A} sits roughly {d} {side} than {B}."),
                     A=A, B=B, d=say(d_up), side=side)
    if family == "behind_front":
        side = "farther from" if ta.forward > tb.forward else "closer to"
        return _pick(rng, ("Along the viewing direction, {A} is about {d} {side} the camera than {B}.",
                           "In depth, {A} lies roughly {d} {side} the camera than {B} does."),
                     A=A, B=B, d=say(d_forward), side=side)
    if family in ("wide_thin", "tall_short"):
        measure, noun = (rel.width, "wide") if family == "wide_thin" else (rel.height, "tall")
        return _pick(rng, ("{A} looks about {x} {noun}, while {B} is about {y} {noun}.",
                           "Judging by their sizes, {A} is roughly {x} {noun} and {B} roughly {y} {noun}."),
                     A=A, B=B, x=say(measure(ta.box)), y=say(measure(tb.box)), noun=noun)
    if family == "big_small":
        def dims(thing: Thing) -> str:
            return f"{say(rel.width(thing.box))} wide, {say(rel.height(thing.box))} tall and {say(thing.depth_extent)} deep"
        more = "more" if rel.volume(ta.box) > rel.volume(tb.box) else "less"
        return _pick(rng, ("{A} is about {da}, while {B} is about {db}, so {A} takes up {more} space.",
                           "Roughly, {A} measures {da} and {B} measures {db}; {A} therefore fills {more} volume."),
                     A=A, B=B, da=dims(ta), db=dims(tb), more=more)
    if family in ("distance", "horizontal_distance"):
        offsets = _pick(rng, ("They are about {r} apart across the view and {f} apart in depth",
                              "Across the view they are separated by roughly {r}, and in depth by roughly {f}"),
                        r=say(d_right), f=say(d_forward))
        if family == "distance":
            return offsets + _pick(rng, (", with a height difference of about {h}. Combining these offsets, the "
                                         "straight-line distance between their centres is about {v}.",
                                         ", and {h} apart in height, which together put their centres about {v} "
                                         "apart."), h=say(d_up), v=question.answer)
        return offsets + _pick(rng, (". Ignoring any difference in height, they are about {v} apart horizontally.",
                                     ", so on the floor plan they are about {v} apart."), v=question.answer)
    if family == "vertical_distance":
        side = "higher" if ta.height_above > tb.height_above else "lower"
        return _pick(rng, ("The centre of {A} is about {v} {side} than the centre of {B}, so they are {v} apart "
                           "vertically.", "Comparing heights, {A} sits roughly {v} {side} than {B}."),
                     A=A, B=B, v=question.answer, side=side)
    if family == "width":
        return _pick(rng, ("Its footprint spans about {v} across the view.", "From side to side it measures roughly {v}."),
                     v=question.answer)
    if family == "height":
        return _pick(rng, ("It rises about {v} from its bottom to its top.", "From base to top it measures roughly {v}."),
                     v=question.answer)
    if family == "direction":
        ahead = "ahead" if d_forward >= 0 else "behind"
        side = "right" if d_right >= 0 else "left"
        angle = math.degrees(math.atan2(d_right, d_forward))
        turn = "clockwise" if angle >= 0 else "counterclockwise"
        return _pick(rng, ("Imagine standing at {A}, facing away from the camera. {B_} is about {f} {ahead} and {r} "
                           "to the {side}, roughly {deg} degrees {turn} from straight ahead; each hour on a clock "
                           "is 30 degrees.",
                           "Standing at {A} and looking the way the camera looks, I would find {B} about {f} "
                           "{ahead} and {r} to my {side}: about {deg} degrees {turn} from twelve o'clock, where "
                           "every hour is 30 degrees."),
                     A=A, B=B, B_=_capital(B), f=say(d_forward), r=say(d_right), ahead=ahead, side=side,
                     deg=str(round(abs(angle))), turn=turn)
    raise ValueError(f"unknown question family {family!r}")


def lor_completion(question: Question, rng: np.random.Generator) -> str:
    steps = _lor_observations(question, rng) + [_lor_relation(question, rng), _conclusion(question, rng)]
    return render_lor(" ".join(steps), question.answer)


# ------------------------------------------------------------------------------------------------- DTR


def _signed(value: float) -> str:
    """A signed two-decimal number for sums: '-0.20' is written '(-0.20)' after an operator."""
    text = metres_text(abs(value))
    return f"(-{text})" if value < 0 else text


def _number(value: float) -> str:
    return ("-" if value < 0 and metres_text(abs(value)) != "0.00" else "") + metres_text(abs(value))


def _camera_tilt(up) -> tuple[float, float]:
    """(pitch down, roll) in degrees of a camera whose up direction in its own frame is ``up``."""
    vector = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    return math.degrees(math.asin(-vector[2])), math.degrees(math.atan2(vector[0], -vector[1]))


def _is_level(question: Question) -> bool:
    """True when gravity-frame coordinates are the camera's own (x right, y down, z forward)."""
    return all(
        tuple(s.thing.box.center) == s.thing.camera_center for s in question.subjects
    ) and abs(_camera_tilt(question.up)[0]) < LEVEL_TOLERANCE_DEG


class _Axes:
    """Names and values of the three coordinates the DTR reasoning uses."""

    def __init__(self, level: bool):
        self.level = level
        self.right, self.vertical, self.forward = ("x", "y", "z") if level else ("right", "height", "forward")

    def values(self, thing: Thing) -> tuple[float, float, float]:
        # Level: camera y points down; otherwise heights point up (friendlier to read).
        vertical = -thing.height_above if self.level else thing.height_above
        return thing.right, vertical, thing.forward

    def height_of(self, vertical: float) -> float:
        return -vertical if self.level else vertical


def _dtr_frame(question: Question, axes: _Axes, rng: np.random.Generator) -> str:
    coordinates = " and ".join(
        "{} at ({})".format(s.label, ", ".join(_number(v) for v in axes.values(s.thing))) for s in question.subjects
    )
    if axes.level:
        return _pick(rng, ("The camera is level, so I use the detected centres directly (x right, y down, z "
                           "forward, in metres): {c}.",
                           "Working with the detected centres in camera coordinates (x right, y down, z forward): "
                           "{c}."), c=coordinates)
    pitch, roll = _camera_tilt(question.up)
    tilt = f"looks {'down' if pitch >= 0 else 'up'} by about {abs(round(pitch))} degrees"
    if abs(roll) >= 1.0:
        tilt += f" and is rolled by about {abs(round(roll))} degrees"
    return _pick(rng, ("The camera {tilt}, so I measure along gravity rather than the image axes. In a "
                       "gravity-aligned frame (right, height relative to the camera, forward, in metres): {c}.",
                       "Since the camera {tilt}, I first rotate the centres into a gravity-aligned frame "
                       "(right, height relative to the camera, forward, in metres): {c}."), tilt=tilt, c=coordinates)


def _difference(a: float, b: float) -> str:
    return f"{_number(b)} - {_signed(a)} = {_number(b - a)}"


def _dtr_relation(question: Question, axes: _Axes, rng: np.random.Generator) -> str:
    fact, subjects = question.fact, question.subjects
    A, ta = subjects[0].label, subjects[0].thing
    ra, va, fa = axes.values(ta)
    if len(subjects) == 2:
        B, tb = subjects[1].label, subjects[1].thing
        rb, vb, fb = axes.values(tb)
        dr, dv, df = rb - ra, vb - va, fb - fa
    family = fact.family
    if family in ("left_right", "above_below", "behind_front"):
        if family == "left_right":
            axis, calc, gap, relation = axes.right, _difference(ra, rb), dr, f"to the {'right' if dr > 0 else 'left'} of"
        elif family == "above_below":
            gap = axes.height_of(dv)
            axis, calc, relation = axes.vertical, _difference(va, vb), f"{'higher' if gap > 0 else 'lower'} than"
        else:
            axis, calc, gap = axes.forward, _difference(fa, fb), df
            relation = f"{'farther from' if df > 0 else 'closer to'} the camera than"
        note = " (y grows downwards)" if axes.level and family == "above_below" else ""
        return _pick(rng, ("The change in {axis} from {A} to {B} is {calc} m{note}, so {B} is {d} m {relation} {A}.",
                           "Comparing {axis} values, {B} minus {A} gives {calc} m{note}: {B} is {d} m {relation} "
                           "{A}."), axis=axis, A=A, B=B, calc=calc, note=note, d=metres_text(abs(gap)),
                     relation=relation)
    if family in ("wide_thin", "tall_short"):
        measure, noun = (rel.width, "width") if family == "wide_thin" else (rel.height, "height")
        return _pick(rng, ("From their 3D boxes, the {noun} of {A} is {x} m and the {noun} of {B} is {y} m.",
                           "The 3D extents give a {noun} of {x} m for {A} and {y} m for {B}."),
                     noun=noun, A=A, B=B, x=metres_text(measure(ta.box)), y=metres_text(measure(tb.box)))
    if family == "big_small":
        def volume(thing: Thing) -> str:
            dims = [rel.width(thing.box), rel.height(thing.box), thing.depth_extent]
            shown = [math.floor(d * 1000 + 0.5) / 10 for d in dims]  # centimetres, one decimal
            cubic_cm = math.prod(shown)
            amount = f"{cubic_cm / 1000:.1f} litres" if cubic_cm >= 1000 else f"{cubic_cm:.0f} cm^3"
            return " x ".join(f"{d:.1f}" for d in shown) + f" cm = {amount}"
        return _pick(rng, ("From their 3D boxes, {A} is about {va} and {B} is about {vb}.",
                           "Multiplying width, height and depth: {A} gives {va}, {B} gives {vb}."),
                     A=A, B=B, va=volume(ta), vb=volume(tb))
    if family in ("distance", "horizontal_distance", "vertical_distance"):
        parts = {"distance": [(axes.right, dr), (axes.vertical, dv), (axes.forward, df)],
                 "horizontal_distance": [(axes.right, dr), (axes.forward, df)],
                 "vertical_distance": [(axes.vertical, dv)]}[family]
        differences = ", ".join(f"d{name} = {_number(delta)}" for name, delta in parts)
        if family == "vertical_distance":
            result = f"|d{axes.vertical}| = {metres_text(fact.truth)} m"
        else:
            squares = " + ".join(f"{_signed(delta)}^2" for _, delta in parts)
            result = f"sqrt({squares}) = {metres_text(fact.truth)} m"
        word = {"distance": "distance", "horizontal_distance": "horizontal distance",
                "vertical_distance": "vertical distance"}[family]
        return _pick(rng, ("From {A} to {B}: {differences} m. The {word} is {result}{note}.",
                           "Subtracting the centres ({B} minus {A}): {differences} m, so the {word} is "
                           "{result}{note}."),
                     A=A, B=B, differences=differences, word=word, result=result, note=_unit_note(question))
    if family in ("width", "height"):
        value = rel.width(ta.box) if family == "width" else rel.height(ta.box)
        where = "across the view" if family == "width" else "along the vertical"
        return _pick(rng, ("The 3D box of {A} extends {v} m {where}{note}.", "Measured {where}, {A} spans {v} m{note}."),
                     A=A, v=metres_text(value), where=where, note=_unit_note(question))
    if family == "direction":
        angle = math.degrees(math.atan2(dr, df))
        return (f"From {A} to {B}: d{axes.right} = {_number(dr)} m and d{axes.forward} = {_number(df)} m. "
                f"Facing forward from {A}, the angle atan2(d{axes.right}, d{axes.forward}) is about "
                f"{round(angle)} degrees; with 12 o'clock straight ahead and 30 degrees per hour, {B} is at "
                f"{fact.truth} o'clock.")
    raise ValueError(f"unknown question family {family!r}")


def _unit_note(question: Question) -> str:
    """', which is about 16 inches' when the answer is not already the metres just shown (metric answers
    from 1 m on are those metres)."""
    if question.fact.answer_type != "numeric" or (not question.style.imperial and question.fact.truth >= 1.0):
        return ""
    return f", which is about {question.answer}"


# Relations a camera-frame coordinate decides as the gravity frame does on most cameras: x for left/right (any
# camera without roll), z for behind/in front (questions are only asked where the straight-line range agrees).
# Family -> (index into the camera centre, axis name, what a larger / a smaller value means).
# How the copy step opens (training/pretrain.py's named readings use the same words).
COPY_STEP_OPENING = "Reading {axis} off the detected centres (x right, y down, z forward):"
_CAMERA_COMPARISONS = {
    "left_right": (0, "x", "to the right of", "to the left of"),
    "behind_front": (2, "z", "farther from the camera than", "closer to the camera than"),
}


def _camera_comparison(question: Question, rng: np.random.Generator) -> str | None:
    """The relation step read straight off the ``<detect>`` centres, for a family whose camera-frame coordinate
    orders the two objects as the gravity frame does on this question; None elsewhere. A copy of the numbers just
    written is exact, while restating them along gravity needs the camera's tilt, which the policy can only guess
    from the image. Two phrasing draws, as the frame and relation steps it replaces take, so the questions drawn
    after it from the same generator stay the same."""
    entry = _CAMERA_COMPARISONS.get(question.fact.family)
    if entry is None or len(question.subjects) != 2:
        return None
    index, axis, larger, smaller = entry
    a, b = question.subjects
    value_a, value_b = a.thing.camera_center[index], b.thing.camera_center[index]
    # The gravity box centre is (right, down, forward): the same index names the same axis.
    if (value_b - value_a) * (b.thing.box.center[index] - a.thing.box.center[index]) <= 0:
        return None
    order, relation = ("larger", larger) if value_b > value_a else ("smaller", smaller)
    reading = _pick(rng, ("From the detected centres (camera frame: x right, y down, z forward), {A} has {axis} = "
                          "{va} and {B} has {axis} = {vb}.",
                          COPY_STEP_OPENING + " {A} {va}, {B} {vb}."),
                    A=a.label, B=b.label, axis=axis, va=_number(value_a), vb=_number(value_b))
    decision = _pick(rng, ("{B} has the {order} {axis}, so {B} is {relation} {A}.",
                           "The {order} {axis} puts {B} {relation} {A}."),
                     A=a.label, B=b.label, axis=axis, order=order, relation=relation)
    return f"{reading} {decision}"


def dtr_completion(question: Question, rng: np.random.Generator) -> str:
    comparison = _camera_comparison(question, rng)
    if comparison is not None:
        steps = [comparison, _conclusion(question, rng)]
    else:
        axes = _Axes(_is_level(question))
        steps = [_dtr_frame(question, axes, rng), _dtr_relation(question, axes, rng), _conclusion(question, rng)]
    detections = [s.detection for s in question.subjects]
    return render_dtr(detections, " ".join(steps), question.answer)


# ------------------------------------------------------------------------------------ reading a chain back

# The relation step a DTR chain takes for each question family, and a phrase of each of that step's phrasings
# above: an evaluation reads back which step a model's chain wrote (`dtr_step`; training.heldout.reasoning_steps).
# tests/test_data_qa.py checks that every generated chain reads back as its family's step.
DTR_STEP_OF_FAMILY = {
    "left_right": "axis", "above_below": "axis", "behind_front": "axis",
    "wide_thin": "size", "tall_short": "size", "big_small": "size",
    "distance": "distance", "horizontal_distance": "distance", "vertical_distance": "distance",
    "width": "extent", "height": "extent", "direction": "direction",
}
_DTR_STEP_PHRASES = {
    "axis": r"The change in \w+ from|Comparing \w+ values|From the detected centres \(camera frame|off the detected "
            r"centres",
    "size": r"From their 3D boxes|The 3D extents give|Multiplying width, height and depth",
    "distance": r"distance is (?:sqrt\(|\|d)",
    "extent": r"The 3D box of .+? extends|Measured (?:across the view|along the vertical),",
    "direction": r"Facing forward from .+?, the angle atan2",
}
DTR_STEPS = tuple(_DTR_STEP_PHRASES)
_DTR_STEP = re.compile("|".join(f"(?P<{kind}>{phrase})" for kind, phrase in _DTR_STEP_PHRASES.items()))


def dtr_step(think: str) -> str | None:
    """The relation step (a `DTR_STEPS` kind) a DTR chain of thought takes: the kind whose phrase comes first in
    it; None when it has none of them."""
    match = _DTR_STEP.search(think)
    return match.lastgroup if match else None
