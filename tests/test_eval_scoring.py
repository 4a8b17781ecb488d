"""Verdicts and the metrics.json figures on hand-computed examples; missing and duplicate prediction ids."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sr_real_core.evaluation.records import EvaluationInputError, Prediction, load_predictions, load_qa
from sr_real_core.evaluation.scoring import build_metrics, score_all

ISSUE_KEYS = ("qualitative_accuracy", "quantitative_success", "abs_rel", "qspatial_delta2", "mra", "direction_success",
              "center_error_median_m", "format_failure_rate", "n", "n_unparsed")
GT_CENTERS = [{"ref": "red bbox", "center": [0.0, 0.0, 2.0]}, {"ref": "blue bbox", "center": [1.0, 0.0, 3.0]}]


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def qa_row(identifier: str, answer_type: str, solution, category: str, question: str = "Q?", **extra) -> dict:
    return {"id": identifier, "question": question, "answer_type": answer_type, "solution": solution,
            "category": category, **extra}


# Ten questions: four numeric (truth 2 m), four qualitative, two direction (truth 12 o'clock).
QA = [
    qa_row("n1", "numeric", 2.0, "distance"),
    qa_row("n2", "numeric", "200 cm", "distance"),  # a solution with a unit is converted: 2.0 m
    qa_row("n3", "numeric", 2.0, "height", gt_centers=GT_CENTERS),
    qa_row("n4", "numeric", 2.0, "height"),
    qa_row("q1", "yesno", "yes", "left_predicate", "Is Region [0] to the left of Region [1]?"),
    qa_row("q2", "yesno", True, "left_predicate", "Is Region [0] to the left of Region [1]?"),
    qa_row("q3", "yesno", "no", "left_predicate", "Is Region [0] to the left of Region [1]?"),
    qa_row("q4", "choice", "b", "tall_choice", "Who is taller, Region [0] or Region [1]?"),
    qa_row("d1", "direction", 12, "direction"),
    qa_row("d2", "direction", "12 o'clock", "direction"),
]
PREDICTIONS = [
    {"id": "n1", "completion": "<think>...</think>\n<answer>150 cm</answer>"},  # 1.5 m
    {"id": "n2", "completion": "It is 3 meters away."},  # 3.0 m, free text
    {"id": "n3", "completion": '<detect>Find 2 relevant objects:\n'
                               '<3d_box center="0.03,0.04,2.00">cup (red bbox)</3d_box>\n'
                               '<3d_box center="1.00,0.30,3.00">mug (blue bbox)</3d_box></detect>\n'
                               "<think>...</think>\n<answer>2.2 m</answer>"},  # 2.2 m; centres 0.05 and 0.30 m off
    # n4: no prediction
    {"id": "q1", "completion": "Region [0] is indeed to the left of Region [1]."},  # yes: right
    {"id": "q2", "completion": "In fact, Region [0] is to the right of Region [1]."},  # no: wrong
    {"id": "q3", "completion": "<think>x</think><answer>no</answer>"},  # right
    {"id": "q4", "completion": "Standing taller between the two is Region [1]."},  # B: right
    {"id": "d1", "completion": "It is at 1 o'clock"},  # one hour off: success
    {"id": "d2", "completion": "TwelveMug photo photo"},  # gibberish: unparsed
    {"id": "ghost", "completion": "3 m"},  # not in the QA file
]


@pytest.fixture()
def metrics(tmp_path):
    records = load_qa(write_lines(tmp_path / "qa.jsonl", QA))
    predictions = load_predictions(write_lines(tmp_path / "pred.jsonl", PREDICTIONS))
    verdicts = score_all(records, predictions)
    return build_metrics(verdicts, [p for p in predictions if p not in {r.id for r in records}])


def test_numeric_figures_by_hand(metrics):
    # predictions 1.5, 3.0, 2.2 and unparsed against 2.0:
    # relative errors 0.25, 0.5, 0.1 -> SpatialRGPT band [1.5, 2.5]: 1.5 and 2.2 pass -> 2/4
    assert metrics["quantitative_success"] == pytest.approx(2 / 4)
    # mean abs-rel over the parsed ones: (0.25 + 0.5 + 0.1) / 3
    assert metrics["abs_rel"] == pytest.approx(0.85 / 3)
    # delta = max(p/g, g/p): 1.333, 1.5, 1.1 -> < 2: 3/4 ; < 1.5: 2/4 (1.5 is not < 1.5)
    assert metrics["qspatial_delta2"] == pytest.approx(3 / 4)
    assert metrics["qspatial_delta1_5"] == pytest.approx(2 / 4)
    # MRA over tolerances 0.05..0.50: 0.25 passes 6 of 10, 0.5 passes 1, 0.1 passes 9, unparsed 0 -> 16/40
    assert metrics["mra"] == pytest.approx(16 / 40)


def test_qualitative_direction_center_and_format_figures_by_hand(metrics):
    assert metrics["qualitative_accuracy"] == pytest.approx(3 / 4)  # q1, q3, q4 right; q2 wrong
    assert metrics["direction_success"] == pytest.approx(1 / 2)  # 1 o'clock vs 12: one hour off; gibberish fails
    # centre errors of n3: |(0.03, 0.04, 0)| = 0.05 m and |(0, 0.3, 0)| = 0.30 m -> median 0.175
    assert metrics["center_error_median_m"] == pytest.approx(0.175)
    within = (metrics["center_within_0_1m"], metrics["center_within_0_25m"], metrics["center_within_0_5m"])
    assert within == (0.5, 0.5, 1.0)
    # well formed: n1, n3, q3 -> 7 of 10 fail the grammar (free text, missing, gibberish)
    assert metrics["format_failure_rate"] == pytest.approx(7 / 10)
    assert metrics["accuracy"] == pytest.approx(6 / 10)  # n1, n3, q1, q3, q4, d1
    assert metrics["path_shares"] == {"dtr": 0.1, "lor": 0.2, "none": 0.7}


def test_keys_overall_per_category_and_per_path(metrics):
    assert (metrics["n"], metrics["n_unparsed"]) == (10, 2)  # n4 missing, d2 gibberish
    for key in ISSUE_KEYS:
        assert key in metrics
    assert set(metrics["per_category"]) == {"distance", "height", "left_predicate", "tall_choice", "direction"}
    for figures in metrics["per_category"].values():
        assert set(ISSUE_KEYS) <= set(figures)
    distance = metrics["per_category"]["distance"]
    assert distance["qualitative_accuracy"] is None and distance["direction_success"] is None  # no such question
    assert distance["quantitative_success"] == pytest.approx(1 / 2)  # 1.5 passes, 3.0 fails
    assert metrics["per_category"]["left_predicate"]["qualitative_accuracy"] == pytest.approx(2 / 3)
    assert metrics["per_path"]["dtr"]["n"] == 1 and metrics["per_path"]["none"]["n"] == 7
    json.dumps(metrics, allow_nan=False)  # strict JSON: no NaN anywhere


def test_missing_and_unparsed_answers_are_listed_never_dropped(metrics):
    assert metrics["missing_predictions"] == ["n4"]
    assert metrics["unknown_predictions"] == ["ghost"]
    listed = {entry["id"]: entry for entry in metrics["unparsed"]}
    assert listed["n4"]["reason"] == "missing prediction" and listed["n4"]["answer"] is None
    assert listed["d2"] == {"id": "d2", "category": "direction", "reason": "answer not understood",
                            "answer": "TwelveMug photo photo"}


def test_figures_are_null_where_no_question_of_that_kind_exists(tmp_path):
    records = load_qa(write_lines(tmp_path / "qa.jsonl", [qa_row("a", "yesno", "yes", "left_predicate")]))
    metrics = build_metrics(score_all(records, {"a": Prediction("a", "yes", {})}))
    assert metrics["qualitative_accuracy"] == 1.0
    absent = ("quantitative_success", "abs_rel", "qspatial_delta2", "mra", "direction_success", "center_error_median_m")
    for key in absent:
        assert metrics[key] is None


def test_duplicate_prediction_ids_are_an_error_naming_them(tmp_path):
    path = write_lines(tmp_path / "pred.jsonl", [{"id": "a", "completion": "1 m"}, {"id": "b", "completion": "2 m"},
                                                 {"id": "a", "completion": "3 m"}, {"id": 7, "completion": "x"},
                                                 {"id": "7", "completion": "y"}])
    with pytest.raises(EvaluationInputError, match=r"2 duplicated id\(s\): 'a' on lines 1, 3; '7' on lines 4, 5"):
        load_predictions(path)


def test_duplicate_qa_ids_and_malformed_lines_are_errors_naming_the_line(tmp_path):
    with pytest.raises(EvaluationInputError, match="'x' on lines 1, 2"):
        load_qa(write_lines(tmp_path / "qa.jsonl", [qa_row("x", "yesno", "yes", "c"), qa_row("x", "yesno", "no", "c")]))
    with pytest.raises(EvaluationInputError, match=r"qa2.jsonl:2: record 'y': 'solution' 'maybe'"):
        load_qa(write_lines(tmp_path / "qa2.jsonl", [qa_row("x", "yesno", "yes", "c"),
                                                     qa_row("y", "yesno", "maybe", "c")]))
    with pytest.raises(EvaluationInputError, match=r"qa3.jsonl:1: .*positive"):
        load_qa(write_lines(tmp_path / "qa3.jsonl", [qa_row("z", "numeric", 0, "distance")]))
    with pytest.raises(EvaluationInputError, match=r"pred.jsonl:2: 'completion' must be"):
        load_predictions(write_lines(tmp_path / "pred.jsonl", [{"id": "a", "completion": "x"}, {"id": "b"}]))


def test_chat_message_completions_are_read(tmp_path):
    rows = [{"id": "a", "completion": [{"role": "assistant", "content": [{"type": "text", "text": "2 m"}]}]}]
    assert load_predictions(write_lines(tmp_path / "pred.jsonl", rows))["a"].completion == "2 m"


def test_a_lor_completion_claims_no_centres(tmp_path):
    row = qa_row("a", "numeric", 1.0, "distance", gt_centers=GT_CENTERS)
    records = load_qa(write_lines(tmp_path / "qa.jsonl", [row]))
    metrics = build_metrics(score_all(records, {"a": Prediction("a", "<think>t</think><answer>1 m</answer>", {})}))
    assert metrics["center_regions"] == 0 and metrics["center_error_median_m"] is None
    assert math.isclose(metrics["quantitative_success"], 1.0)
