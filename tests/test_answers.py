"""Tests of sr_real_core.answers: lengths with units, choices, yes/no, clock hours."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sr_real_core.answers import (
    canonical_solution, length_unit, parse_answer, parse_choice, parse_clock, parse_length_m, parse_yes_no,
    question_unit, read_length,
)

FOOT, INCH = 0.3048, 0.0254


@pytest.mark.parametrize(
    ("text", "metres"),
    [
        ("1.2", 1.2),
        ("1.2 m", 1.2),
        ("1.2m", 1.2),
        ("1.2 M.", 1.2),
        ("45 cm", 0.45),
        ("450 mm", 0.45),
        ("0.5 km", 500.0),
        ("3 feet 2 inches", 3 * FOOT + 2 * INCH),
        ("3 ft 2 in", 3 * FOOT + 2 * INCH),
        ("3 ft. 2 in.", 3 * FOOT + 2 * INCH),
        ("3 feet and 2 inches", 3 * FOOT + 2 * INCH),
        ("3'2\"", 3 * FOOT + 2 * INCH),
        ("3' 2''", 3 * FOOT + 2 * INCH),
        ("3′2″", 3 * FOOT + 2 * INCH),
        ("2 meters and 30 centimeters", 2.3),
        ("1 m, 5 cm", 1.05),
        ("5'", 5 * FOOT),
        ("about 2.5 meters", 2.5),
        ("2.5 metres", 2.5),
        ("6.91 feet", 6.91 * FOOT),
        ("10.0 inches", 10 * INCH),
        ("1 foot", FOOT),
        ("2 yards", 2 * 0.9144),
        ("12 in", 12 * INCH),
        (".5 m", 0.5),
        ("0 m", 0.0),
        ("Region [0] and Region [1] are 11.4 meters apart.", 11.4),
        ("Region [0] and Region [1] are 11.4 apart.", 11.4),
        ("So the answer is 1.5 m", 1.5),
        ("The table is 2 m wide, so the gap is 40 cm.", 0.40),  # the last length with a unit
        ("Region 12 is 3 in front of region 2", 3.0),  # "in front" is not inches; region indices are skipped
        ("1.2-1.5 m", 1.35),  # a range reads as its midpoint (parse_length_m range_rule="mean")
        ("It is '1.2' away", 1.2),  # quotes are not feet marks
        ("- 3 feet", 3 * FOOT),  # a list bullet, not a minus sign
    ],
)
def test_parse_length_m(text, metres):
    assert parse_length_m(text) == pytest.approx(metres)


@pytest.mark.parametrize(
    "text",
    ["", "far away", "-1.2 m", "\u22121.2 m", "nan", "NaN m", "inf m", "Region [0]", "frame 12", "3 o'clock",
     "9" * 400 + " m"],
)
def test_parse_length_m_rejects(text):
    assert parse_length_m(text) is None


def test_parse_length_m_bare_number_is_metres_and_unit_wins_over_bare():
    assert parse_length_m("7") == 7.0
    assert parse_length_m("2 objects, 30 cm apart, 4 chairs") == pytest.approx(0.30)


# Issue 16: answers read from real free-text predictions on SpatialRGPT-Bench and Q-Spatial.
@pytest.mark.parametrize(
    ("text", "unit"),
    [("approximately 450 pixels", "pixels"), ("450px", "px"), ("about 30% of the width", "%"),
     ("roughly 45 degrees", "degrees"), ("2 seconds", "seconds"), ("it weighs 3 kg", "kg"),
     ("the floor is 12 m² large", "m²"), ("moving at 2 m/s", "m/s"),
     ("about 1/3 to 1/2 of the image", "proportion"), ("2 of the 5 chairs", "proportion")],
)
def test_non_length_units_are_unparsed_with_the_reason(text, unit):
    assert parse_length_m(text) is None
    assert read_length(text).reason == f"not a length ({unit})"


def test_a_length_beside_a_non_length_unit_still_counts():
    assert parse_length_m("The box spans 450 pixels, which is about 1.2 m.") == pytest.approx(1.2)


@pytest.mark.parametrize(
    ("text", "metres"),
    [("3/4 meter", 0.75), ("1/2", 0.5), ("1 1/2 feet", 1.5 * FOOT), ("1,200 mm", 1.2), ("2,5 m", 2.5),
     ("12,75 m", 12.75), ("1,250,000 mm", 1250.0), ("1.200 m", 1.2), ("about 1/0 m and 2 m", 2.0)],
)
def test_fractions_and_digit_separators(text, metres):
    assert parse_length_m(text) == pytest.approx(metres)


@pytest.mark.parametrize(
    ("text", "metres"),
    [("one meter", 1.0), ("half a meter", 0.5), ("two and a half feet", 2.5 * FOOT),
     ("a quarter of a meter", 0.25), ("twenty-five centimeters", 0.25), ("one point five meters", 1.5),
     ("about an inch", INCH), ("Roughly Three Feet", 3 * FOOT), ("5 foot 6", 5 * FOOT + 6 * INCH),
     ("5'6", 5 * FOOT + 6 * INCH), ("five feet six inches", 5 * FOOT + 6 * INCH)],
)
def test_number_words_and_feet_with_bare_inches(text, metres):
    assert parse_length_m(text) == pytest.approx(metres)


def test_number_words_away_from_a_unit_are_not_numbers():
    assert parse_length_m("The one on the left is taller.") is None
    assert parse_length_m("one of them is 2 m tall") == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("text", "interval"),
    [("1.5 to 2 meters", (1.5, 2.0)), ("1.5-2 m", (1.5, 2.0)), ("1.5 – 2 m", (1.5, 2.0)),
     ("3 or 4 feet", (3 * FOOT, 4 * FOOT)), ("between 1 m and 150 cm", (1.0, 1.5)),
     ("between 2 and 3 meters", (2.0, 3.0)), ("2 m to 1 m", (1.0, 2.0))],
)
def test_ranges_read_as_intervals_and_reduce_by_rule(text, interval):
    low, high = interval
    reading = read_length(text)
    assert (reading.low, reading.high) == (pytest.approx(low), pytest.approx(high))
    assert parse_length_m(text) == pytest.approx((low + high) / 2)  # Q-Spatial: the mean
    assert parse_length_m(text, range_rule="upper") == pytest.approx(high)
    assert parse_length_m(text, range_rule="lower") == pytest.approx(low)
    with pytest.raises(ValueError, match="range_rule"):
        parse_length_m(text, range_rule="median")


def test_two_lengths_joined_by_and_are_not_a_range_without_between():
    assert parse_length_m("Region [0] is 2 m and Region [1] is 3 m") == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("question", "unit"),
    [("What is the height of the chair in centimeters?", "cm"), ("How wide is it (in feet)?", "ft"),
     ("How many inches tall is the lamp?", "in"), ("Answer in meters: how far?", "m"),
     ("How far is the cup from the chair in the room?", None), ("Is it in front?", None)],
)
def test_question_unit(question, unit):
    assert question_unit(question) == unit


def test_a_bare_number_takes_the_default_unit_but_a_stated_unit_wins():
    assert parse_length_m("45", default_unit="cm") == pytest.approx(0.45)
    assert parse_length_m("45 mm", default_unit="cm") == pytest.approx(0.045)
    assert parse_length_m("1.5 to 2", default_unit="ft") == pytest.approx(1.75 * FOOT)


@pytest.mark.parametrize(("spelling", "unit"), [("meters", "m"), ("Feet", "ft"), (" in ", "in"), ("cm", "cm"),
                                                ("furlongs", None), ("", None), (None, None)])
def test_length_unit(spelling, unit):
    assert length_unit(spelling) == unit


@settings(max_examples=200, deadline=None)
@given(
    value=st.decimals(min_value=0, max_value=10_000, places=3, allow_nan=False),
    unit=st.sampled_from([("m", 1.0), ("cm", 0.01), ("mm", 0.001), ("feet", FOOT), ("inches", INCH), ("yd", 0.9144)]),
    spaces=st.sampled_from(["", " ", "  "]),
)
def test_parse_length_m_converts_any_value(value, unit, spaces):
    name, metres_per_unit = unit
    assert parse_length_m(f"The distance is {value}{spaces}{name}.") == pytest.approx(float(value) * metres_per_unit)


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("A is taller", "A"),
        ("B appears closer to the camera.", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("b", "B"),
        ("[C]", "C"),
        ("The answer is B", "B"),
        ("The answer is (d).", "D"),
        ("Answer: C", "C"),
        ("Option (c)", "C"),
        ("option b is right", "B"),
        ("C. The chair is closer.", "C"),
        ("(A) the red one", "A"),
        ("A", "A"),
        ("A.", "A"),
        ("The answer is A because it is closer", "A"),
        ("I think it is C", "C"),
        ("I would pick (b), since A is farther", "B"),
        ("Region [0] is to the left, so D", "D"),
    ],
)
def test_parse_choice(text, letter):
    assert parse_choice(text) == letter


@pytest.mark.parametrize(
    "text",
    ["", "A chair", "The answer is a chair", "I think so", "yes", "E", "The answer is E", "(e)", "object(s)"],
)
def test_parse_choice_rejects(text):
    assert parse_choice(text) is None


def test_parse_choice_honours_options():
    assert parse_choice("E", options="ABCDE") == "E"
    assert parse_choice("The answer is E", options="ABCDE") == "E"
    assert parse_choice("B", options="AC") is None


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("yes", "yes"),
        ("Correct.", "yes"),
        ("Nope", "no"),
        ("Incorrect, it is on the right.", "no"),
        ("Yes.", "yes"),
        ("No, Region [1] is not above.", "no"),
        ("The answer is yes", "yes"),
        ("True", "yes"),
        ("false", "no"),
        ("It is below, so no.", "no"),
    ],
)
def test_parse_yes_no(text, answer):
    assert parse_yes_no(text) == answer


@pytest.mark.parametrize("text", ["", "maybe", "eyes", "nothing", "know"])
def test_parse_yes_no_rejects(text):
    assert parse_yes_no(text) is None


@pytest.mark.parametrize(
    ("text", "hour"),
    [
        ("2 o'clock", 2),
        ("at 2 o’clock", 2),
        ("2", 2),
        ("two o'clock", 2),
        ("Two O'Clock", 2),
        ("12 o'clock", 12),
        ("twelve o'clock", 12),
        ("11 oclock", 11),
        ("3 o clock direction", 3),
        ("at 10:00", 10),
        ("at two.", 2),
        ("Region [0] is at the 4 o'clock position of region 1", 4),
    ],
)
def test_parse_clock(text, hour):
    assert parse_clock(text) == hour


@pytest.mark.parametrize("text", ["", "0 o'clock", "13 o'clock", "13", "left", "2 m", "at 2 meters"])
def test_parse_clock_rejects(text):
    assert parse_clock(text) is None


def test_parse_answer_dispatches():
    assert parse_answer("45 cm", "numeric") == pytest.approx(0.45)
    assert parse_answer("(b)", "choice") == "B"
    assert parse_answer("yes", "yesno") == "yes"
    assert parse_answer("3 o'clock", "direction") == 3
    assert parse_answer("F", "choice", options="ABCDEF") == "F"
    with pytest.raises(ValueError):
        parse_answer("x", "predicate")


@pytest.mark.parametrize("parser", [parse_length_m, parse_choice, parse_yes_no, parse_clock])
def test_parsers_accept_non_strings_without_raising(parser):
    assert parser(None) is None
    assert parser(3) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parsers_never_raise_on_random_text(text):
    length = parse_length_m(text)
    assert length is None or length >= 0
    assert parse_choice(text) in (None, "A", "B", "C", "D")
    assert parse_yes_no(text) in (None, "yes", "no")
    assert parse_clock(text) in (None, *range(1, 13))


@pytest.mark.parametrize(
    "junk",
    [
        "1" + " " * 100_000 + "x",
        "3 ft" + " " * 100_000 + "x 2 in",
        "1 " * 50_000,
        "answer" + " " * 100_000 + "x",
        "2" + " " * 100_000 + "o",
        "at" + " " * 100_000 + "2 x",
        "a " * 50_000,
        "'1" * 50_000,
    ],
)
def test_adversarial_100kb_input_is_fast(junk):
    started = time.process_time()  # CPU time of this process: other processes' load does not count
    for parser in (parse_length_m, parse_choice, parse_yes_no, parse_clock):
        parser(junk)
    assert time.process_time() - started < 1.0


@pytest.mark.parametrize(
    ("solution", "answer_type", "canonical"),
    [(1.5, "numeric", 1.5), ("45 cm", "numeric", 0.45), (0, "numeric", 0.0), ("(b)", "choice", "B"),
     ("Yes", "yesno", "yes"), (True, "yesno", "yes"), (3, "direction", 3), ("2 o'clock", "direction", 2),
     (-1.0, "numeric", None), (float("nan"), "numeric", None), ("AB", "choice", None), (13, "direction", None),
     ("maybe", "yesno", None), (1.5, "choice", None)],
)
def test_canonical_solution(solution, answer_type, canonical):
    assert canonical_solution(solution, answer_type) == canonical
