"""Benchmark metrics (method.md, "How benchmarks score").

Numeric metrics take predictions and ground truths in metres, as scalars or array-likes (numpy
broadcasting); a scalar input gives a Python scalar back, an array input an array. An unparsed prediction
is None or NaN and counts as a failure. Ground truths must be positive and finite (ValueError otherwise:
relative errors are undefined for them, and such a sample is a dataset bug).

- SpatialRGPT-Bench quantitative success: ``0.75 * gt <= pred <= 1.25 * gt`` (``spatialrgpt_success``),
  and the mean absolute relative error ``|pred - gt| / gt`` (``abs_rel_error``).
- Q-Spatial: success iff ``max(pred / gt, gt / pred) < threshold``, threshold 2 (also reported at 1.5);
  a prediction <= 0 fails (``delta_success``).
- MRA (SPAR-Bench, VSI-Bench): mean over theta in {0.50, 0.55, ..., 0.95} of ``[|pred - gt| / gt <= 1 -
  theta]`` (``mean_relative_accuracy``).
- Direction: success iff the predicted clock hour is within one hour of the truth, circularly (12 and 1 are
  one hour apart) (``clock_success``).
- Centre error: Euclidean distance from each ground-truth centre to the first detection naming its region
  (``matched_center_errors``; the same matching as the detection reward) and its summary.

Inclusive boundaries (the SpatialRGPT band, MRA) allow a relative float error of 1e-9, so that an exact
10% error, computed as 0.10000000000000009, still passes ``<= 0.10``; the strict Q-Spatial boundary does not.

``aggregate`` turns per-sample records into a flat dict of figures. Unparsed numeric predictions count as
failures in every success rate and MRA, but are excluded from the mean abs-rel error (which would
otherwise be undefined); ``numeric_unparsed`` says how many were excluded. A figure is None when no sample
of its kind exists. To compare the paths of the automatic mode, aggregate the records of each path apart.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sr_real_core.grammar import Detection, find_detection, normalise_ref
from sr_real_core.query import ANSWER_TYPES

GroundTruthRegion = tuple[object, tuple[float, float, float]]

# 1 - theta for theta in {0.50, ..., 0.95}, built from integers to avoid an accumulated float error.
MRA_TOLERANCES = np.arange(1, 11) * 5 / 100
_BOUNDARY_SLACK = 1e-9
CENTER_ERROR_THRESHOLDS_M: tuple[float, ...] = (0.1, 0.25, 0.5)


# ----------------------------------------------------------------------------------------- numeric answers


def spatialrgpt_success(pred: Any, gt: Any, low: float = 0.75, high: float = 1.25) -> Any:
    """SpatialRGPT-Bench quantitative success: low * gt <= pred <= high * gt."""
    pred_m, gt_m = _predictions_and_truths(pred, gt)
    slack = _BOUNDARY_SLACK * gt_m
    success = (pred_m >= low * gt_m - slack) & (pred_m <= high * gt_m + slack)
    return _unwrap(success)


def abs_rel_error(pred: Any, gt: Any) -> Any:
    """|pred - gt| / gt; NaN for an unparsed prediction."""
    pred_m, gt_m = _predictions_and_truths(pred, gt)
    return _unwrap(np.abs(pred_m - gt_m) / gt_m)


def delta_success(pred: Any, gt: Any, threshold: float = 2.0) -> Any:
    """Q-Spatial success: max(pred / gt, gt / pred) < threshold; non-positive predictions fail."""
    pred_m, gt_m = _predictions_and_truths(pred, gt)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.maximum(pred_m / gt_m, gt_m / pred_m)
    return _unwrap((pred_m > 0) & (ratio < threshold))


def mean_relative_accuracy(pred: Any, gt: Any) -> Any:
    """MRA: the share of theta in {0.50, ..., 0.95} with |pred - gt| / gt <= 1 - theta."""
    pred_m, gt_m = _predictions_and_truths(pred, gt)
    relative = np.abs(pred_m - gt_m) / gt_m
    passed = relative[..., np.newaxis] <= MRA_TOLERANCES + _BOUNDARY_SLACK
    return _unwrap(passed.mean(axis=-1))


def _predictions_and_truths(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    pred_m = np.asarray(pred, dtype=float)  # None becomes NaN, which fails every comparison
    gt_m = np.asarray(gt, dtype=float)
    if not np.all(np.isfinite(gt_m) & (gt_m > 0)):
        raise ValueError(f"ground truths must be positive and finite, got {gt!r}")
    return pred_m, gt_m


def _unwrap(result: np.ndarray) -> Any:
    return result.item() if result.ndim == 0 else result


# ------------------------------------------------------------------------------------------- clock hours


def clock_distance(hour_a: int, hour_b: int) -> int:
    """Hours between two clock hours around the dial: clock_distance(12, 1) == 1, (3, 9) == 6."""
    difference = abs(hour_a - hour_b) % 12
    return min(difference, 12 - difference)


def clock_success(pred: int | None, gt: int, tolerance_hours: int = 1) -> bool:
    """SpatialRGPT-Bench direction success: within ``tolerance_hours`` of the truth; None fails."""
    if not 1 <= gt <= 12:
        raise ValueError(f"ground-truth clock hour must be 1..12, got {gt!r}")
    return pred is not None and clock_distance(pred, gt) <= tolerance_hours


# ---------------------------------------------------------------------------------------- centre errors


def parse_gt_centers(value: Any) -> list[GroundTruthRegion]:
    """Ground-truth regions ``[{"ref": ..., "center": [x, y, z]}, ...]`` (also the dict of lists that
    ``datasets`` returns for such a column) as (ref, centre) pairs; None is no regions. Raises ValueError."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        refs, centers = value.get("ref"), value.get("center")
        if refs is None or centers is None or len(refs) != len(centers):
            raise ValueError("a dict of lists needs 'ref' and 'center' lists of equal length")
        value = [{"ref": ref, "center": center} for ref, center in zip(refs, centers)]
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"expected a list of {{'ref', 'center'}} mappings, got {type(value).__name__}")
    return [_parse_gt_region(position, region) for position, region in enumerate(value)]


def _parse_gt_region(position: int, region: Any) -> GroundTruthRegion:
    if not isinstance(region, Mapping) or "ref" not in region or "center" not in region:
        raise ValueError(f"entry {position} must be a mapping with 'ref' and 'center', got {region!r}")
    if not normalise_ref(region["ref"]):
        raise ValueError(f"entry {position} has an empty ref {region['ref']!r}")
    try:
        center = tuple(float(value) for value in region["center"])
    except (TypeError, ValueError):
        center = ()
    if len(center) != 3 or not all(math.isfinite(value) for value in center):
        raise ValueError(f"entry {position} centre must be three finite numbers, got {region['center']!r}")
    return region["ref"], center


def matched_center_errors(
    detections: Sequence[Detection], regions: Sequence[GroundTruthRegion]
) -> list[float | None]:
    """Per ground-truth region, the distance in metres to the first detection naming its reference; None
    when no detection names it or the named one has a non-finite centre (both are misses)."""
    errors: list[float | None] = []
    for ref, center in regions:
        detection = find_detection(detections, ref)
        distance = math.dist(detection.center, center) if detection is not None else math.nan
        errors.append(distance if math.isfinite(distance) else None)
    return errors


def center_error_summary(errors: Iterable[float | None]) -> dict[str, Any]:
    """Count, misses, match rate, mean, median and share within 0.1/0.25/0.5 m of the matched errors."""
    all_errors = list(errors)
    matched = np.array([error for error in all_errors if error is not None], dtype=float)
    summary: dict[str, Any] = {
        "center_matched": int(matched.size),
        "center_missed": len(all_errors) - int(matched.size),
        "center_match_rate": matched.size / len(all_errors) if all_errors else None,
        "center_error_mean": float(matched.mean()) if matched.size else None,
        "center_error_median": float(np.median(matched)) if matched.size else None,
    }
    for threshold in CENTER_ERROR_THRESHOLDS_M:
        key = f"center_within_{threshold:g}".replace(".", "_")
        summary[key] = float((matched <= threshold).mean()) if matched.size else None
    return summary


# -------------------------------------------------------------------------------------------- aggregate


def aggregate(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Benchmark figures from per-sample records.

    A record has ``answer_type`` (numeric | choice | yesno | direction), ``pred`` (the parsed answer:
    metres, letter, "yes"/"no", hour; None when unparsed) and ``gt``; optionally ``category`` (the predicate,
    for per-predicate qualitative accuracy), ``path`` (the path the completion took) and ``center_errors``
    (``matched_center_errors`` of the sample).
    """
    records = list(records)
    by_type: dict[str, list[Mapping[str, Any]]] = {answer_type: [] for answer_type in ANSWER_TYPES}
    for index, record in enumerate(records):
        if record.get("answer_type") not in by_type:
            raise ValueError(f"record {index}: unknown answer_type {record.get('answer_type')!r}")
        by_type[record["answer_type"]].append(record)
    figures: dict[str, Any] = {"count": len(records)}
    figures |= _numeric_figures(by_type["numeric"])
    figures |= _qualitative_figures(by_type["choice"] + by_type["yesno"])
    figures |= _direction_figures(by_type["direction"])
    figures |= _center_figures(records)
    figures["path_counts"] = _path_counts(records)
    return figures


def _numeric_figures(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    if not records:
        keys = ("unparsed", "success", "abs_rel_error", "delta_2", "delta_1_5", "mra")
        return {"numeric_count": 0} | dict.fromkeys(f"numeric_{key}" for key in keys)
    pred = np.array([math.nan if record["pred"] is None else record["pred"] for record in records], dtype=float)
    gt = np.array([record["gt"] for record in records], dtype=float)
    parsed = np.isfinite(pred)
    relative = abs_rel_error(pred, gt)
    return {
        "numeric_count": len(records),
        "numeric_unparsed": int((~parsed).sum()),
        "numeric_success": float(np.mean(spatialrgpt_success(pred, gt))),
        "numeric_abs_rel_error": float(np.mean(relative[parsed])) if parsed.any() else None,
        "numeric_delta_2": float(np.mean(delta_success(pred, gt, 2.0))),
        "numeric_delta_1_5": float(np.mean(delta_success(pred, gt, 1.5))),
        "numeric_mra": float(np.mean(mean_relative_accuracy(pred, gt))),
    }


def _qualitative_figures(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    if not records:
        keys = ("unparsed", "accuracy", "accuracy_by_category")
        return {"qualitative_count": 0} | dict.fromkeys(f"qualitative_{key}" for key in keys)
    correct = [_same_label(record["pred"], record["gt"]) for record in records]
    by_category: dict[str, list[bool]] = {}
    for record, is_correct in zip(records, correct):
        if record.get("category") is not None:
            by_category.setdefault(str(record["category"]), []).append(is_correct)
    return {
        "qualitative_count": len(records),
        "qualitative_unparsed": sum(record["pred"] is None for record in records),
        "qualitative_accuracy": float(np.mean(correct)),
        "qualitative_accuracy_by_category": {
            category: float(np.mean(values)) for category, values in sorted(by_category.items())
        }
        or None,
    }


def _same_label(pred: Any, gt: Any) -> bool:
    """Letters and yes/no compare case-insensitively, ignoring surrounding white space."""
    return pred is not None and str(pred).strip().casefold() == str(gt).strip().casefold()


def _direction_figures(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    if not records:
        keys = ("unparsed", "success", "exact")
        return {"direction_count": 0} | dict.fromkeys(f"direction_{key}" for key in keys)
    return {
        "direction_count": len(records),
        "direction_unparsed": sum(record["pred"] is None for record in records),
        "direction_success": float(np.mean([clock_success(r["pred"], int(r["gt"])) for r in records])),
        "direction_exact": float(np.mean([r["pred"] is not None and r["pred"] == int(r["gt"]) for r in records])),
    }


def _center_figures(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    errors = [error for record in records for error in (record.get("center_errors") or [])]
    return center_error_summary(errors)


def _path_counts(records: list[Mapping[str, Any]]) -> dict[str, int] | None:
    paths = [str(record["path"]) if record["path"] is not None else "none" for record in records if "path" in record]
    return dict(sorted(Counter(paths).items())) or None
