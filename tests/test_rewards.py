"""Tests of sr_real_core.rewards: TRL reward functions, worked numbers of method.md, robustness."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sr_real_core.grammar import Detection, render_dtr, render_lor
from sr_real_core.rewards import (
    DETECTION_BINS,
    RewardWeights,
    accuracy_reward,
    completion_text,
    detection_bin_score,
    detection_reward,
    format_reward,
    make_accuracy_reward,
    make_detection_reward,
    make_sr_real_reward,
    reward_breakdown,
    sr_real_reward,
)

RED, BLUE = (0.0, 0.0, 2.0), (1.0, 0.0, 3.0)
GT_TWO = [{"ref": "red bbox", "center": list(RED)}, {"ref": "blue bbox", "center": list(BLUE)}]
ALL_REWARDS = (format_reward, accuracy_reward, detection_reward, sr_real_reward)


def lor(answer: str) -> str:
    return render_lor("Reasoning.", answer)


def dtr(answer: str, boxes: list[Detection] | None = None) -> str:
    if boxes is None:
        boxes = [Detection("cabinet", "red bbox", RED), Detection("chair", "blue bbox", BLUE)]
    return render_dtr(boxes, "Reasoning.", answer)


def one(function, completion, **sample) -> float:
    """A reward function applied to a batch of one sample."""
    return function([completion], **{key: [value] for key, value in sample.items()})[0]


# ------------------------------------------------------------------------------------------------ format


def test_format_reward_per_requested_path():
    completions = [lor("B"), dtr("B"), lor("B"), dtr("B"), lor("B"), dtr("B"), "B"]
    paths = ["lor", "lor", "dtr", "dtr", "auto", "auto", "auto"]
    assert format_reward(completions, path=paths) == [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]


def test_missing_path_column_means_auto():
    assert format_reward([lor("B"), dtr("B")]) == [1.0, 1.0]
    assert format_reward([lor("B")], path=[None]) == [1.0]


def test_malformed_completion_gets_no_format_and_no_accuracy():
    broken = lor("B") + " trailing"
    assert one(format_reward, broken, path="lor") == 0.0
    assert one(accuracy_reward, broken, path="lor", solution="B", answer_type="choice") == 0.0


# ---------------------------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("1.05 m", 0.91), ("1.25", 0.61), ("150 cm", 0.37), ("0.95 m", 0.91), ("75 cm", 0.61), ("0.5 meters", 0.37)],
)
def test_numeric_accuracy_worked_numbers(answer, expected):
    score = one(accuracy_reward, lor(answer), path="lor", solution=1.0, answer_type="numeric")
    assert round(score, 2) == expected


def test_numeric_accuracy_formula_and_units():
    score = one(accuracy_reward, lor("3 feet 2 inches"), solution="1.0", answer_type="numeric")
    assert score == pytest.approx(math.exp(-2 * abs(0.9652 - 1.0) / 1.01))
    assert one(accuracy_reward, lor("45 cm"), solution=0.45, answer_type="numeric") == pytest.approx(1.0)
    assert one(accuracy_reward, lor("far"), solution=0.45, answer_type="numeric") == 0.0


def test_numeric_solution_may_carry_a_unit():
    assert one(accuracy_reward, lor("0.45 m"), solution="45 cm", answer_type="numeric") == pytest.approx(1.0)


def test_multiline_answer_is_scored():
    assert one(accuracy_reward, lor("It is about\n1.2 m"), solution=1.2, answer_type="numeric") == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("answer", "solution", "answer_type", "expected"),
    [
        ("B", "B", "choice", 1.0),
        ("(b)", "B", "choice", 1.0),
        ("The answer is C", "b", "choice", 0.0),
        ("E", "E", "choice", 1.0),
        ("A chair", "A", "choice", 0.0),
        ("Yes.", "yes", "yesno", 1.0),
        ("no", "Yes", "yesno", 0.0),
        ("no", False, "yesno", 1.0),
        ("3 o'clock", 3, "direction", 1.0),
        ("4 o'clock", 3, "direction", 0.5),
        ("2", "3 o'clock", "direction", 0.5),
        ("1 o'clock", 12, "direction", 0.5),
        ("12 o'clock", 1, "direction", 0.5),
        ("5 o'clock", 3, "direction", 0.0),
        ("9 o'clock", 3.0, "direction", 0.0),
    ],
)
def test_exact_accuracy(answer, solution, answer_type, expected):
    assert one(accuracy_reward, lor(answer), solution=solution, answer_type=answer_type) == expected


def test_direction_near_credit_is_configurable():
    strict = make_accuracy_reward(direction_near_credit=0.0)
    assert one(strict, lor("4 o'clock"), solution=3, answer_type="direction") == 0.0
    assert strict.__name__ == "accuracy_reward"


def test_accuracy_requires_the_requested_path():
    assert one(accuracy_reward, dtr("B"), path="lor", solution="B", answer_type="choice") == 0.0
    assert one(accuracy_reward, lor("B"), path="dtr", solution="B", answer_type="choice") == 0.0
    assert one(accuracy_reward, dtr("B"), path="auto", solution="B", answer_type="choice") == 1.0


# --------------------------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("distance", "score"),
    [(0.0, 1.0), (0.0999, 1.0), (0.1, 0.8), (0.1999, 0.8), (0.2, 0.6), (0.2999, 0.6), (0.3, 0.4), (0.3999, 0.4),
     (0.4, 0.2), (0.5999, 0.2), (0.6, 0.1), (0.9999, 0.1), (1.0, 0.0), (5.0, 0.0), (math.nan, 0.0), (math.inf, 0.0),
     (None, 0.0)],
)
def test_detection_bins_at_each_boundary(distance, score):
    assert detection_bin_score(distance) == score


@pytest.mark.parametrize(("bound", "score"), DETECTION_BINS)
def test_detection_bins_through_rendered_completions(bound, score):
    """A box 1 cm inside a bin's bound gets its score; one exactly on the bound gets the next bin's."""
    for offset, expected in ((bound - 0.01, score), (bound, _next_bin_score(bound))):
        box = Detection("cabinet", "red bbox", (RED[0] + offset, RED[1], RED[2]))
        completion = dtr("B", [box])
        assert one(detection_reward, completion, path="dtr", gt_centers=[GT_TWO[0]]) == expected


def _next_bin_score(bound: float) -> float:
    later = [score for upper, score in DETECTION_BINS if upper > bound]
    return later[0] if later else 0.0


def test_normalisations_differ_on_a_missed_object():
    only_red = dtr("B", [Detection("cabinet", "red bbox", RED)])
    reference = make_detection_reward(detection_norm="reference")
    assert one(reference, only_red, path="dtr", gt_centers=GT_TWO) == 1.0  # the miss costs nothing
    assert one(detection_reward, only_red, path="dtr", gt_centers=GT_TWO) == 0.5  # matched: 1 / max(2, 1)


def test_spurious_box_costs_in_both_normalisations():
    boxes = [Detection("cabinet", "red bbox", RED), Detection("lamp", "green bbox", (0, 0, 1))]
    reference = make_detection_reward(detection_norm="reference")
    assert one(reference, dtr("B", boxes), gt_centers=[GT_TWO[0]]) == 0.5
    assert one(detection_reward, dtr("B", boxes), gt_centers=[GT_TWO[0]]) == 0.5


def test_detection_with_no_boxes_or_no_match_is_zero():
    for norm in ("matched", "reference"):
        function = make_detection_reward(detection_norm=norm)
        assert one(function, dtr("B", []), gt_centers=GT_TWO) == 0.0
        assert one(function, dtr("B", [Detection("x", "green bbox", RED)]), gt_centers=GT_TWO) == 0.0


def test_reference_normalisation_is_clipped_when_regions_share_a_box():
    box = [Detection("cabinet", "red bbox", RED)]
    regions = [{"ref": "red bbox", "center": RED}, {"ref": "cabinet", "center": RED}]
    assert one(make_detection_reward(detection_norm="reference"), dtr("B", box), gt_centers=regions) == 1.0


def test_detection_refs_compare_as_normalised_strings():
    boxes = [Detection("chair", "frame 12 red bbox", RED), Detection("desk", "region 10", BLUE)]
    completion = dtr("B", boxes)
    assert one(detection_reward, completion, gt_centers=[{"ref": "Frame 12  RED bbox", "center": RED}]) == 0.5
    assert one(detection_reward, completion, gt_centers=[{"ref": "frame 1 red bbox", "center": RED}]) == 0.0
    assert one(detection_reward, completion, gt_centers=[{"ref": 10, "center": BLUE}]) == 0.5
    assert one(detection_reward, completion, gt_centers=[{"ref": "region 1", "center": BLUE}]) == 0.0


def test_detection_uses_the_first_matching_box():
    boxes = [Detection("cabinet", "red bbox", (5.0, 0.0, 2.0)), Detection("cabinet", "red bbox", RED)]
    assert one(make_detection_reward(detection_norm="reference"), dtr("B", boxes), gt_centers=[GT_TWO[0]]) == 0.0


def test_detection_accepts_the_datasets_dict_of_lists_form():
    columns = {"ref": ["red bbox", "blue bbox"], "center": [list(RED), list(BLUE)]}
    assert one(detection_reward, dtr("B"), gt_centers=columns) == 1.0


def test_detection_does_not_apply_to_lor_or_without_ground_truth():
    assert one(detection_reward, lor("B"), path="auto", gt_centers=GT_TWO) == 0.0
    assert one(detection_reward, dtr("B"), path="lor", gt_centers=GT_TWO) == 0.0
    assert one(detection_reward, dtr("B"), path="dtr", gt_centers=None) == 0.0
    assert one(detection_reward, dtr("B"), path="dtr", gt_centers=[]) == 0.0
    assert detection_reward([dtr("B")]) == [0.0]


# ------------------------------------------------------------------------------------------------- total


def test_totals_of_both_paths():
    sample = {"solution": "B", "answer_type": "choice", "gt_centers": GT_TWO}
    assert one(sr_real_reward, lor("B"), path="lor", **sample) == pytest.approx(1.0)
    assert one(sr_real_reward, lor("C"), path="lor", **sample) == pytest.approx(0.2)
    assert one(sr_real_reward, dtr("B"), path="dtr", **sample) == pytest.approx(1.0)
    assert one(sr_real_reward, dtr("C"), path="dtr", **sample) == pytest.approx(0.2)
    far = [Detection("cabinet", "red bbox", (3.0, 0.0, 2.0)), Detection("chair", "blue bbox", (4.0, 0.0, 3.0))]
    assert one(sr_real_reward, dtr("B", far), path="dtr", **sample) == pytest.approx(0.9)
    assert one(sr_real_reward, dtr("B"), path="lor", **sample) == 0.0
    assert one(sr_real_reward, lor("B"), path="dtr", **sample) == 0.0


def test_numeric_total_worked_number():
    total = one(sr_real_reward, lor("1.05 m"), path="lor", solution=1.0, answer_type="numeric")
    assert total == pytest.approx(0.8 * math.exp(-0.1 / 1.01) + 0.2)


def test_auto_path_follows_the_completion():
    sample = {"path": "auto", "solution": "B", "answer_type": "choice", "gt_centers": GT_TWO}
    far = [Detection("cabinet", "red bbox", (3.0, 0.0, 2.0)), Detection("chair", "blue bbox", (4.0, 0.0, 3.0))]
    assert one(sr_real_reward, lor("C"), **sample) == pytest.approx(0.2)  # LOR weights: 0.2 format
    assert one(sr_real_reward, dtr("C"), **sample) == pytest.approx(0.2)  # DTR: 0.1 format + 0.1 detection
    assert one(sr_real_reward, dtr("B", far), **sample) == pytest.approx(0.9)
    breakdown = reward_breakdown(dtr("B"), **sample)
    assert (breakdown["completion_path"], breakdown["scored_path"]) == ("dtr", "dtr")
    assert reward_breakdown(lor("B"), **sample)["scored_path"] == "lor"


def test_dtr_without_ground_truth_rescales_the_other_weights():
    assert one(sr_real_reward, dtr("B"), path="dtr", solution="B", answer_type="choice") == pytest.approx(1.0)
    assert one(sr_real_reward, dtr("C"), path="dtr", solution="B", answer_type="choice") == pytest.approx(0.1 / 0.9)


def test_custom_weights_and_normalisation():
    weights = RewardWeights(lor_accuracy=0.5, lor_format=0.5, dtr_accuracy=0.5, dtr_format=0.2, dtr_detection=0.3)
    custom = make_sr_real_reward(weights=weights, detection_norm="reference")
    assert custom.__name__ == "sr_real_reward"
    only_red = dtr("C", [Detection("cabinet", "red bbox", RED)])
    sample = {"path": "dtr", "solution": "B", "answer_type": "choice", "gt_centers": GT_TWO}
    assert one(custom, only_red, **sample) == pytest.approx(0.2 + 0.3 * 1.0)
    assert one(sr_real_reward, only_red, **sample) == pytest.approx(0.1 + 0.1 * 0.5)


@pytest.mark.parametrize(
    "kwargs",
    [{"lor_accuracy": 0.9}, {"dtr_detection": -0.1, "dtr_format": 0.3}, {"lor_format": math.nan}],
)
def test_invalid_weights_raise(kwargs):
    with pytest.raises(ValueError):
        RewardWeights(**kwargs)


def test_invalid_configuration_raises():
    with pytest.raises(ValueError):
        make_detection_reward(detection_norm="mean")
    with pytest.raises(ValueError):
        make_accuracy_reward(direction_near_credit=2.0)


def test_reward_breakdown_lists_components_and_errors():
    breakdown = reward_breakdown(lor("B") + " tail", path="lor", solution="B", answer_type="choice", extra=1)
    assert breakdown == {
        "requested_path": "lor",
        "completion_path": "lor",
        "scored_path": "lor",
        "format": 0.0,
        "accuracy": 0.0,
        "detection": None,
        "total": 0.0,
        "errors": ("text after </answer>",),
    }


# ------------------------------------------------------------------------------------------ TRL interface


def test_function_names_for_trl_logging():
    assert [function.__name__ for function in ALL_REWARDS] == [
        "format_reward", "accuracy_reward", "detection_reward", "sr_real_reward"
    ]


def test_trl_keyword_arguments_are_accepted_and_ignored():
    completions = [dtr("B"), lor("1.2 m")]
    columns = {
        "prompts": ["p1", "p2"],
        "completion_ids": [[1, 2], [3]],
        "trainer_state": object(),
        "log_metric": print,
        "log_extra": print,
        "image": [None, None],
        "path": ["dtr", "lor"],
        "solution": ["B", 1.2],
        "answer_type": ["choice", "numeric"],
        "gt_centers": [GT_TWO, None],
    }
    assert sr_real_reward(completions=completions, **columns) == pytest.approx([1.0, 1.0])
    for function in ALL_REWARDS:
        assert len(function(completions=completions, **columns)) == 2


def test_conversational_completions_score_like_strings():
    text = dtr("B")
    forms = [
        [{"role": "assistant", "content": text}],
        [{"role": "assistant", "content": [{"type": "text", "text": text[:20]}, {"type": "text", "text": text[20:]}]}],
        [{"role": "assistant", "content": [{"type": "image"}, {"type": "text", "text": text}]}],
        {"role": "assistant", "content": text},
    ]
    columns = {"path": ["auto"], "solution": ["B"], "answer_type": ["choice"], "gt_centers": [GT_TWO]}
    for function in ALL_REWARDS:
        expected = function([text], **columns)
        for form in forms:
            assert function([form], **columns) == expected


@pytest.mark.parametrize("completion", [None, 3, [{"role": "assistant"}], [{"content": None}], ["text"], [[1]]])
def test_unreadable_completions_score_zero(completion):
    columns = {"path": ["auto"], "solution": ["B"], "answer_type": ["choice"], "gt_centers": [GT_TWO]}
    for function in ALL_REWARDS:
        assert function([completion], **columns) == [0.0]


def test_completion_text():
    assert completion_text("x") == "x"
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "ab"
    assert completion_text(42) is None


# --------------------------------------------------------------------------------------- dataset errors


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("solution", "far", "sample 1: column 'solution'"),
        ("solution", None, "sample 1: column 'solution'"),
        ("solution", math.nan, "sample 1: column 'solution'"),
        ("answer_type", "essay", "sample 1: column 'answer_type'"),
        ("path", "both", "sample 1: column 'path'"),
        ("gt_centers", [{"ref": "red bbox", "center": [1, 2]}], "sample 1: column 'gt_centers'"),
        ("gt_centers", [{"center": [1, 2, 3]}], "sample 1: column 'gt_centers'"),
        ("gt_centers", [{"ref": " ", "center": [1, 2, 3]}], "sample 1: column 'gt_centers'"),
        ("gt_centers", "red bbox", "sample 1: column 'gt_centers'"),
    ],
)
def test_bad_dataset_values_raise_naming_sample_and_column(column, value, message):
    columns = {"path": ["dtr", "dtr"], "solution": [1.0, 1.0], "answer_type": ["numeric", "numeric"],
               "gt_centers": [GT_TWO, GT_TWO]}
    columns[column] = [columns[column][0], value]
    with pytest.raises(ValueError, match=message):
        sr_real_reward([dtr("1 m"), dtr("1 m")], **columns)


@pytest.mark.parametrize(
    ("solution", "answer_type"),
    [("AB", "choice"), (1, "choice"), ("maybe", "yesno"), (13, "direction"), (2.5, "direction"), (True, "numeric"),
     (-1.0, "numeric")],
)
def test_invalid_solutions_raise(solution, answer_type):
    with pytest.raises(ValueError, match="sample 0: column 'solution'"):
        one(accuracy_reward, lor("B"), solution=solution, answer_type=answer_type)


def test_missing_or_misaligned_columns_raise():
    with pytest.raises(ValueError, match="'solution'"):
        accuracy_reward([lor("B")], answer_type=["choice"])
    with pytest.raises(ValueError, match="one value per completion"):
        sr_real_reward([lor("B")], solution=["B", "C"], answer_type=["choice"])


# --------------------------------------------------------------------------------------- property-based

pieces = st.sampled_from(
    ["<think>", "</think>", "<answer>", "</answer>", "<detect>", "</detect>", '<3d_box center="0,0,2">', "</3d_box>",
     '<3d_box center="1e999,0,1">', "red bbox", "(", ")", "\n", "B", "1.2 m", "<", "/", ">", " "]
)


@st.composite
def mutated(draw):
    text = draw(st.sampled_from([dtr("B"), dtr("1.2 m"), lor("B"), lor("3 o'clock")]))
    for _ in range(draw(st.integers(0, 5))):
        position = draw(st.integers(0, len(text)))
        end = min(len(text), position + draw(st.integers(1, 15)))
        operation = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        if operation == "insert":
            text = text[:position] + draw(pieces) + text[position:]
        elif operation == "delete":
            text = text[:position] + text[end:]
        else:
            text = text[:end] + text[position:end] + text[end:]
    return text


samples = st.sampled_from(
    [("B", "choice"), (1.2, "numeric"), ("yes", "yesno"), (3, "direction")]
)


@settings(max_examples=200, deadline=None)
@given(
    completion=mutated() | st.text(max_size=200),
    sample=samples,
    path=st.sampled_from(["lor", "dtr", "auto", None]),
    norm=st.sampled_from(["matched", "reference"]),
    conversational=st.booleans(),
)
def test_rewards_stay_in_unit_interval_and_match_conversational_form(completion, sample, path, norm, conversational):
    solution, answer_type = sample
    columns = {"path": [path], "solution": [solution], "answer_type": [answer_type], "gt_centers": [GT_TWO]}
    functions = (format_reward, accuracy_reward, make_detection_reward(detection_norm=norm),
                 make_sr_real_reward(detection_norm=norm))
    for function in functions:
        score = function([completion], **columns)[0]
        assert 0.0 <= score <= 1.0
        if conversational:
            message = [{"role": "assistant", "content": [{"type": "text", "text": completion}]}]
            assert function([message], **columns)[0] == score
    breakdown = reward_breakdown(completion, **{key: value[0] for key, value in columns.items()})
    assert breakdown["accuracy"] == 0.0 or breakdown["format"] == 1.0
