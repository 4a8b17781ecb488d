"""Understanding free-text answers: lengths with units, option letters, yes/no, clock hours.

Every parser takes arbitrary text and returns a canonical value, or None when the text does not say one;
none of them raises on any str.

- ``parse_length_m`` / ``read_length``: metres as a float / as an interval with the reason when there is
  none. Units: mm, cm, m, km, in/inch, ft/foot/feet, yd/yard and their symbols (3'2", 3′2″). Feet directly
  followed by inches ("3 feet 2 inches", "3 ft and 2 in", "3'2\"", "5 foot 6": a bare number under 12 after
  feet is inches), and metres by centimetres ("2 m 30 cm"), form one length. When several lengths appear,
  the LAST one with a unit wins (chains of thought end with the conclusion: "... so the answer is 1.5 m");
  with no unit anywhere, the last bare number that is not an index ("Region [0]", "frame 12") or an hour
  ("3 o'clock") wins, in ``default_unit`` (the unit the question asks for, see ``question_unit``; metres
  when None). "in" followed by "front", "the", ... is a preposition, not inches.
  Decided cases (each tested):
    * a non-length unit makes the answer unparsed, never metres: "450 pixels", "px", "30%", "45 degrees",
      "2 seconds", "3 kg", "2 m²", "2 m/s" (unless a length with a unit is also stated);
    * fractions are numbers: "3/4 meter" = 0.75 m, "1 1/2 feet" = 1.5 ft, "1/2" = 0.5 (bare); a bare
      number or range followed by "of" is a proportion or a count: "1/3 to 1/2 of the image" is unparsed;
    * a comma before exactly three digits separates thousands ("1,200 mm" = 1.2 m); before one or two
      digits it is a decimal comma ("2,5 m" = 2.5 m); "1.200" is one point two (the decimal point wins);
    * number words right before a length unit word: "one meter", "half a meter", "a quarter of a meter",
      "two and a half feet", "twenty-five centimeters", "one point five meters", "an inch"; elsewhere
      ("the one on the left") words are not numbers;
    * a range ("1.5 to 2 meters", "1.5-2 m", "1.5 or 2 m", "between 1 m and 150 cm"; a bare first bound
      takes the second's unit) is read as an interval; ``parse_length_m`` reduces it by ``range_rule``:
      "mean" (default: Q-Spatial's official rule), "lower" or "upper";
    * negative, infinite or unparseable lengths give None.
- ``question_unit``: the unit a question asks for ("... in centimeters?", "how many feet ...") or None.
- ``parse_choice``: an option letter, upper case. Tried in order: the whole answer is a letter ("B", "(b)",
  "B."); a letter after "answer"/"option"/"choice" ("The answer is B", "Option (c)"); a letter opening the
  answer before punctuation ("C. The chair"); a bracketed letter anywhere; a capital letter standing alone.
  A bare "A"/"a"/"I" followed by a word is read as the article or pronoun ("A chair", "I think"), unless
  that word is a connective ("A because ..."); letters outside ``options`` are ignored.
- ``parse_yes_no``: "yes"/"no" from a leading yes/no/true/false, else the last such word.
- ``parse_clock``: an hour 1..12 from "2 o'clock", "two o’clock", "2:00" (the last one in the text), or an
  answer that is only an hour ("2", "at two"). 0 and 13+ are not clock hours and give None.
- ``answer_pattern``: the canonical form of an answer type as a regular expression (what the data engine
  writes and the prompt asks for: "yes", "B", "1.25 m", "3 o'clock"); constrained decoding keeps the
  model's answer inside it (``sr_real_core.constrained``).
- ``parse_answer``: dispatch on the answer type. Qualitative predicates (left/right, above/below, taller,
  ...) are posed as yes/no or multiple-choice questions in this project's data, so they parse with the
  "yesno" or "choice" type; there is no separate predicate type.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

AnswerValue = float | int | str | None

# A number: a mixed number or fraction ("1 1/2", "3/4"), digits with thousands separators ("1,200"), a
# decimal comma ("2,5"), or plain digits. Alternatives are tried in this order.
_NUMBER = (r"(?:[0-9]+[ \t]+[0-9]+/[0-9]+(?![0-9/])|[0-9]+/[0-9]+(?![0-9/])"
           r"|[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?(?![0-9]|,[0-9])|[0-9]+,[0-9]{1,2}(?![0-9]|,[0-9])"
           r"|[0-9]+(?:\.[0-9]+)?|\.[0-9]+)")
_THOUSANDS_RE = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
# A preposition after "in" means the number is not in inches ("2 in front of", "3 in the box").
_NOT_INCHES = r"(?!\s*(?:front|the|a|an|of|this|that|which|it|its|between|order)\b)"
# (unit, spellings, metres per unit); longest spellings first because the alternation takes the first match.
_WORD_UNITS: tuple[tuple[str, str, float], ...] = (
    ("km", r"kilomet(?:er|re)s?|km", 1000.0),
    ("cm", r"centimet(?:er|re)s?|cm", 0.01),
    ("mm", r"millimet(?:er|re)s?|mm", 0.001),
    ("m", r"met(?:er|re)s?|m", 1.0),
    ("in", r"inch(?:es)?|in\b\.?" + _NOT_INCHES, 0.0254),
    ("ft", r"feet|foot|ft\b\.?", 0.3048),
    ("yd", r"yards?|yds?", 0.9144),
)
# Symbols must touch the number (3'2"); two apostrophes are inches, one is feet.
_SYMBOL_UNITS: tuple[tuple[str, str, float], ...] = (
    ("in", r"''|’’|′′|\"|”|″", 0.0254),
    ("ft", r"'|’|′", 0.3048),
)
# Units of anything but length: such a quantity is never read as metres ("450 pixels", "30%", "45 degrees").
_OTHER_UNITS = (r"%|percent|per\s*cent|px|pixels?|pts?|points?|degrees?|deg|°|rad(?:ians?)?|seconds?|secs?|s"
                r"|minutes?|mins?|hours?|hrs?|h|kg|kilograms?|grams?|g|lbs?|pounds?|ounces?|oz|tons?|tonnes?"
                r"|lit(?:er|re)s?|l|ml|times|x|fps|hz|mph|square|sq|cubic")
_QUOTES = "'\"’‘“”"
# A larger unit directly followed by a smaller one is one length: "3 ft 2 in", "2 m 30 cm".
_COMPOUND_RATIOS = {("ft", "in"): 12.0, ("m", "cm"): 100.0}
_UNIT_PATTERNS = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern, _ in _WORD_UNITS + _SYMBOL_UNITS]
_METRES_PER_UNIT = {name: metres for name, _, metres in _WORD_UNITS + _SYMBOL_UNITS}
_QUANTITY_RE = re.compile(
    r"(?:(?<![\w.])(?P<sign>[-\u2212]))?(?<![\w.,/])(?P<number>" + _NUMBER + r")"
    r"(?:\s*(?P<unit>" + "|".join(f"(?:{pattern})" for _, pattern, _ in _WORD_UNITS) + r")(?![a-z])"
    r"(?P<per>\s*(?:[²³]|\^|/\s*[a-z]))?"  # m², m^2, m/s: an area, a volume, a speed
    r"|(?P<symbol>" + "|".join(f"(?:{pattern})" for _, pattern, _ in _SYMBOL_UNITS) + r")"
    r"|\s*(?P<other>" + _OTHER_UNITS + r")(?![a-z]))?",
    re.IGNORECASE,
)
_INDEX_BEFORE_RE = re.compile(
    r"(?:\[\s*|\b(?:region|frame|view|image|object|option|step|no\.?|number)\s*#?\s*|#\s*)$", re.IGNORECASE
)
_CLOCK_AFTER_RE = re.compile(r"\s*o(?:\s*['’`])?\s*clock", re.IGNORECASE)
_PROPORTION_AFTER_RE = re.compile(r"\s*of\b", re.IGNORECASE)  # "1/3 of the image", "2 of the chairs"
# Each optional part owns its trailing white space: two adjacent \s* could split a long run in many ways.
_COMPOUND_JOINER_RE = re.compile(r"\s*(?:(?:,|and|&)\s*)?", re.IGNORECASE)
_RANGE_JOINER_RE = re.compile(r"\s*(?:-|–|—|~|to|or|and)\s*", re.IGNORECASE)
_BETWEEN_BEFORE_RE = re.compile(r"\bbetween\s+$", re.IGNORECASE)
RANGE_RULES = ("mean", "lower", "upper")

# Number words are read only right before a length unit word ("two and a half feet", "half a meter"), where
# they cannot be a pronoun ("the one on the left") or an hour.
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORDS = {word: value for value, word in enumerate(_ONES)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_CARDINAL = rf"(?:(?:{'|'.join(_TENS)})(?:[\s-]+(?:{'|'.join(_ONES[1:10])}))?|{'|'.join(reversed(_ONES))}|an?)"
_FRACTION_WORDS = {"half": 0.5, "quarter": 0.25}
_UNIT_WORD = r"(?:(?:kilo|centi|milli)?met(?:er|re)s?|feet|foot|inch(?:es)?|yards?)\b"
_WORD_NUMBER_RE = re.compile(
    rf"(?<![\w-])(?:(?P<fraction>half|(?:a\s+)?quarter)\s+(?:of\s+)?an?|an?\s+(?P<lone>half|quarter)"
    rf"|(?P<cardinal>{_CARDINAL})(?:\s+point\s+(?P<point>(?:(?:{'|'.join(_ONES[:10])})\s*)+?))?"
    rf"(?:\s+and\s+an?\s+(?P<extra>half|quarter))?)(?=\s+{_UNIT_WORD})",
    re.IGNORECASE,
)
# "in centimeters", "(in feet)", "how many inches": the unit the question asks for.
_QUESTION_UNIT_RE = re.compile(
    r"\b(?:in|using|with)\s+(?:units?\s+of\s+)?(?P<unit>" + "|".join(p for _, p, _ in _WORD_UNITS[:4])
    + r"|inch(?:es)?|feet|foot|ft|yards?)\b"
    r"|\bhow\s+many\s+(?P<many>(?:kilo|centi|milli)?met(?:er|re)s|feet|inches|yards)\b",
    re.IGNORECASE,
)

_HOUR_WORDS = {
    word: hour
    for hour, word in enumerate(
        "one two three four five six seven eight nine ten eleven twelve".split(), start=1
    )
}
_HOUR = r"(?P<hour>[0-9]{1,2}|" + "|".join(_HOUR_WORDS) + r")"
_CLOCK_RE = re.compile(r"(?<![\w.])" + _HOUR + r"(?:\s*o(?:\s*['’`])?\s*clock\b|:00\b)", re.IGNORECASE)
_BARE_HOUR_RE = re.compile(r"\s*(?:at\s+)?" + _HOUR + r"\s*(?:[.!]\s*)?", re.IGNORECASE)

_CHOICE_MARKER_RE = re.compile(
    r"\b(?:answer|option|choice)\b\s*(?:(?:is\b|:|=)\s*)?(?:option\b\s*)?"
    r"(?P<open>[(\[])?(?P<letter>[A-Za-z])(?P<close>[)\]])?(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_LEADING_CHOICE_RE = re.compile(r"\s*[(\[]?(?P<letter>[A-Za-z])(?:[)\].:,]|\s*$)")
_BRACKETED_CHOICE_RE = re.compile(r"(?<![A-Za-z])[(\[](?P<letter>[A-Za-z])[)\]]")
_STANDALONE_CAPITAL_RE = re.compile(r"(?<![\w'’])(?P<letter>[A-Z])(?![\w'’])")
_NEXT_WORD_RE = re.compile(r"\s+(?P<word>[A-Za-z]+)")
_WORD_LETTERS = frozenset("AI")  # English words by themselves: the article "a" and the pronoun "I"
_CONNECTIVES = frozenset("because since as and so which with for given while is was appears seems looks".split())
_CHOICE_STRIP = " \t\r\n.,:;!?()[]{}'\"*"

_YES_WORDS = frozenset({"yes", "true", "correct", "yeah", "yep"})
_NO_WORDS = frozenset({"no", "false", "incorrect", "nope"})
_WORD_RE = re.compile(r"[a-z]+")


# ----------------------------------------------------------------------------------------------- lengths


class _Quantity(NamedTuple):
    low: float  # signed, in ``unit``; equal to ``high`` unless the quantity is a range ("1.5 to 2 m")
    high: float
    unit: str | None  # key of _UNIT_PATTERNS, None for a bare number
    start: int
    end: int
    other: str | None = None  # the non-length unit ("pixels", "%") or "proportion" ("1/3 of the image")


class LengthReading(NamedTuple):
    """What a text says as a length: an interval in metres (low == high for one value), or why it says none."""

    low: float | None
    high: float | None
    reason: str | None = None  # set when low/high are None

    def value(self, range_rule: str = "mean") -> float | None:
        """One length: the midpoint of a range ("mean"), or its lower or upper bound."""
        if self.low is None or self.high is None:
            return None
        if range_rule not in RANGE_RULES:
            raise ValueError(f"range_rule must be one of {RANGE_RULES}, got {range_rule!r}")
        return {"mean": (self.low + self.high) / 2, "lower": self.low, "upper": self.high}[range_rule]


def read_length(text: str, default_unit: str | None = None) -> LengthReading:
    """The length a free-text answer states (see the module docstring); ``default_unit`` ("cm", "ft", ...)
    is the unit of a bare number, metres when None."""
    if not isinstance(text, str):
        return LengthReading(None, None, "not text")
    text = _WORD_NUMBER_RE.sub(_digits_for_words, text)
    quantities = [quantity for match in _QUANTITY_RE.finditer(text) if (quantity := _quantity(text, match))]
    quantities = _merge_ranges(text, _merge_compounds(text, quantities))
    lengths = [quantity for quantity in quantities if quantity.unit is not None and quantity.other is None]
    if lengths:
        chosen = lengths[-1]
    else:
        others = [quantity.other for quantity in quantities if quantity.other is not None]
        if others:
            return LengthReading(None, None, f"not a length ({others[-1]})")
        chosen = next((q for q in reversed(quantities) if not _is_index_or_hour(text, q)), None)
        if chosen is None:
            return LengthReading(None, None, "no length")
    per_unit = _METRES_PER_UNIT[chosen.unit or default_unit or "m"]
    low, high = chosen.low * per_unit, chosen.high * per_unit
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0:
        return LengthReading(None, None, "not a positive finite length")
    return LengthReading(low, high)


def parse_length_m(text: str, default_unit: str | None = None, range_rule: str = "mean") -> float | None:
    """A length in metres from free text (see the module docstring for the rules), or None."""
    return read_length(text, default_unit).value(range_rule)


def length_unit(spelling: Any) -> str | None:
    """The unit key ("m", "cm", "ft", ...) of a unit's spelling ("meters", "Feet", "in"), else None."""
    if not isinstance(spelling, str):
        return None
    spelling = spelling.strip()
    return next((name for name, pattern in _UNIT_PATTERNS[:len(_WORD_UNITS)] if pattern.fullmatch(spelling)), None)


def metres_per_unit(unit: str) -> float:
    """Metres in one ``unit`` (a key that ``length_unit`` returns)."""
    return _METRES_PER_UNIT[unit]


def question_unit(question: Any) -> str | None:
    """The unit a question asks for ("... in centimeters?", "how many feet ..."), else None."""
    if not isinstance(question, str):
        return None
    match = _QUESTION_UNIT_RE.search(question)
    return length_unit(match["unit"] or match["many"]) if match else None


def _digits_for_words(match: re.Match) -> str:
    if match["fraction"] or match["lone"]:
        word = (match["fraction"] or match["lone"]).split()[-1].lower()
        return f"{_FRACTION_WORDS[word]:g}"
    words = match["cardinal"].lower().replace("-", " ").split()
    value = 1.0 if words[0] in ("a", "an") else float(sum(_NUMBER_WORDS[word] for word in words))
    if match["point"]:
        value += float("0." + "".join(str(_NUMBER_WORDS[word]) for word in match["point"].lower().split()))
    if match["extra"]:
        value += _FRACTION_WORDS[match["extra"].lower()]
    return f"{value:g}"


def _number(text: str) -> float | None:
    """The value of a _NUMBER match; None for a fraction over zero."""
    if "/" in text:
        whole, _, fraction = text.rpartition(" ") if " " in text.strip() else ("0", "", text)
        numerator, denominator = (float(part) for part in fraction.split("/"))
        return float(whole or 0) + numerator / denominator if denominator else None
    if "," in text:
        text = text.replace(",", "") if _THOUSANDS_RE.fullmatch(text) else text.replace(",", ".")
    return float(text)


def _quantity(text: str, match: re.Match) -> _Quantity | None:
    number = _number(" ".join(match["number"].split()))
    if number is None:
        return None
    value = number * (-1.0 if match["sign"] else 1.0)
    unit, other = None, None
    if match["unit"]:
        unit = _unit_name(match["unit"])
        other = match["unit"] + match["per"] if match["per"] else None
    elif match["symbol"] and not _is_quoted(text, match.start()):
        unit = _unit_name(match["symbol"])
    elif match["other"]:
        other = match["other"]
    return _Quantity(value, value, unit, match.start(), match.end(), other)


def _is_quoted(text: str, start: int) -> bool:
    """A quote before the number opens a quotation ('1.2'), unless it is the feet mark of 3'2"."""
    opens_quote = start > 0 and text[start - 1] in _QUOTES
    return opens_quote and not (start > 1 and text[start - 2].isdigit())


@functools.lru_cache(maxsize=256)  # few distinct spellings; a long answer repeats them
def _unit_name(spelling: str) -> str:
    for name, pattern in _UNIT_PATTERNS:
        if pattern.fullmatch(spelling):
            return name
    raise AssertionError(f"unit {spelling!r} matched the quantity pattern but no unit pattern")


def _merge_compounds(text: str, quantities: list[_Quantity]) -> list[_Quantity]:
    """'3 feet 2 inches' is one length of 38 inches, not two lengths; likewise '2 m 30 cm' and '5 foot 6'."""
    merged: list[_Quantity] = []
    for quantity in quantities:
        previous = merged[-1] if merged else None
        unit = quantity.unit
        if previous and previous.unit == "ft" and unit is None and quantity.other is None and 0 <= quantity.low < 12:
            unit = "in"  # "5 foot 6", "5'6": the number after feet is inches
        ratio = _COMPOUND_RATIOS.get((previous.unit, unit)) if previous and previous.other is None else None
        if ratio is not None and quantity.other is None and 0 <= quantity.low < ratio and _COMPOUND_JOINER_RE.fullmatch(
                text, previous.end, quantity.start):
            total = previous.low * ratio + quantity.low
            merged[-1] = _Quantity(total, total, unit, previous.start, quantity.end)
        else:
            merged.append(quantity)
    return merged


def _merge_ranges(text: str, quantities: list[_Quantity]) -> list[_Quantity]:
    """'1.5 to 2 m', '1.5-2 m', 'between 1 m and 150 cm' are one interval; a bare first bound takes the
    unit of the second. A bare number or range followed by 'of' is a proportion or a count, not a length."""
    merged: list[_Quantity] = []
    for quantity in quantities:
        previous = merged[-1] if merged else None
        if previous is not None and _is_range(text, previous, quantity):
            scale = _METRES_PER_UNIT[previous.unit] / _METRES_PER_UNIT[quantity.unit] if (
                previous.unit and quantity.unit) else 1.0
            low, high = sorted((previous.low * scale, quantity.low))
            quantity = _Quantity(low, high, quantity.unit, previous.start, quantity.end, quantity.other)
            merged.pop()
        if quantity.unit is None and quantity.other is None and _PROPORTION_AFTER_RE.match(text, quantity.end):
            quantity = quantity._replace(other="proportion")
        merged.append(quantity)
    return merged


def _is_range(text: str, first: _Quantity, second: _Quantity) -> bool:
    if first.other is not None or first.low != first.high or (first.unit is not None and second.unit is None):
        return False
    joiner = _RANGE_JOINER_RE.fullmatch(text, first.end, second.start)
    if joiner is None:
        return False
    if joiner.group().strip().lower() == "and":
        return bool(_BETWEEN_BEFORE_RE.search(text, max(0, first.start - 16), first.start))
    return True


def _is_index_or_hour(text: str, quantity: _Quantity) -> bool:
    before = text[max(0, quantity.start - 16) : quantity.start]
    return bool(_INDEX_BEFORE_RE.search(before) or _CLOCK_AFTER_RE.match(text, quantity.end))


# ----------------------------------------------------------------------------------------------- choices


def parse_choice(text: str, options: Iterable[str] = "ABCD") -> str | None:
    """The option letter an answer picks (upper case), or None (see the module docstring for the rules)."""
    if not isinstance(text, str):
        return None
    letters = {option.upper() for option in options}
    whole = text.strip(_CHOICE_STRIP)
    if len(whole) == 1 and whole.upper() in letters:
        return whole.upper()
    for match in reversed(list(_CHOICE_MARKER_RE.finditer(text))):
        if _is_choice(text, match, letters):
            return match["letter"].upper()
    leading = _LEADING_CHOICE_RE.match(text)
    if leading and leading["letter"].upper() in letters:
        return leading["letter"].upper()
    for match in _BRACKETED_CHOICE_RE.finditer(text):
        if match["letter"].upper() in letters:
            return match["letter"].upper()
    for match in _STANDALONE_CAPITAL_RE.finditer(text):
        if match["letter"] in letters and not _reads_as_word(text, match):
            return match["letter"]
    return None


def _is_choice(text: str, match: re.Match, letters: set[str]) -> bool:
    if match["letter"].upper() not in letters:
        return False
    bracketed = match["open"] is not None or match["close"] is not None
    return bracketed or not _reads_as_word(text, match)


def _reads_as_word(text: str, match: re.Match) -> bool:
    """True for 'A chair' or 'I think': a word-letter followed by a word that is not a connective."""
    if match["letter"].upper() not in _WORD_LETTERS:
        return False
    following = _NEXT_WORD_RE.match(text, match.end())
    return following is not None and following["word"].lower() not in _CONNECTIVES


# ------------------------------------------------------------------------------------------------ yes/no


def parse_yes_no(text: str) -> str | None:
    """'yes' or 'no' from a leading yes/no/true/false word, else from the last such word; else None."""
    if not isinstance(text, str):
        return None
    words = _WORD_RE.findall(text.lower())
    if words and (words[0] in _YES_WORDS or words[0] in _NO_WORDS):
        return "yes" if words[0] in _YES_WORDS else "no"
    for word in reversed(words):
        if word in _YES_WORDS or word in _NO_WORDS:
            return "yes" if word in _YES_WORDS else "no"
    return None


# ------------------------------------------------------------------------------------------- clock hours


def parse_clock(text: str) -> int | None:
    """A clock hour 1..12 from "2 o'clock", "two o’clock", "2:00" (the last such phrase) or a bare hour."""
    if not isinstance(text, str):
        return None
    matches = list(_CLOCK_RE.finditer(text))
    match = matches[-1] if matches else _BARE_HOUR_RE.fullmatch(text)
    if match is None:
        return None
    word = match["hour"].lower()
    hour = _HOUR_WORDS[word] if word in _HOUR_WORDS else int(word)
    return hour if 1 <= hour <= 12 else None


# -------------------------------------------------------------------------------------------- dispatching


def parse_answer(text: str, answer_type: str, options: Iterable[str] = "ABCD") -> AnswerValue:
    """Parse by answer type: "numeric" -> metres, "choice" -> letter, "yesno" -> "yes"/"no",
    "direction" -> hour 1..12. Returns None when unparsed; raises ValueError for an unknown type."""
    if answer_type == "numeric":
        return parse_length_m(text)
    if answer_type == "choice":
        return parse_choice(text, options)
    if answer_type == "yesno":
        return parse_yes_no(text)
    if answer_type == "direction":
        return parse_clock(text)
    raise ValueError(f"unknown answer_type {answer_type!r}; expected numeric, choice, yesno or direction")


def canonical_solution(solution: Any, answer_type: str) -> AnswerValue:
    """A dataset's ground truth in the form `parse_answer` returns: metres (>= 0) for "numeric" (a number, or
    text with a unit), an upper-case letter, "yes"/"no", or an hour 1..12. None when it is not one."""
    if isinstance(solution, bool):
        return ("yes" if solution else "no") if answer_type == "yesno" else None
    if answer_type == "numeric":
        metres = float(solution) if isinstance(solution, numbers.Real) else parse_length_m(solution)
        return metres if metres is not None and math.isfinite(metres) and metres >= 0 else None
    if answer_type == "direction":
        if isinstance(solution, numbers.Real):
            return int(solution) if float(solution).is_integer() and 1 <= solution <= 12 else None
        return parse_clock(solution)
    if not isinstance(solution, str):
        return None
    label = solution.strip().strip("()[].").strip()
    if answer_type == "choice":
        return label.upper() if len(label) == 1 and label.isascii() and label.isalpha() else None
    return label.lower() if label.lower() in ("yes", "no") else None


# ------------------------------------------------------------------------------------- canonical forms

# A length as `data.units.say_length` writes it ("1.25 m", "45 centimeters", "5 feet 3 inches"), in any unit
# `parse_length_m` reads by name. Written out (no look-arounds) so that a prefix of it can be matched.
_CANONICAL_LENGTH = (r"[0-9]{1,4}(?:\.[0-9]{1,3})? (?:kilomet(?:er|re)s?|km|centimet(?:er|re)s?|cm"
                     r"|millimet(?:er|re)s?|mm|met(?:er|re)s?|m|inch(?:es)?|in|feet|foot|ft|yards?|yd)"
                     r"(?: [0-9]{1,2} inch(?:es)?)?")
_CANONICAL_FORMS = {"yesno": "(?:yes|no)", "direction": "(?:1[0-2]|[1-9]) o'clock", "numeric": _CANONICAL_LENGTH}
# "A. the red bbox" at the start of a line, or "(A)" anywhere: the option letters a question offers.
_OPTION_LETTER_RE = re.compile(r"(?m)^[ \t]*([A-Z])[.)][ \t]|\(([A-Z])\)")


def option_letters(question: str) -> str:
    """The option letters a multiple-choice question lists ("A. ..." lines or "(A) ..."), else "ABCD"."""
    letters = sorted({first or second for first, second in _OPTION_LETTER_RE.findall(question or "")})
    return "".join(letters) if len(letters) >= 2 else "ABCD"


def answer_pattern(answer_type: str, question: str = "") -> str:
    """The canonical answer of a type as a regular expression: "yes"/"no", one of the question's option
    letters, a number with a length unit, or a clock hour. ValueError for an unknown type."""
    if answer_type == "choice":
        return f"[{option_letters(question)}]"
    if answer_type not in _CANONICAL_FORMS:
        raise ValueError(f"unknown answer_type {answer_type!r}; expected numeric, choice, yesno or direction")
    return _CANONICAL_FORMS[answer_type]
