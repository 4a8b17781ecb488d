"""Output grammar of SR-REAL's two reasoning paths: prompts, rendering and parsing of completions.

The grammar (what the policy is trained to emit)
-------------------------------------------------
LOR, language-only reasoning::

    <think>The cabinet is about two metres away ...</think>
    <answer>1.2 m</answer>

DTR, detect-then-reason::

    <detect>Find 2 relevant objects:
    <3d_box center="0.02,1.06,2.03">cabinet (red bbox)</3d_box>
    <3d_box center="-0.41,0.88,2.75">chair (blue bbox)</3d_box></detect>
    <think>The chair is 0.8 m behind the cabinet ...</think>
    <answer>B</answer>

- Each block (``detect``, ``think``, ``answer``) appears exactly once, in that order, with nothing but white
  space outside the blocks. ``<answer>`` content may span several lines.
- Box centres are in metres in the OpenCV camera frame (+x right, +y down, +z forward); rendering writes two
  decimals, parsing accepts any decimal number (optionally with an exponent), comma-separated, three of them.
- A box label is ``name (ref)`` on one line without ``<`` or ``>``: ``ref`` is the region reference in the last
  trailing parentheses ("red bbox", "frame 12 red bbox", "region 10"); without trailing parentheses the whole
  label is the name and ref is None.
- The detect header is ``Find N relevant objects:`` and ``Find 1 relevant object:`` for a single object (the
  singular is what rendering writes; parsing accepts either form for any N). The header is optional, but
  when present N must equal the number of ``3d_box`` entries.

Normalisation (a deliberate deviation from the reference)
-------------------------------------------------------
The reference removes white space around ``<``, ``>`` and ``/`` everywhere before checking the format, which
also rewrites content ("3 / 4" becomes "3/4"). Here the normalisation applies to tag syntax only: a tag may
contain white space (``< / think >`` is ``</think>``) and white space between blocks is ignored, while the
parsed content is the exact text between the tags, with only its leading/trailing white space stripped.
Tag names are case-sensitive, as in the reference.

Well-formedness
---------------
``ParsedCompletion.errors`` lists every violation of the grammar above (structure, stray text, malformed
boxes, header count), and ``well_formed`` is exactly ``path is not None and not errors``. A malformed
``3d_box`` entry is skipped from ``detections`` and reported. Parsing never raises, whatever the input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from sr_real_core.query import ANSWER_TYPES, PROMPT_PATHS

Path = Literal["lor", "dtr"]

_BLOCK_NAMES = ("detect", "think", "answer")
_PATH_BLOCKS = {"lor": ("think", "answer"), "dtr": ("detect", "think", "answer")}

# One pass over the text finds every tag. The optional "/\s*" group keeps the two white-space runs apart so
# that a long run of spaces cannot be split in many ways (no quadratic backtracking), and [^<>]* stops at
# the next angle bracket, so each attempt is bounded by the distance to the next '<' or '>'.
_TAG_RE = re.compile(r"<\s*(?P<slash>/\s*)?(?P<name>think|answer|detect|3d_box)\b(?P<attrs>[^<>]*)>")
_CENTER_ATTR_RE = re.compile(r'\bcenter\s*=\s*"(?P<value>[^"]*)"')
_NUMBER_RE = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_HEADER_RE = re.compile(r"Find (?P<count>[0-9]+) relevant objects?:")
_SNIPPET_CHARS = 30


@dataclass(frozen=True)
class Detection:
    """One predicted object: label name, region reference (None if the label has none), centre in metres."""

    name: str
    ref: str | None
    center: tuple[float, float, float]


@dataclass
class ParsedCompletion:
    """What a completion says, best effort, plus whether it follows the grammar and why not."""

    path: Path | None
    think: str | None = None
    answer: str | None = None
    detections: list[Detection] = field(default_factory=list)
    well_formed: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Tag:
    name: str
    closing: bool
    attrs: str
    start: int
    end: int

    @property
    def label(self) -> str:
        return f"</{self.name}>" if self.closing else f"<{self.name}>"


@dataclass(frozen=True)
class _Span:
    """Content between an opening and a closing tag; either tag may be missing in a malformed completion."""

    name: str
    start: int
    end: int
    opening: _Tag | None
    closing: _Tag | None


class _Errors:
    """Ordered, de-duplicated error messages (junk input can repeat the same fault thousands of times)."""

    def __init__(self) -> None:
        self._messages: dict[str, None] = {}

    def add(self, message: str) -> None:
        self._messages.setdefault(message, None)

    def as_list(self) -> list[str]:
        return list(self._messages)


# ---------------------------------------------------------------------------------------------- prompts

_LOR_FORMAT = (
    "Think step by step inside <think></think>, then give the final answer inside <answer></answer>, "
    "exactly in this format:\n"
    "<think>your reasoning</think>\n"
    "<answer>your answer</answer>"
)
_DTR_FORMAT = (
    "First detect the 3D centres of the objects relevant to the question inside <detect></detect>: one "
    '<3d_box center="x,y,z">name (region)</3d_box> per object, centre in metres with two decimals in the '
    "camera frame (+x right, +y down, +z forward). Then think step by step with those positions inside "
    "<think></think>, then give the final answer inside <answer></answer>, exactly in this format:\n"
    "<detect>Find 2 relevant objects:\n"
    '<3d_box center="0.02,1.06,2.03">cabinet (red bbox)</3d_box>\n'
    '<3d_box center="-0.41,0.88,2.75">chair (blue bbox)</3d_box></detect>\n'
    "<think>your reasoning</think>\n"
    "<answer>your answer</answer>"
)
_AUTO_FORMAT = (
    "Choose one of two formats. When the 3D positions of specific objects help (distances, sizes, "
    "relative positions of marked regions), use detect-then-reason. "
    + _DTR_FORMAT
    + "\nOtherwise use language-only reasoning. "
    + _LOR_FORMAT
)
_FORMAT_INSTRUCTIONS = {"lor": _LOR_FORMAT, "dtr": _DTR_FORMAT, "auto": _AUTO_FORMAT}

_ANSWER_INSTRUCTIONS = {
    "numeric": "For a distance or size, answer with a number and its unit, e.g. <answer>1.25 m</answer>.",
    "choice": "For a multiple-choice question, answer with the option letter only, e.g. <answer>B</answer>.",
    "yesno": "For a yes/no question, answer yes or no, e.g. <answer>yes</answer>.",
    "direction": "For a direction, answer with a clock hour from 1 to 12, e.g. <answer>3 o'clock</answer>.",
}


def answer_instruction(answer_type: str | None = None) -> str:
    """The answer convention for one answer type, or all of them (one per line) when the type is unknown."""
    if answer_type is None:
        return "\n".join(_ANSWER_INSTRUCTIONS[kind] for kind in ANSWER_TYPES)
    if answer_type not in _ANSWER_INSTRUCTIONS:
        raise ValueError(f"answer_type must be one of {ANSWER_TYPES} or None, got {answer_type!r}")
    return _ANSWER_INSTRUCTIONS[answer_type]


def build_prompt(question: str, path: str = "auto", answer_type: str | None = None) -> str:
    """The user-turn text: the question, the output format of ``path`` ("lor", "dtr" or "auto": the policy
    picks), and the answer convention."""
    if path not in _FORMAT_INSTRUCTIONS:
        raise ValueError(f"path must be one of {PROMPT_PATHS}, got {path!r}")
    return f"{question.strip()}\n\n{_FORMAT_INSTRUCTIONS[path]}\n{answer_instruction(answer_type)}"


# -------------------------------------------------------------------------------------------- rendering


def render_lor(think: str, answer: str) -> str:
    """A LOR completion. Raises ValueError if a field contains a grammar tag (it would not parse back)."""
    _require_tag_free("think", think)
    _require_tag_free("answer", answer)
    return f"<think>{think}</think>\n<answer>{answer}</answer>"


def render_dtr(detections: Sequence[Detection], think: str, answer: str) -> str:
    """A DTR completion; centres are written with two decimals. Raises ValueError for content that would
    not parse back to the same fields (tags in text, non-finite centres, ambiguous labels)."""
    boxes = "\n".join(render_box(detection) for detection in detections)
    noun = "object" if len(detections) == 1 else "objects"
    header = f"Find {len(detections)} relevant {noun}:"
    detect = f"{header}\n{boxes}" if boxes else header
    return f"<detect>{detect}</detect>\n{render_lor(think, answer)}"


def render_box(detection: Detection) -> str:
    """One `<3d_box center="x,y,z">label</3d_box>` line, the centre with two decimals."""
    if len(detection.center) != 3 or not all(math.isfinite(value) for value in detection.center):
        raise ValueError(f"centre must be three finite numbers, got {detection.center!r}")
    center = ",".join(f"{value:.2f}" for value in detection.center)
    return f'<3d_box center="{center}">{_render_label(detection)}</3d_box>'


def _render_label(detection: Detection) -> str:
    name, ref = detection.name, detection.ref
    label = name if ref is None else f"{name} ({ref})" if name else f"({ref})"
    if not label.strip() or any(c in label for c in "<>\n") or _split_label(label.strip()) != (name, ref):
        raise ValueError(f"label {label!r} would not parse back to name={name!r}, ref={ref!r}")
    return label


def _require_tag_free(field_name: str, text: str) -> None:
    tag = _TAG_RE.search(text)
    if tag:
        raise ValueError(f"{field_name} contains the grammar tag {tag.group(0)!r}")


# ---------------------------------------------------------------------------------------------- parsing


def parse_completion(text: str) -> ParsedCompletion:
    """Parse a completion of either path; never raises (non-str input gives a result with an error)."""
    if not isinstance(text, str):
        return ParsedCompletion(path=None, errors=[f"completion is {type(text).__name__}, not str"])
    tags = _scan_tags(text)
    path = _path_of(tags)
    if path is None:
        return ParsedCompletion(path=None, errors=["no <think>, <answer> or <detect> tags"])
    errors = _Errors()
    spans = _block_spans(text, tags, errors)
    first = _check_blocks(spans, path, errors)
    detect = first.get("detect")
    _check_boxes_inside_detect(tags, detect, errors)
    detections = _parse_detect_block(text, tags, detect, errors) if detect else []
    messages = errors.as_list()
    return ParsedCompletion(
        path=path,
        think=_content(text, first.get("think")),
        answer=_content(text, first.get("answer")),
        detections=detections,
        well_formed=not messages,
        errors=messages,
    )


def _scan_tags(text: str) -> list[_Tag]:
    tags = []
    for match in _TAG_RE.finditer(text):
        name, closing, attrs = match["name"], match["slash"] is not None, match["attrs"]
        takes_attributes = name == "3d_box" and not closing
        if takes_attributes or not attrs.strip():  # "<think foo>" is text, not a tag
            tags.append(_Tag(name, closing, attrs, match.start(), match.end()))
    return tags


def _path_of(tags: list[_Tag]) -> Path | None:
    names = {tag.name for tag in tags}
    if names & {"detect", "3d_box"}:
        return "dtr"
    return "lor" if names else None


def _block_spans(text: str, tags: list[_Tag], errors: _Errors) -> list[_Span]:
    """Pair top-level tags into spans, reporting missing tags and any text outside the blocks."""
    spans: list[_Span] = []
    open_tag: _Tag | None = None
    previous: _Tag | None = None
    for tag in (tag for tag in tags if tag.name in _BLOCK_NAMES):
        if open_tag is None and not tag.closing:
            _check_gap(text, previous, tag, errors)
            open_tag = tag
        elif open_tag is None:  # closing tag with no opening: its content starts where the last block ended
            errors.add(f"missing <{tag.name}>")
            spans.append(_Span(tag.name, previous.end if previous else 0, tag.start, None, tag))
        elif not tag.closing:  # a new block opens inside an unclosed one
            errors.add(f"missing </{open_tag.name}>")
            spans.append(_Span(open_tag.name, open_tag.end, tag.start, open_tag, None))
            open_tag = tag
        else:
            if tag.name != open_tag.name:
                errors.add(f"{tag.label} closes <{open_tag.name}>")
            spans.append(_Span(open_tag.name, open_tag.end, tag.start, open_tag, tag))
            open_tag = None
        previous = tag
    if open_tag is not None:
        errors.add(f"missing </{open_tag.name}>")
        spans.append(_Span(open_tag.name, open_tag.end, len(text), open_tag, None))
    else:
        _check_gap(text, previous, None, errors)
    return spans


def _check_gap(text: str, before: _Tag | None, after: _Tag | None, errors: _Errors) -> None:
    start = before.end if before else 0
    end = after.start if after else len(text)
    if not text[start:end].strip():
        return
    if before is None and after is None:
        errors.add("text outside the blocks")
    elif before is None:
        errors.add(f"text before {after.label}")
    elif after is None:
        errors.add(f"text after {before.label}")
    else:
        errors.add(f"text between {before.label} and {after.label}")


def _check_blocks(spans: list[_Span], path: Path, errors: _Errors) -> dict[str, _Span]:
    """Check each block of the path occurs once and in order; return the first span of each name."""
    first: dict[str, _Span] = {}
    counts: dict[str, int] = {}
    for span in spans:
        first.setdefault(span.name, span)
        counts[span.name] = counts.get(span.name, 0) + 1
    expected = _PATH_BLOCKS[path]
    for name in expected:
        if name not in counts:
            errors.add(f"missing <{name}> block")
        elif counts[name] > 1:
            errors.add(f"{_count_word(counts[name])} <{name}> blocks")
    for earlier, later in zip(expected, expected[1:]):
        if earlier in first and later in first and first[later].start < first[earlier].start:
            errors.add(f"<{later}> before <{earlier}>")
    return first


def _count_word(count: int) -> str:
    words = {2: "two", 3: "three", 4: "four", 5: "five"}
    return words.get(count, str(count))


def _check_boxes_inside_detect(tags: list[_Tag], detect: _Span | None, errors: _Errors) -> None:
    for tag in tags:
        if tag.name == "3d_box" and not (detect and detect.start <= tag.start < detect.end):
            errors.add("<3d_box> outside <detect>")


def _content(text: str, span: _Span | None) -> str | None:
    return text[span.start : span.end].strip() if span else None


def _parse_detect_block(text: str, tags: list[_Tag], detect: _Span, errors: _Errors) -> list[Detection]:
    box_tags = [tag for tag in tags if tag.name == "3d_box" and detect.start <= tag.start < detect.end]
    entries = _box_spans(text, box_tags, detect, errors)
    header_end = box_tags[0].start if box_tags else detect.end
    _check_header(text[detect.start : header_end].strip(), len(entries), errors)
    detections = []
    for index, entry in enumerate(entries, start=1):
        detection = _parse_box(text, entry, index, errors)
        if detection is not None:
            detections.append(detection)
    return detections


def _box_spans(text: str, box_tags: list[_Tag], detect: _Span, errors: _Errors) -> list[_Span]:
    """Pair 3d_box tags inside <detect>; reports unpaired tags and stray text between entries."""
    entries: list[_Span] = []
    open_tag: _Tag | None = None
    cursor = None  # end of the last entry; the text before the first entry is the header
    for tag in box_tags:
        number = len(entries) + 1
        if open_tag is None and not tag.closing:
            if cursor is not None and text[cursor : tag.start].strip():
                errors.add(f"text between 3d_box {number - 1} and 3d_box {number}")
            open_tag = tag
        elif open_tag is None:
            errors.add(f"3d_box {number}: missing <3d_box>")
            entries.append(_Span("3d_box", cursor if cursor is not None else tag.start, tag.start, None, tag))
            cursor = tag.end
        elif not tag.closing:
            errors.add(f"3d_box {number}: missing </3d_box>")
            entries.append(_Span("3d_box", open_tag.end, tag.start, open_tag, None))
            open_tag = tag
        else:
            entries.append(_Span("3d_box", open_tag.end, tag.start, open_tag, tag))
            open_tag, cursor = None, tag.end
    if open_tag is not None:
        errors.add(f"3d_box {len(entries) + 1}: missing </3d_box>")
        entries.append(_Span("3d_box", open_tag.end, detect.end, open_tag, None))
    elif cursor is not None and text[cursor : detect.end].strip():
        errors.add(f"text after 3d_box {len(entries)} in <detect>")
    return entries


def _check_header(header: str, entry_count: int, errors: _Errors) -> None:
    if not header:
        return
    match = _HEADER_RE.fullmatch(header)
    if match is None:
        errors.add(f"<detect> header {_snippet(header)} is not 'Find N relevant objects:'")
    elif int(match["count"]) != entry_count:
        errors.add(f"<detect> header says {int(match['count'])} objects but has {entry_count} 3d_box entries")


def _parse_box(text: str, entry: _Span, index: int, errors: _Errors) -> Detection | None:
    if entry.opening is None or entry.closing is None:
        return None  # already reported as a missing tag
    center = _parse_center(entry.opening.attrs, index, errors)
    label = text[entry.start : entry.end].strip()
    name, ref = _split_label(label)
    if not name and not ref:
        errors.add(f"3d_box {index}: empty label")
        return None
    if any(character in label for character in "<>\n"):
        errors.add(f"3d_box {index}: label contains '<', '>' or a line break")
        return None
    return Detection(name, ref, center) if center else None


def _parse_center(attrs: str, index: int, errors: _Errors) -> tuple[float, float, float] | None:
    match = _CENTER_ATTR_RE.search(attrs)
    if match is None:
        errors.add(f"3d_box {index}: missing center")
        return None
    parts = [part.strip() for part in match["value"].split(",")]
    if len(parts) != 3:
        errors.add(f"3d_box {index}: center has {len(parts)} numbers")
        return None
    bad = next((part for part in parts if not _NUMBER_RE.fullmatch(part)), None)
    if bad is not None:
        errors.add(f"3d_box {index}: center value {_snippet(bad)} is not a number")
        return None
    x, y, z = (float(part) for part in parts)
    if not all(math.isfinite(value) for value in (x, y, z)):
        errors.add(f"3d_box {index}: center is not finite")
        return None
    return (x, y, z)


def _split_label(label: str) -> tuple[str, str | None]:
    """'cabinet (red bbox)' -> ('cabinet', 'red bbox'); 'cabinet' -> ('cabinet', None)."""
    if not label.endswith(")") or "(" not in label:
        return label, None
    opening = label.rfind("(")
    return label[:opening].strip(), label[opening + 1 : -1].strip() or None


def _snippet(text: str) -> str:
    return repr(text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "...")


# ------------------------------------------------------------------------------------- region references


def normalise_ref(ref: object) -> str:
    """Case-folded words and numbers of a region reference joined by single spaces: 'Region [10]' ->
    'region 10', 3 -> '3'. References are compared as these strings, never as ints."""
    return " ".join(re.findall(r"[^\W_]+", str(ref).casefold()))


def find_detection(detections: Sequence[Detection], ref: object) -> Detection | None:
    """The first detection whose name or ref contains ``ref`` as whole words after normalisation, so
    'frame 1 red bbox' does not match 'frame 12 red bbox' and 'region 1' does not match 'region 10'."""
    wanted = normalise_ref(ref)
    if not wanted:
        return None
    padded = f" {wanted} "
    for detection in detections:
        for part in (detection.name, detection.ref):
            if part is not None and padded in f" {normalise_ref(part)} ":
                return detection
    return None
