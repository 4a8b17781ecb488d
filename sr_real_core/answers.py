"""Understanding free-text answers: lengths with units, option letters, yes/no, clock hours.

Every parser takes arbitrary text and returns a canonical value, or None when the text does not say one;
none of them raises on any str.

- ``parse_length_m``: metres as a float. Units: mm, cm, m, km, in/inch, ft/foot/feet, yd/yard and their
  symbols (3'2", 3′2″). A bare number means metres. Feet directly followed by inches ("3 feet 2 inches",
  "3 ft 2 in", "3'2\"", "3 ft and 2 in"), and metres by centimetres ("2 m 30 cm"), form one length. When
  several lengths appear, the LAST one with a unit wins (chains of thought and sentences end with the
  conclusion: "... so the answer is 1.5 m"); with no unit anywhere, the last bare number that is not an
  index ("Region [0]", "frame 12", "option 2") or an hour ("3 o'clock") wins.
  "in" followed by "front", "the", ... is a preposition, not inches. Negative, infinite or unparseable
  lengths give None; number words ("one point two") and thousands separators are not understood.
- ``parse_choice``: an option letter, upper case. Tried in order: the whole answer is a letter ("B", "(b)",
  "B."); a letter after "answer"/"option"/"choice" ("The answer is B", "Option (c)"); a letter opening the
  answer before punctuation ("C. The chair"); a bracketed letter anywhere; a capital letter standing alone.
  A bare "A"/"a"/"I" followed by a word is read as the article or pronoun ("A chair", "I think"), unless
  that word is a connective ("A because ..."); letters outside ``options`` are ignored.
- ``parse_yes_no``: "yes"/"no" from a leading yes/no/true/false, else the last such word.
- ``parse_clock``: an hour 1..12 from "2 o'clock", "two o’clock", "2:00" (the last one in the text), or an
  answer that is only an hour ("2", "at two"). 0 and 13+ are not clock hours and give None.
- ``parse_answer``: dispatch on the answer type. Qualitative predicates (left/right, above/below, taller,
  ...) are posed as yes/no or multiple-choice questions in this project's data, so they parse with the
  "yesno" or "choice" type; there is no separate predicate type.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

AnswerValue = float | int | str | None

_NUMBER = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
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
_QUOTES = "'\"’‘“”"
# A larger unit directly followed by a smaller one is one length: "3 ft 2 in", "2 m 30 cm".
_COMPOUND_RATIOS = {("ft", "in"): 12.0, ("m", "cm"): 100.0}
_UNIT_PATTERNS = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern, _ in _WORD_UNITS + _SYMBOL_UNITS]
_METRES_PER_UNIT = {name: metres for name, _, metres in _WORD_UNITS + _SYMBOL_UNITS}
_QUANTITY_RE = re.compile(
    r"(?:(?<![\w.])(?P<sign>[-\u2212]))?(?<![\w.])(?P<number>" + _NUMBER + r")"
    r"(?:\s*(?P<unit>" + "|".join(f"(?:{pattern})" for _, pattern, _ in _WORD_UNITS) + r")(?![a-z])"
    r"|(?P<symbol>" + "|".join(f"(?:{pattern})" for _, pattern, _ in _SYMBOL_UNITS) + r"))?",
    re.IGNORECASE,
)
_INDEX_BEFORE_RE = re.compile(
    r"(?:\[\s*|\b(?:region|frame|view|image|object|option|step|no\.?|number)\s*#?\s*|#\s*)$", re.IGNORECASE
)
_CLOCK_AFTER_RE = re.compile(r"\s*o(?:\s*['’`])?\s*clock", re.IGNORECASE)
# Each optional part owns its trailing white space: two adjacent \s* could split a long run in many ways.
_COMPOUND_JOINER_RE = re.compile(r"\s*(?:(?:,|and|&)\s*)?", re.IGNORECASE)

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
    value: float  # signed, in ``unit``
    unit: str | None  # key of _UNIT_PATTERNS, None for a bare number
    start: int
    end: int


def parse_length_m(text: str) -> float | None:
    """A length in metres from free text (see the module docstring for the rules), or None."""
    if not isinstance(text, str):
        return None
    quantities = _merge_compounds(text, [_quantity(text, match) for match in _QUANTITY_RE.finditer(text)])
    with_unit = [quantity for quantity in quantities if quantity.unit is not None]
    if with_unit:
        chosen = with_unit[-1]
    else:
        chosen = next((q for q in reversed(quantities) if not _is_index_or_hour(text, q)), None)
        if chosen is None:
            return None
    metres = chosen.value * (_METRES_PER_UNIT[chosen.unit] if chosen.unit else 1.0)
    return metres if math.isfinite(metres) and metres >= 0 else None


def _quantity(text: str, match: re.Match) -> _Quantity:
    value = float(match["number"]) * (-1.0 if match["sign"] else 1.0)
    unit = None
    if match["unit"]:
        unit = _unit_name(match["unit"])
    elif match["symbol"] and not _is_quoted(text, match.start()):
        unit = _unit_name(match["symbol"])
    return _Quantity(value, unit, match.start(), match.end())


def _is_quoted(text: str, start: int) -> bool:
    """A quote before the number opens a quotation ('1.2'), unless it is the feet mark of 3'2"."""
    opens_quote = start > 0 and text[start - 1] in _QUOTES
    return opens_quote and not (start > 1 and text[start - 2].isdigit())


def _unit_name(spelling: str) -> str:
    for name, pattern in _UNIT_PATTERNS:
        if pattern.fullmatch(spelling):
            return name
    raise AssertionError(f"unit {spelling!r} matched the quantity pattern but no unit pattern")


def _merge_compounds(text: str, quantities: list[_Quantity]) -> list[_Quantity]:
    """'3 feet 2 inches' is one length of 38 inches, not two lengths; likewise '2 m 30 cm'."""
    merged: list[_Quantity] = []
    for quantity in quantities:
        previous = merged[-1] if merged else None
        ratio = _COMPOUND_RATIOS.get((previous.unit, quantity.unit)) if previous else None
        if ratio is not None and _COMPOUND_JOINER_RE.fullmatch(text, previous.end, quantity.start):
            total = previous.value * ratio + quantity.value
            merged[-1] = _Quantity(total, quantity.unit, previous.start, quantity.end)
        else:
            merged.append(quantity)
    return merged


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
