"""Reading a model's answer in the light of its question.

``sr_real_core.answers`` reads values out of text (lengths, letters, yes/no, clock hours). Benchmark answers
often state a relation instead of a value: "Region [1] is below." answers "Which is above, Region [0] or
Region [1]?" with option A (Region [0]); "In fact, Region [0] is to the right of Region [1]." answers "Is
Region [0] to the left of Region [1]?" with no. This module maps such answers onto the question's yes/no
or choice semantics, so that no LLM judge is needed.

Which text is the answer: the content of ``<answer>`` when the completion has one; else the completion with
its ``<think>``/``<detect>`` blocks removed (if anything is left); else the whole completion.

Heuristics, by answer type
--------------------------
- numeric: ``answers.read_length`` (units converted; the last length with a unit wins; a bare number is in
  the unit the question asks for, ``answers.question_unit``), a range reduced by the record's benchmark
  protocol (``protocol.range_rule``). Q-Spatial's tags are read as its official parsers read them: the
  last ``scalar{...}`` in the last ``distance_unit{...}``, each matched on its own (``\\\\scalar{3}``,
  ``$\\scalar{3}$`` alike); an unknown unit in the tag is unparsed.
- direction: ``answers.parse_clock``.
- yesno, in order:
    1. a leading verdict word: yes / yeah / correct / true / that's right / exactly ... or no / nope /
       incorrect / false / wrong / not really ... ("Incorrect, Region [0] is not ..." is no);
    2. a relation statement, when the question names a relation (left/right, above/below, behind/front,
       tall/short, wide/thin, big/small; from the category, e.g. ``left_predicate``, else the question's
       first relation word): the last clause of the answer that states a relation on the question's axis
       decides. The statement agrees with the question when it uses the same pole ("to the left",
       "positioned on the left side"), flips when it uses the opposite pole ("to the right"), when it is
       negated ("not", "n't", "no", "never" between its subject and the relation word, or "less" right
       before it), and when its subject is the question's second participant ("Region [1] is in front of
       Region [0]" for "Is Region [0] behind Region [1]?"). Without a recognisable subject ("It is
       behind Region [1]") the subject is the question's first participant;
    3. ``answers.parse_yes_no`` (a leading or last yes/no/true/false word: "That is True.").
- choice, in order:
    1. ``answers.parse_choice`` restricted to the question's letters ("(B)", "The answer is B");
    2. a relation statement as above, over the options: its subject is picked when it agrees with the
       question's relation, the other option (two options only) when it disagrees ("Region [1] is below."
       for "Which is above?" picks Region [0]);
    3. the only option the answer mentions ("bottle" for "(A) sink (B) bottle").
  The options are the record's ``options`` (or ``choices``) in letter order, else the "(A) ... (B) ..."
  parts of the question, else the question's participants in order of mention (A = the first).

Participants are the things a question compares, in order of first mention in the question: its regions
(named by their ``ref``, e.g. "Region [0]" or "red bbox" (also written "red box"), or by their object's
name), else its named objects (``object_names``), else the "Region [N]" it mentions. Mentions are found as
whole words, case-insensitively, ignoring ``<region>`` tokens. A statement's subject is the last
participant mentioned before the relation word in its clause; with none before, the first one after it
that is not its object ("Positioned in front is Region [1]"); with only its object after it ("It is
behind Region [1]"), the other participant.

Known limits: one relation axis per question; "Region [0], compared with Region [1], is taller" reads
Region [1] as the subject; sarcasm and hedged double answers ("left or maybe right") are not understood.
Anything not understood is None: unparsed, scored as wrong and listed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sr_real_core.answers import (
    LengthReading, length_unit, parse_choice, parse_clock, parse_yes_no, question_unit, read_length,
)
from sr_real_core.evaluation.protocol import protocol_for
from sr_real_core.grammar import ParsedCompletion, normalise_ref, parse_completion

Understood = float | int | str | None

# --------------------------------------------------------------------------------------------- relations

# "right" alone also means "correct", so only directional phrases count.
_POLE_WORDS = {
    "left": r"left(?:most|-hand)?",
    "right": r"(?:(?:more|further|farther)\s+)?(?:to|on|at|towards?)\s+the\s+right|right(?:-hand)?\s+side|right\s+of"
             r"|rightmost|right-hand|(?:more|further|farther)\s+right",
    "above": r"above|on\s+top\s+of|atop|higher(?:\s+up)?|upper|over",
    "below": r"below|under(?:neath)?|beneath|lower(?:\s+down)?",
    "behind": r"behind|in\s+back\s+of|further(?:\s+away)?|farther(?:\s+away)?|more\s+distant|in\s+the\s+background",
    "front": r"in\s+front|front\s+of|closer|nearer|ahead\s+of|in\s+the\s+foreground|more\s+forward",
    "tall": r"taller|tall|higher\s+in\s+height|(?:greater|more|larger|bigger)\s+height"
            r"|height\s+(?:is\s+)?(?:not\s+)?(?:greater|larger|more|bigger|higher)",
    "short": r"shorter|short|(?:less(?:er)?|smaller|lower)\s+height"
             r"|height\s+(?:is\s+)?(?:not\s+)?(?:less|smaller|lower)",
    "wide": r"wider|wide|broader|broad|(?:greater|more|larger|bigger)\s+width"
            r"|width\s+(?:is\s+)?(?:not\s+)?(?:greater|larger|more|bigger|higher)",
    "thin": r"thinner|thin|narrower|narrow|(?:less(?:er)?|smaller)\s+width"
            r"|width\s+(?:is\s+)?(?:not\s+)?(?:less|smaller|lower)",
    "big": r"bigger|big|larger|large|(?:greater|more|larger|bigger)\s+(?:in\s+)?size|more\s+space|occupies\s+more",
    "small": r"smaller|small|tinier|tiny|(?:less(?:er)?|smaller)\s+(?:in\s+)?size|less\s+space|occupies\s+less",
}
_AXES = (("left", "right"), ("above", "below"), ("behind", "front"), ("tall", "short"), ("wide", "thin"),
         ("big", "small"))


def _axis_pattern(poles: Sequence[str]) -> re.Pattern:
    # Longer phrases first inside each pole; whole words only ("overall" is not "over").
    alternatives = "|".join(f"(?P<{pole}>{_POLE_WORDS[pole]})" for pole in poles)
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)


_AXIS_PATTERNS = {pole: _axis_pattern(axis) for axis in _AXES for pole in axis}
_ANY_RELATION = _axis_pattern([pole for axis in _AXES for pole in axis])

_NEGATION_RE = re.compile(r"\b(?:not|no|never|neither|nor)\b|n['’]t\b", re.IGNORECASE)
_LESS_BEFORE_RE = re.compile(r"\bless\s+(?:to\s+the\s+)?$", re.IGNORECASE)
# What may separate a relation word from its object: "left of Region [1]", "taller than", "behind".
_OBJECT_LINK_RE = re.compile(
    r"\s*(?:side\s+)?(?:of|than|to|from|compared\s+(?:to|with)|relative\s+to)?\s*(?:the\s+)?", re.IGNORECASE
)
_CLAUSE_SPLIT_RE = re.compile(r"(?<=[.;!?])\s+|\n+|,?\s+(?:but|whereas|while|although|however)\b", re.IGNORECASE)

_YES_LEAD = r"yes|yeah|yep|yup|correct|true|affirmative|exactly|absolutely|certainly|definitely"
_NO_LEAD = r"no|nope|incorrect|false|wrong|not\s+really|not\s+quite|not\s+at\s+all"
_THAT_IS = r"(?:that['’]s|that\s+is|it['’]s|it\s+is|this\s+is)\s+"
_LEADING_VERDICT_RE = re.compile(
    rf"^\W*(?:{_THAT_IS})?(?:(?P<yes>{_YES_LEAD}|right)|(?P<no>{_NO_LEAD}))\b(?!\s+(?:of|side|to)\b)",
    re.IGNORECASE,
)

# --------------------------------------------------------------------------------------- participants

_GENERIC_REGION_RE = re.compile(r"region\s*\[\s*(\d+)\s*\]", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^<>]*>")
_ARTICLE_RE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
_TRAILING_PARENS_RE = re.compile(r"^(?P<name>.*?)\s*\((?P<inner>[^()]*)\)\s*$")
# "(A) chair (B) table" inline, or one option per line: "A. chair" / "A) chair".
_QUESTION_OPTION_RES = (re.compile(r"\(([A-Z])\)"), re.compile(r"(?:^|\n)[ \t]*([A-Z])[.)][ \t]+"))
_OPTION_TRIM = " \t\n,;:.?!"
_OPTION_TAIL_RE = re.compile(r"(?:,?\s+or|,)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Participant:
    """Something a question compares, and the ways an answer may name it."""

    label: str
    aliases: tuple[str, ...]
    pattern: re.Pattern


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    participant: int


@dataclass(frozen=True)
class _Statement:
    subject: int | None  # participant index, None when the clause names none
    pole: str
    negated: bool


def _alias_regex(alias: str) -> str | None:
    """Words of an alias joined by any punctuation/white space; 'bbox' also matches 'box'; tags such as
    ``<region>`` are not part of a name."""
    words = normalise_ref(_TAG_RE.sub(" ", alias)).split()
    if not words:
        return None
    parts = [r"b?box" if word == "bbox" else re.escape(word) for word in words]
    return r"(?<![\w])" + r"[\W_]*".join(parts) + r"(?![\w])"


def make_participant(label: str, aliases: Sequence[str]) -> Participant | None:
    """A participant named ``label`` or any of ``aliases``; None when none of them has a word."""
    names = tuple(dict.fromkeys((label, *aliases)))
    regexes = sorted({regex for name in names if (regex := _alias_regex(name))}, key=len, reverse=True)
    return Participant(label, names, re.compile("|".join(regexes), re.IGNORECASE)) if regexes else None


def _option_aliases(text: str) -> list[str]:
    """'the chair (red bbox)' -> ['chair (red bbox)', 'chair', 'red bbox']."""
    bare = _ARTICLE_RE.sub("", _TAG_RE.sub(" ", text).strip()).strip()
    aliases = [bare]
    parenthesised = _TRAILING_PARENS_RE.match(bare)
    if parenthesised:
        aliases += [_ARTICLE_RE.sub("", parenthesised["name"]), parenthesised["inner"]]
    return [alias for alias in aliases if alias.strip()]


def record_participants(record: Mapping[str, Any], question: str) -> list[Participant]:
    """What a record's question compares, in order of first mention in the question: its regions (aliases:
    the ref and the object's name), else its named objects (``object_names``), else the "Region [N]" the
    question mentions."""
    names = _object_names(record)
    candidates = [
        make_participant(str(region["ref"]), [str(alias) for alias in (names.get(region.get("object_index")),
                                                                      region.get("name")) if alias])
        for region in record.get("regions") or [] if isinstance(region, Mapping) and region.get("ref")
    ]
    if not any(candidates):
        candidates = [make_participant(str(name), []) for name in record.get("object_names") or []]
    if not any(candidates):
        refs = dict.fromkeys(f"Region [{match[1]}]" for match in _GENERIC_REGION_RE.finditer(question))
        candidates = [make_participant(ref, []) for ref in refs]
    return _in_mention_order([participant for participant in candidates if participant], question)


def _object_names(record: Mapping[str, Any]) -> dict[Any, str]:
    """Scene object index -> name: ``objects`` as dicts with a name, or as indices beside ``object_names``."""
    objects, names = record.get("objects") or [], record.get("object_names") or []
    if all(isinstance(item, Mapping) for item in objects):
        return {index: str(item["name"]) for index, item in enumerate(objects) if item.get("name")}
    return {index: str(name) for index, name in zip(objects, names) if isinstance(index, int)}


def _in_mention_order(participants: list[Participant], question: str) -> list[Participant]:
    def first_mention(participant: Participant) -> int:
        match = participant.pattern.search(question)
        return match.start() if match else len(question)

    return sorted(participants, key=first_mention)


def choice_options(record: Mapping[str, Any], question: str) -> list[Participant]:
    """Options in letter order: the record's ``options``/``choices``, else the "(A) ..." parts of the
    question, else the question's participants. An option that names a participant ("the red bbox
    <region>") may also be called by that participant's other names (its object's name)."""
    texts = record.get("options") or record.get("choices")
    if isinstance(texts, Mapping):
        texts = [texts[letter] for letter in sorted(texts)]
    participants = record_participants(record, question)
    if not texts:
        texts = _options_in_question(question)
    if texts:
        options = [make_participant(str(text), _option_aliases(str(text)) + _aliases_named_in(str(text), participants))
                   for text in texts]
        if all(options):
            return options
    return participants


def _aliases_named_in(text: str, participants: Sequence[Participant]) -> list[str]:
    return [alias for participant in participants if participant.pattern.search(text) for alias in participant.aliases]


def _options_in_question(question: str) -> list[str]:
    for marker in _QUESTION_OPTION_RES:
        parts = marker.split(question)
        letters, texts = parts[1::2], parts[2::2]
        if len(letters) >= 2 and letters == [chr(ord("A") + index) for index in range(len(letters))]:
            return [_OPTION_TAIL_RE.sub("", text.strip(_OPTION_TRIM)).strip(_OPTION_TRIM) for text in texts]
    return []


# ------------------------------------------------------------------------------------------ answer text


def answer_text(completion: str) -> tuple[str, ParsedCompletion]:
    """The text to read as the answer (see the module docstring) and the parsed completion."""
    parsed = parse_completion(completion)
    if parsed.answer is not None:
        return parsed.answer, parsed
    if parsed.path is not None:
        outside = re.sub(r"<\s*(think|detect)\s*>.*?(?:<\s*/\s*\1\s*>|$)", " ", completion, flags=re.DOTALL)
        outside = re.sub(r"<\s*/?\s*(?:think|detect|answer|3d_box)[^<>]*>", " ", outside).strip()
        if outside:
            return outside, parsed
    return completion, parsed


# ------------------------------------------------------------------------------------------ understanding


def understand(text: str, answer_type: str, record: Mapping[str, Any]) -> Understood:
    """The answer's value in the question's terms (metres, letter, "yes"/"no", hour), or None."""
    question = str(record.get("question", ""))
    if answer_type == "numeric":
        return read_numeric(text, record).value(protocol_for(record).range_rule)
    if answer_type == "direction":
        return parse_clock(text)
    relation = question_relation(question, record.get("category"))
    if answer_type == "yesno":
        return understand_yes_no(text, relation, record_participants(record, question))
    if answer_type == "choice":
        return understand_choice(text, relation, choice_options(record, question))
    raise ValueError(f"unknown answer_type {answer_type!r}")


# Q-Spatial's official parsers match each tag on its own, whatever wraps it (\\scalar{3}, $\scalar{3}$).
_SCALAR_TAG_RE = re.compile(r"scalar\s*\{(?P<value>[^{}]*)\}")
_UNIT_TAG_RE = re.compile(r"distance_unit\s*\{(?P<unit>[^{}]*)\}")


def read_numeric(text: str, record: Mapping[str, Any]) -> LengthReading:
    """The length an answer states, as an interval in metres: Q-Spatial's tags when the answer has both (the
    last ``scalar{}`` in the last ``distance_unit{}``), else the free text; a bare number is in the unit
    the question asks for ("in centimeters"), else metres."""
    scalars, units = _SCALAR_TAG_RE.findall(text), _UNIT_TAG_RE.findall(text)
    if scalars and units:
        if length_unit(units[-1]) is None:
            return LengthReading(None, None, f"unknown distance_unit {units[-1]!r}")
        text = f"{scalars[-1]} {units[-1].strip()}"
    return read_length(text, default_unit=question_unit(record.get("question")))


def question_relation(question: str, category: Any = None) -> str | None:
    """The relation a question asks about: the category's first word if it names one ("left_predicate",
    "tall_choice"), else the first relation word of the question."""
    if isinstance(category, str):
        head = category.split("_", 1)[0].lower()
        if head in _POLE_WORDS:
            return head
    match = _ANY_RELATION.search(question)
    return match.lastgroup if match else None


def understand_yes_no(text: str, relation: str | None, participants: Sequence[Participant]) -> str | None:
    verdict = _LEADING_VERDICT_RE.match(text)
    if verdict:
        return "yes" if verdict["yes"] else "no"
    statement = _last_statement(text, relation, participants)
    if statement is not None:
        agrees = (statement.pole == relation) != statement.negated
        if statement.subject == 1:
            agrees = not agrees  # the answer's subject is the question's second participant
        return "yes" if agrees else "no"
    return parse_yes_no(text)


def understand_choice(text: str, relation: str | None, options: Sequence[Participant]) -> str | None:
    letters = [chr(ord("A") + index) for index in range(len(options))] or list("ABCD")
    letter = parse_choice(text, letters)
    if letter is not None:
        return letter
    if not options:
        return None
    statement = _last_statement(text, relation, options)
    if statement is not None and statement.subject is not None:
        picks_subject = (statement.pole == relation) != statement.negated
        if picks_subject:
            return letters[statement.subject]
        if len(options) == 2:
            return letters[1 - statement.subject]
    mentioned = {mention.participant for mention in _mentions(text, options)}
    return letters[mentioned.pop()] if len(mentioned) == 1 else None


# --------------------------------------------------------------------------------------- statements


def _mentions(text: str, participants: Sequence[Participant]) -> list[_Mention]:
    """Non-overlapping mentions, earliest first, the longer one where two start together."""
    found = sorted(
        (_Mention(match.start(), match.end(), index)
         for index, participant in enumerate(participants) for match in participant.pattern.finditer(text)),
        key=lambda mention: (mention.start, -mention.end),
    )
    kept: list[_Mention] = []
    for mention in found:
        if not kept or mention.start >= kept[-1].end:
            kept.append(mention)
    return kept


def _last_statement(text: str, relation: str | None, participants: Sequence[Participant]) -> _Statement | None:
    if relation is None:
        return None
    pattern = _AXIS_PATTERNS[relation]
    for clause in reversed([clause for clause in _CLAUSE_SPLIT_RE.split(text) if clause.strip()]):
        match = pattern.search(clause)
        if match:
            return _statement(clause, match, _mentions(clause, participants), len(participants))
    return None


def _statement(clause: str, match: re.Match, mentions: list[_Mention], participant_count: int) -> _Statement:
    before = [mention for mention in mentions if mention.end <= match.start()]
    after = [mention for mention in mentions if mention.start >= match.end()]
    linked = bool(after) and _OBJECT_LINK_RE.fullmatch(clause, match.end(), after[0].start) is not None
    subject = None
    if before:
        subject = before[-1].participant
    else:
        unlinked = after[1:] if linked else after
        if unlinked:
            subject = unlinked[0].participant
        elif linked and participant_count == 2:
            subject = 1 - after[0].participant  # "behind Region [1]" said of the other one
    window_start = before[-1].end if before else 0
    negated = bool(_NEGATION_RE.search(clause, window_start, match.end()))
    if _LESS_BEFORE_RE.search(clause, 0, match.start()):
        negated = not negated
    return _Statement(subject, match.lastgroup, negated)
