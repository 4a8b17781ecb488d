"""Tests of sr_real_core.metrics: benchmark success criteria, MRA, clock hours, centre errors, aggregate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sr_real_core.grammar import Detection
from sr_real_core.metrics import (
    abs_rel_error,
    aggregate,
    center_error_summary,
    clock_distance,
    clock_success,
    delta_success,
    matched_center_errors,
    mean_relative_accuracy,
    parse_gt_centers,
    spatialrgpt_success,
)


@pytest.mark.parametrize(
    ("pred", "gt", "success"),
    [(1.0, 1.0, True), (0.75, 1.0, True), (1.25, 1.0, True), (0.749, 1.0, False), (1.251, 1.0, False),
     (0.125, 0.1, True), (0.075, 0.1, True), (None, 1.0, False), (math.nan, 1.0, False), (-1.0, 1.0, False)],
)
def test_spatialrgpt_success(pred, gt, success):
    assert spatialrgpt_success(pred, gt) is success


def test_spatialrgpt_success_on_arrays_and_custom_band():
    result = spatialrgpt_success([1.0, 2.0, None], [1.0, 1.0, 1.0])
    assert isinstance(result, np.ndarray) and result.tolist() == [True, False, False]
    assert spatialrgpt_success(1.4, 1.0, low=0.5, high=1.5) is True


def test_abs_rel_error():
    assert abs_rel_error(1.5, 1.0) == pytest.approx(0.5)
    assert abs_rel_error(0.5, 2.0) == pytest.approx(0.75)
    assert math.isnan(abs_rel_error(None, 1.0))


@pytest.mark.parametrize(
    ("pred", "gt", "threshold", "success"),
    [(1.99, 1.0, 2.0, True), (2.0, 1.0, 2.0, False), (0.5, 1.0, 2.0, False), (0.51, 1.0, 2.0, True),
     (1.49, 1.0, 1.5, True), (1.5, 1.0, 1.5, False), (0.0, 1.0, 2.0, False), (-1.0, 1.0, 2.0, False),
     (None, 1.0, 2.0, False)],
)
def test_delta_success(pred, gt, threshold, success):
    assert delta_success(pred, gt, threshold) is success


@pytest.mark.parametrize(
    ("pred", "gt", "mra"),
    [(1.0, 1.0, 1.0), (1.1, 1.0, 0.9), (0.9, 1.0, 0.9), (2.2, 2.0, 0.9), (1.05, 1.0, 1.0), (1.06, 1.0, 0.9),
     (1.5, 1.0, 0.1), (0.5, 1.0, 0.1), (1.51, 1.0, 0.0), (3.0, 1.0, 0.0), (None, 1.0, 0.0)],
)
def test_mean_relative_accuracy_including_exact_boundaries(pred, gt, mra):
    assert mean_relative_accuracy(pred, gt) == pytest.approx(mra)


def test_mean_relative_accuracy_on_arrays():
    assert mean_relative_accuracy([1.0, 1.1, 5.0], [1.0, 1.0, 1.0]).tolist() == pytest.approx([1.0, 0.9, 0.0])


@settings(max_examples=200, deadline=None)
@given(percent=st.integers(0, 60), gt=st.floats(0.05, 100.0))
def test_mean_relative_accuracy_at_whole_percent_errors(percent, gt):
    """An error of k% passes every 1 - theta >= k/100, whatever float rounding does to k/100."""
    expected = sum(percent <= tolerance for tolerance in range(5, 55, 5)) / 10
    assert mean_relative_accuracy(gt * (1 + percent / 100), gt) == pytest.approx(expected)


@pytest.mark.parametrize("gt", [0.0, -1.0, math.nan, None, math.inf])
def test_non_positive_ground_truth_raises(gt):
    for metric in (spatialrgpt_success, abs_rel_error, delta_success, mean_relative_accuracy):
        with pytest.raises(ValueError):
            metric(1.0, gt)


@pytest.mark.parametrize(
    ("a", "b", "distance"), [(12, 1, 1), (1, 12, 1), (3, 9, 6), (2, 11, 3), (5, 5, 0), (11, 1, 2)]
)
def test_clock_distance_is_circular(a, b, distance):
    assert clock_distance(a, b) == distance


def test_clock_success_within_one_hour():
    assert clock_success(3, 3) and clock_success(4, 3) and clock_success(12, 1) and clock_success(1, 12)
    assert not clock_success(5, 3) and not clock_success(None, 3)
    assert clock_success(5, 3, tolerance_hours=2)
    with pytest.raises(ValueError):
        clock_success(3, 13)


def test_matched_center_errors():
    detections = [
        Detection("chair", "frame 12 red bbox", (0.0, 0.0, 2.0)),
        Detection("desk", "blue bbox", (3.0, 4.0, 0.0)),
    ]
    regions = parse_gt_centers(
        [{"ref": "Frame 12 red bbox", "center": [0, 0, 2.5]}, {"ref": "blue bbox", "center": [0, 0, 0]},
         {"ref": "frame 1 red bbox", "center": [0, 0, 2]}]
    )
    assert matched_center_errors(detections, regions) == pytest.approx([0.5, 5.0, None])
    bad = [Detection("chair", "red bbox", (math.nan, 0.0, 1.0))]
    assert matched_center_errors(bad, parse_gt_centers([{"ref": "red bbox", "center": [0, 0, 1]}])) == [None]


def test_parse_gt_centers_forms_and_errors():
    assert parse_gt_centers(None) == []
    assert parse_gt_centers({"ref": ["a"], "center": [[1, 2, 3]]}) == [("a", (1.0, 2.0, 3.0))]
    for bad in ([{"ref": "a", "center": [1, 2]}], [{"ref": "a"}], [("a", [1, 2, 3])], "a", 3,
                {"ref": ["a"], "center": []}, [{"ref": "a", "center": ["x", 2, 3]}]):
        with pytest.raises(ValueError):
            parse_gt_centers(bad)


def test_center_error_summary():
    summary = center_error_summary([0.05, 0.2, 0.4, 1.0, None])
    assert summary == pytest.approx(
        {"center_matched": 4, "center_missed": 1, "center_match_rate": 0.8, "center_error_mean": 0.4125,
         "center_error_median": 0.3, "center_within_0_1": 0.25, "center_within_0_25": 0.5, "center_within_0_5": 0.75}
    )
    empty = center_error_summary([])
    assert empty["center_matched"] == 0 and empty["center_error_mean"] is None and empty["center_within_0_1"] is None


def test_aggregate_mixed_records():
    records = [
        {"answer_type": "numeric", "pred": 1.1, "gt": 1.0, "path": "dtr", "center_errors": [0.05, None]},
        {"answer_type": "numeric", "pred": 3.0, "gt": 1.0, "path": "lor"},
        {"answer_type": "numeric", "pred": None, "gt": 2.0, "path": None},
        {"answer_type": "choice", "pred": "b", "gt": "B", "category": "left_right", "path": "lor"},
        {"answer_type": "yesno", "pred": None, "gt": "yes", "category": "above_below", "path": "lor"},
        {"answer_type": "yesno", "pred": "yes", "gt": "Yes", "category": "above_below", "path": "dtr"},
        {"answer_type": "direction", "pred": 12, "gt": 1, "path": "dtr"},
        {"answer_type": "direction", "pred": 3, "gt": 3, "path": "dtr"},
    ]
    figures = aggregate(records)
    assert figures["count"] == 8
    assert figures["numeric_count"] == 3 and figures["numeric_unparsed"] == 1
    assert figures["numeric_success"] == pytest.approx(1 / 3)
    assert figures["numeric_abs_rel_error"] == pytest.approx((0.1 + 2.0) / 2)  # unparsed excluded
    assert figures["numeric_delta_2"] == pytest.approx(1 / 3)
    assert figures["numeric_delta_1_5"] == pytest.approx(1 / 3)
    assert figures["numeric_mra"] == pytest.approx(0.9 / 3)
    assert figures["qualitative_count"] == 3 and figures["qualitative_unparsed"] == 1
    assert figures["qualitative_accuracy"] == pytest.approx(2 / 3)
    assert figures["qualitative_accuracy_by_category"] == {"above_below": 0.5, "left_right": 1.0}
    assert figures["direction_success"] == 1.0 and figures["direction_exact"] == 0.5
    assert figures["center_matched"] == 1 and figures["center_missed"] == 1
    assert figures["path_counts"] == {"dtr": 4, "lor": 3, "none": 1}


def test_aggregate_reports_none_for_absent_kinds():
    figures = aggregate([{"answer_type": "choice", "pred": "A", "gt": "A"}])
    assert figures["qualitative_accuracy"] == 1.0 and figures["qualitative_accuracy_by_category"] is None
    for key in ("numeric_success", "numeric_abs_rel_error", "numeric_mra", "direction_success", "center_error_mean",
                "center_match_rate", "path_counts"):
        assert figures[key] is None, key
    assert figures["numeric_count"] == 0 and figures["direction_count"] == 0


def test_aggregate_all_unparsed_numeric_has_no_abs_rel_error():
    figures = aggregate([{"answer_type": "numeric", "pred": None, "gt": 1.0}])
    assert figures["numeric_success"] == 0.0 and figures["numeric_abs_rel_error"] is None


def test_aggregate_of_nothing():
    figures = aggregate([])
    assert figures["count"] == 0 and figures["numeric_success"] is None and figures["qualitative_accuracy"] is None


def test_aggregate_rejects_unknown_answer_type():
    with pytest.raises(ValueError, match="record 0"):
        aggregate([{"answer_type": "essay", "pred": "x", "gt": "y"}])
