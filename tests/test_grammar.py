"""Tests of sr_real_core.grammar: prompts, rendering, parsing, region references."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sr_real_core.grammar import (
    Detection,
    ParsedCompletion,
    answer_instruction,
    build_prompt,
    find_detection,
    normalise_ref,
    parse_completion,
    render_dtr,
    render_lor,
)
from sr_real_core.query import reference_path

SPEC_DTR = (
    "<detect>Find 2 relevant objects:\n"
    '<3d_box center="0.02,1.06,2.03">cabinet (red bbox)</3d_box>\n'
    '<3d_box center="-0.41,0.88,2.75">chair (blue bbox)</3d_box></detect>\n'
    "<think>The chair is behind.</think>\n"
    "<answer>B</answer>"
)
SPEC_DETECTIONS = [
    Detection("cabinet", "red bbox", (0.02, 1.06, 2.03)),
    Detection("chair", "blue bbox", (-0.41, 0.88, 2.75)),
]


# ---------------------------------------------------------------------------------------------- rendering


def test_render_lor_matches_the_reference_string():
    assert render_lor("a", "b") == "<think>a</think>\n<answer>b</answer>"


def test_render_dtr_matches_the_reference_string():
    assert render_dtr(SPEC_DETECTIONS, "The chair is behind.", "B") == SPEC_DTR


def test_render_dtr_uses_singular_header_and_two_decimals():
    text = render_dtr([Detection("lamp", "frame 12 red bbox", (0.123, -1.0, 2.005))], "t", "a")
    assert text.startswith('<detect>Find 1 relevant object:\n<3d_box center="0.12,-1.00,2.00">')
    assert "lamp (frame 12 red bbox)</3d_box></detect>" in text


def test_render_dtr_without_detections_parses_back_well_formed():
    text = render_dtr([], "t", "a")
    assert text.startswith("<detect>Find 0 relevant objects:</detect>")
    assert parse_completion(text).well_formed


def test_render_label_without_ref():
    text = render_dtr([Detection("table", None, (0.0, 0.0, 1.0))], "t", "a")
    assert parse_completion(text).detections == [Detection("table", None, (0.0, 0.0, 1.0))]


@pytest.mark.parametrize(
    "call",
    [
        lambda: render_lor("x <answer> y", "a"),
        lambda: render_lor("t", "a </answer>"),
        lambda: render_lor("<3d_box center='1'>", "a"),
        lambda: render_dtr([Detection("a", "b", (math.nan, 0.0, 1.0))], "t", "a"),
        lambda: render_dtr([Detection("a", "b", (0.0, 1.0))], "t", "a"),
        lambda: render_dtr([Detection("", None, (0.0, 0.0, 1.0))], "t", "a"),
        lambda: render_dtr([Detection("chair (left)", None, (0.0, 0.0, 1.0))], "t", "a"),
        lambda: render_dtr([Detection("chair", "red (x)", (0.0, 0.0, 1.0))], "t", "a"),
        lambda: render_dtr([Detection(" chair", "red", (0.0, 0.0, 1.0))], "t", "a"),
        lambda: render_dtr([Detection("a<b", "red", (0.0, 0.0, 1.0))], "t", "a"),
    ],
)
def test_render_rejects_what_would_not_parse_back(call):
    with pytest.raises(ValueError):
        call()


# ------------------------------------------------------------------------------------------------ parsing


def test_parse_spec_dtr_completion():
    parsed = parse_completion(SPEC_DTR)
    assert parsed == ParsedCompletion(
        path="dtr", think="The chair is behind.", answer="B", detections=SPEC_DETECTIONS, well_formed=True, errors=[]
    )


def test_parse_lor_answer_spans_lines():
    parsed = parse_completion("<think>step 1\nstep 2</think>\n<answer>about\n1.2 m\n</answer>")
    assert parsed.path == "lor" and parsed.well_formed
    assert parsed.answer == "about\n1.2 m"
    assert parsed.think == "step 1\nstep 2"


def test_white_space_around_tag_syntax_is_normalised_but_content_is_kept():
    text = "  < think >ratio 3 / 4, a < b > c</ think>\n\n< answer >\n B \n< /answer >  "
    parsed = parse_completion(text)
    assert parsed.well_formed, parsed.errors
    assert parsed.think == "ratio 3 / 4, a < b > c"
    assert parsed.answer == "B"


def test_white_space_inside_3d_box_tag():
    box = '< 3d_box  center = " 0.1 , 0.2 ,0.3 " >cup (red bbox)< / 3d_box >'
    text = f"<detect>{box}</detect><think>t</think><answer>a</answer>"
    parsed = parse_completion(text)
    assert parsed.well_formed, parsed.errors
    assert parsed.detections == [Detection("cup", "red bbox", (0.1, 0.2, 0.3))]


def test_large_frame_and_region_indices_are_kept_as_text():
    text = render_dtr(
        [Detection("chair", "frame 12 red bbox", (0, 0, 1)), Detection("desk", "Region [10]", (1, 0, 2))], "t", "a"
    )
    parsed = parse_completion(text)
    assert [d.ref for d in parsed.detections] == ["frame 12 red bbox", "Region [10]"]


def test_header_is_optional_and_plural_form_is_lenient():
    boxes = '<3d_box center="0,0,1">a (red bbox)</3d_box>'
    for header in ("", "Find 1 relevant object:\n", "Find 1 relevant objects:\n"):
        parsed = parse_completion(f"<detect>{header}{boxes}</detect><think>t</think><answer>a</answer>")
        assert parsed.well_formed, (header, parsed.errors)


def test_exponent_centres_parse():
    box = '<3d_box center="1e-1,+2,-.5">a</3d_box>'
    parsed = parse_completion(f"<detect>{box}</detect><think>t</think><answer>a</answer>")
    assert parsed.detections == [Detection("a", None, (0.1, 2.0, -0.5))]


LOR_OK = "<think>t</think>\n<answer>a</answer>"
BOX = '<3d_box center="0.1,0.2,0.3">cup (red bbox)</3d_box>'


@pytest.mark.parametrize(
    ("text", "expected_errors"),
    [
        ("<think>t</think>\n<answer>a", ["missing </answer>"]),
        ("<think>t</think><think>u</think><answer>a</answer>", ["two <think> blocks"]),
        ("<think>t</think><answer>a</answer> trailing", ["text after </answer>"]),
        ("hello <think>t</think><answer>a</answer>", ["text before <think>"]),
        ("<think>t</think> so <answer>a</answer>", ["text between </think> and <answer>"]),
        ("<answer>a</answer>", ["missing <think> block"]),
        ("<think>t</think>", ["missing <answer> block"]),
        ("t</think><answer>a</answer>", ["missing <think>"]),
        ("<think>t<answer>a</answer>", ["missing </think>"]),
        ("<think>t</answer><answer>a</answer>", ["</answer> closes <think>"]),
        ("<answer>a</answer><think>t</think>", ["<answer> before <think>"]),
        (f"<detect>Find 1 relevant object:\n{BOX}</detect><answer>a</answer>", ["missing <think> block"]),
        (f"<think>t</think><detect>{BOX}</detect><answer>a</answer>", ["<think> before <detect>"]),
        (f"<think>{BOX}</think><answer>a</answer>", ["missing <detect> block", "<3d_box> outside <detect>"]),
        (
            f'<detect>Find 2 relevant objects:\n{BOX}\n<3d_box center="0.1,0.2">b</3d_box></detect>{LOR_OK}',
            ["3d_box 2: center has 2 numbers"],
        ),
        (f'<detect><3d_box center="a,0,1">x</3d_box></detect>{LOR_OK}', ["3d_box 1: center value 'a' is not a number"]),
        (f"<detect><3d_box>x</3d_box></detect>{LOR_OK}", ["3d_box 1: missing center"]),
        (f'<detect><3d_box center="0,0,1e999">x</3d_box></detect>{LOR_OK}', ["3d_box 1: center is not finite"]),
        (f'<detect><3d_box center="0,0,1"> </3d_box></detect>{LOR_OK}', ["3d_box 1: empty label"]),
        (f'<detect><3d_box center="0,0,1">x</detect>{LOR_OK}', ["3d_box 1: missing </3d_box>"]),
        (
            f'<detect><3d_box center="0,0,1">a\nb > c</3d_box></detect>{LOR_OK}',
            ["3d_box 1: label contains '<', '>' or a line break"],
        ),
        (f"<detect>{BOX} and {BOX}</detect>{LOR_OK}", ["text between 3d_box 1 and 3d_box 2"]),
        (f"<detect>{BOX} done</detect>{LOR_OK}", ["text after 3d_box 1 in <detect>"]),
        (
            f"<detect>Find 3 relevant objects:\n{BOX}</detect>{LOR_OK}",
            ["<detect> header says 3 objects but has 1 3d_box entries"],
        ),
        (f"<detect>Objects:\n{BOX}</detect>{LOR_OK}", ["<detect> header 'Objects:' is not 'Find N relevant objects:'"]),
    ],
)
def test_malformed_completions_name_their_faults(text, expected_errors):
    parsed = parse_completion(text)
    assert parsed.errors == expected_errors
    assert not parsed.well_formed


def test_malformed_box_is_skipped_but_the_others_are_kept():
    text = f'<detect>{BOX}\n<3d_box center="1,2">b (blue bbox)</3d_box></detect>{LOR_OK}'
    parsed = parse_completion(text)
    assert parsed.detections == [Detection("cup", "red bbox", (0.1, 0.2, 0.3))]
    assert parsed.answer == "a"


def test_text_without_tags_has_no_path():
    parsed = parse_completion("The answer is 1.2 m.")
    assert parsed.path is None and not parsed.well_formed and parsed.answer is None
    assert parsed.errors == ["no <think>, <answer> or <detect> tags"]


def test_tag_like_text_is_not_a_tag():
    parsed = parse_completion("<think>use <thinking> and <think foo> and <3d_boxes></think><answer>a</answer>")
    assert parsed.well_formed
    assert parsed.think == "use <thinking> and <think foo> and <3d_boxes>"


def test_upper_case_tags_are_not_tags():
    assert parse_completion("<THINK>t</THINK><ANSWER>a</ANSWER>").path is None


@pytest.mark.parametrize("value", [None, 3, b"<think>t</think><answer>a</answer>", ["<think>"]])
def test_non_string_input_gives_an_error_result(value):
    parsed = parse_completion(value)
    assert parsed.path is None and not parsed.well_formed
    assert "not str" in parsed.errors[0]


@pytest.mark.parametrize(
    "junk",
    [
        "<" * 100_000,
        "< " * 50_000,
        "<" + " " * 100_000 + "x",
        "< /" + " " * 100_000 + "x",
        "<3d_box " * 12_500,
        "<think>" * 14_000,
        "</3d_box>" * 11_000,
        '<detect><3d_box center="' + "1," * 50_000 + '">x</3d_box></detect>',
        "<detect>" + BOX * 1_500 + "</detect>",
    ],
)
def test_adversarial_100kb_input_parses_fast(junk):
    started = time.perf_counter()
    parsed = parse_completion(junk)
    assert time.perf_counter() - started < 1.0
    assert isinstance(parsed.errors, list)


# ------------------------------------------------------------------------------------ property-based tests

# Content free of '<' and '>' cannot form a tag; stripped because parsing strips block content.
plain_text = st.text(st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), max_size=60)
label_characters = st.characters(whitelist_categories=("L", "N"), whitelist_characters=" -_[]#")
label_text = st.text(label_characters, min_size=1, max_size=20).map(str.strip).filter(bool)
coordinate = st.floats(min_value=-50, max_value=50, allow_nan=False)
centers = st.tuples(coordinate, coordinate, coordinate)
detections = st.lists(st.builds(Detection, name=label_text, ref=st.none() | label_text, center=centers), max_size=5)


@settings(max_examples=150, deadline=None)
@given(think=plain_text, answer=plain_text)
def test_lor_round_trip(think, answer):
    parsed = parse_completion(render_lor(think, answer))
    assert parsed.well_formed and parsed.path == "lor", parsed.errors
    assert (parsed.think, parsed.answer) == (think.strip(), answer.strip())


@settings(max_examples=150, deadline=None)
@given(boxes=detections, think=plain_text, answer=plain_text)
def test_dtr_round_trip(boxes, think, answer):
    parsed = parse_completion(render_dtr(boxes, think, answer))
    assert parsed.well_formed and parsed.path == "dtr", parsed.errors
    assert (parsed.think, parsed.answer) == (think.strip(), answer.strip())
    assert [(d.name, d.ref) for d in parsed.detections] == [(d.name, d.ref) for d in boxes]
    for got, sent in zip(parsed.detections, boxes):
        assert got.center == pytest.approx(sent.center, abs=0.0051)


tag_pieces = st.sampled_from(
    ["<think>", "</think>", "<answer>", "</answer>", "<detect>", "</detect>", '<3d_box center="1,2,3">', "</3d_box>",
     "< / think >", "<", ">", "/", "\n", " ", '"', ",", "(", ")", "Find 2 relevant objects:", "x"]
)


@st.composite
def mutated_completions(draw):
    text = draw(st.sampled_from([SPEC_DTR, render_lor("step 3 / 4", "1.2 m")]))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(text)))
        operation = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        end = min(len(text), position + draw(st.integers(1, 20)))
        if operation == "insert":
            text = text[:position] + draw(tag_pieces) + text[position:]
        elif operation == "delete":
            text = text[:position] + text[end:]
        else:
            text = text[:end] + text[position:end] + text[end:]
    return text


def _check_invariants(parsed: ParsedCompletion) -> None:
    assert parsed.well_formed == (parsed.path is not None and not parsed.errors)
    assert parsed.path in ("lor", "dtr", None)
    assert all(isinstance(error, str) for error in parsed.errors)
    assert all(len(d.center) == 3 and all(math.isfinite(v) for v in d.center) for d in parsed.detections)


@settings(max_examples=300, deadline=None)
@given(mutated_completions())
def test_mutated_completions_never_raise(text):
    _check_invariants(parse_completion(text))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.lists(tag_pieces | st.text(max_size=5), max_size=30).map("".join))
def test_random_text_never_raises(text):
    _check_invariants(parse_completion(text))


@settings(max_examples=100, deadline=None)
@given(mutated_completions())
def test_well_formed_mutations_render_back_to_an_equivalent_completion(text):
    parsed = parse_completion(text)
    if not parsed.well_formed or "<" in (parsed.think or "") + (parsed.answer or ""):
        return
    if parsed.path == "lor":
        again = parse_completion(render_lor(parsed.think, parsed.answer))
    else:
        again = parse_completion(render_dtr(parsed.detections, parsed.think, parsed.answer))
    assert (again.think, again.answer, again.well_formed) == (parsed.think, parsed.answer, True)


# ------------------------------------------------------------------------------------- region references


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("Red  BBox", "red bbox"), ("Region [10]", "region 10"), (3, "3"), ("frame_12-red bbox", "frame 12 red bbox")],
)
def test_normalise_ref(ref, expected):
    assert normalise_ref(ref) == expected


def test_find_detection_matches_whole_words_only():
    boxes = [
        Detection("chair", "frame 12 red bbox", (0, 0, 1)),
        Detection("desk", "region 10", (0, 0, 2)),
        Detection("lamp", "frame 1 red bbox", (0, 0, 3)),
        Detection("Red BBox sofa", None, (0, 0, 4)),
    ]
    assert find_detection(boxes, "frame 1 red bbox") is boxes[2]
    assert find_detection(boxes, "Frame 12  Red bbox") is boxes[0]
    assert find_detection(boxes, "region 1") is None
    assert find_detection(boxes, "Region [10]") is boxes[1]
    assert find_detection(boxes, 10) is boxes[1]
    assert find_detection(boxes, "red bbox") is boxes[0]  # the first whose name or ref contains it
    assert find_detection(boxes[3:], "red bbox") is boxes[3]  # the name may carry the reference
    assert find_detection(boxes, "") is None


# ------------------------------------------------------------------------------------------------ prompts


def test_lor_prompt_asks_for_think_and_answer_only():
    prompt = build_prompt("How far is the chair?", "lor", "numeric")
    assert prompt.startswith("How far is the chair?\n\n")
    assert "<think>" in prompt and "<answer>" in prompt and "<detect>" not in prompt
    assert "number and its unit" in prompt


def test_dtr_prompt_shows_the_exact_box_syntax():
    prompt = build_prompt("Which is closer?", "dtr", "choice")
    assert '<3d_box center="0.02,1.06,2.03">cabinet (red bbox)</3d_box>' in prompt
    assert prompt.index("<detect>") < prompt.index("<think>") < prompt.index("<answer>")
    assert "+z forward" in prompt and "letter" in prompt


def test_auto_prompt_describes_both_formats_and_all_conventions():
    prompt = build_prompt("Q?", "auto")
    assert "<detect>" in prompt and "language-only" in prompt
    for answer_type in ("numeric", "choice", "yesno", "direction"):
        assert answer_instruction(answer_type) in prompt


def test_prompt_examples_parse_as_their_path():
    prompt = build_prompt("Q?", "dtr", "choice")
    example = prompt[prompt.index("<detect>Find") : prompt.index("\nFor a")]
    assert parse_completion(example).well_formed


def test_invalid_prompt_arguments_raise():
    with pytest.raises(ValueError):
        build_prompt("Q?", "both")
    with pytest.raises(ValueError):
        answer_instruction("essay")


def test_reference_path():
    assert reference_path(True) == "dtr"
    assert reference_path(False) == "lor"
