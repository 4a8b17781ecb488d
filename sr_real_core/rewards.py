"""TRL-compatible reward functions for SR-REAL's GRPO stage.

Every reward function has the signature TRL's ``GRPOTrainer`` calls, ``f(completions, **columns) ->
list[float]``: ``completions`` are strings or conversational messages (``[{"role": "assistant", "content":
str | [{"type": "text", "text": str}, ...]}]``), the dataset columns arrive as lists aligned with them, and
anything else (``prompts``, ``completion_ids``, ``trainer_state``, ...) is ignored, except that
``sr_real_reward`` reports its components through TRL's ``log_metric`` when given (see below).

Dataset columns
---------------
- ``path``: "lor" | "dtr" | "auto" (missing column or None: "auto"). For "auto" the completion's own parsed
  path decides the format and the weights (an unrecognisable completion is scored with LOR weights; it
  earns 0 either way).
- ``solution``: metres for ``numeric`` (a number, a numeric string, or a string with a unit such as "45 cm"),
  a letter for ``choice``, "yes"/"no" (or a bool) for ``yesno``, an hour 1..12 for ``direction``.
- ``answer_type``: "numeric" | "choice" | "yesno" | "direction".
- ``gt_centers``: ``[{"ref": "red bbox", "center": [x, y, z]}, ...]`` in metres, camera frame (or None).

Components (each in [0, 1])
---------------------------
- format: 1 iff the completion is well formed (``grammar.parse_completion``) in the requested path's form;
  a "lor" sample answered in DTR form scores 0 and vice versa; "auto" accepts either.
- accuracy: 0 unless format is 1. choice / yesno: exact match of the parsed answer (``answers.parse_choice``
  over the letters A-Z, as the options are not a column; ``answers.parse_yes_no``). numeric:
  ``exp(-2 * |pred - gt| / (|gt| + 0.01))`` on metres (5% error -> 0.905, 25% -> 0.607, 50% -> 0.368).
  direction: 1 for the exact hour, ``direction_near_credit`` (default 0.5) for one hour off around the
  dial (the benchmark counts one hour off as a success; the reward still prefers the exact hour), else 0.
- detection: only for a completion scored as DTR that is in DTR form; not gated by format (well-formed
  boxes of a completion with a format fault still say where objects are). Per ground-truth region, the first
  predicted box whose name or ref contains the region's reference (``grammar.find_detection``: case,
  punctuation and white space normalised, whole words, so "frame 1" does not match "frame 12"); d = centre
  distance in metres; score 1.0 if d < 0.1, 0.8 < 0.2, 0.6 < 0.3, 0.4 < 0.4, 0.2 < 0.6, 0.1 < 1.0, else 0
  (a miss or a non-finite centre: 0). The sum is divided by:
    * ``"matched"`` (default): max(#ground-truth regions, #predicted boxes), so a missed region and a
      spurious extra box both cost;
    * ``"reference"``: #predicted boxes, as the reference does (a missed region costs nothing; no box: 0);
      clipped at 1 for boxes that several regions match.
  A sample without ground-truth centres has no detection score: ``detection_reward`` gives 0 and the total
  drops the detection term, rescaling the other DTR weights to sum to 1.
- total (``sr_real_reward``): LOR = 0.8 accuracy + 0.2 format; DTR = 0.8 accuracy + 0.1 format +
  0.1 detection. Weights are configurable (``RewardWeights``, each path's weights summing to 1).

Train with ``sr_real_reward`` alone (or ``make_sr_real_reward(...)``) as TRL's ``reward_funcs`` (weight 1,
logged by TRL as ``rewards/sr_real_reward``): the weights depend on the path a completion is scored on and
the DTR weights are rescaled without ground-truth centres, which TRL's constant per-function
``reward_weights`` cannot express. The component functions are for evaluation and analysis. Through TRL's
``log_metric`` the total also logs, per step, the mean components (``reward/format``, ``reward/accuracy``,
``reward/detection``), the share of completions taking each path (``path/lor``, ``path/dtr``,
``path/none``), ``format_failures`` and, with a ``family`` column, ``accuracy/<family>``.

Errors: malformed completions never raise (they score 0). A bad dataset value (unknown path or
answer_type, unparseable solution, malformed gt_centers) raises ValueError naming the sample index and the
column, because it is a dataset bug that would otherwise silently train on zeros.
"""

from __future__ import annotations

import math
import string
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sr_real_core.answers import canonical_solution, parse_answer
from sr_real_core.grammar import ParsedCompletion, parse_completion
from sr_real_core.metrics import GroundTruthRegion, clock_distance, matched_center_errors, parse_gt_centers
from sr_real_core.query import ANSWER_TYPES, PATHS, PROMPT_PATHS

RewardFunction = Callable[..., list[float]]

# (upper distance bound in metres, exclusive; score)
DETECTION_BINS: tuple[tuple[float, float], ...] = (
    (0.1, 1.0), (0.2, 0.8), (0.3, 0.6), (0.4, 0.4), (0.6, 0.2), (1.0, 0.1),
)
DETECTION_NORMS: tuple[str, ...] = ("matched", "reference")
_CHOICE_LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the total reward per path; each path's weights must be non-negative and sum to 1."""

    lor_accuracy: float = 0.8
    lor_format: float = 0.2
    dtr_accuracy: float = 0.8
    dtr_format: float = 0.1
    dtr_detection: float = 0.1

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"weight {name} must be a non-negative finite number, got {value!r}")
        path_totals = {
            "lor": self.lor_accuracy + self.lor_format,
            "dtr": self.dtr_accuracy + self.dtr_format + self.dtr_detection,
        }
        for path, total in path_totals.items():
            if abs(total - 1.0) > 1e-9:
                raise ValueError(f"{path} weights must sum to 1, got {total}")


DEFAULT_WEIGHTS = RewardWeights()


@dataclass(frozen=True)
class RewardConfig:
    weights: RewardWeights = DEFAULT_WEIGHTS
    detection_norm: str = "matched"
    direction_near_credit: float = 0.5

    def __post_init__(self) -> None:
        if self.detection_norm not in DETECTION_NORMS:
            raise ValueError(f"detection_norm must be one of {DETECTION_NORMS}, got {self.detection_norm!r}")
        if not 0.0 <= self.direction_near_credit <= 1.0:
            raise ValueError(f"direction_near_credit must lie in [0, 1], got {self.direction_near_credit!r}")


DEFAULT_CONFIG = RewardConfig()


@dataclass(frozen=True)
class RewardBreakdown:
    requested_path: str  # the sample's path column
    completion_path: str | None  # the path the completion took, None if unrecognisable
    scored_path: str  # whose weights the total uses
    format: float
    accuracy: float
    detection: float | None  # None: not applicable (LOR, or no ground-truth centres)
    total: float
    errors: tuple[str, ...]  # the grammar faults of the completion


# ---------------------------------------------------------------------------------- completion handling


def completion_text(completion: Any) -> str | None:
    """The text of a completion: a string, or the concatenated text of conversational messages (string
    content or lists of ``{"type": "text", "text": ...}`` parts). None for anything else."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _message_text(completion)
    if isinstance(completion, Sequence):
        texts = [_message_text(message) for message in completion]
        return None if any(text is None for text in texts) else "".join(texts)
    return None


def _message_text(message: Any) -> str | None:
    if not isinstance(message, Mapping):
        return None
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(part["text"] for part in content if _is_text_part(part))
    return None


def _is_text_part(part: Any) -> bool:
    return isinstance(part, Mapping) and part.get("type", "text") == "text" and isinstance(part.get("text"), str)


# ------------------------------------------------------------------------------------------- components


def _requested_path(value: Any, index: int) -> str:
    path = "auto" if value is None else value
    if path not in PROMPT_PATHS:
        raise ValueError(f"sample {index}: column 'path' must be one of {PROMPT_PATHS}, got {value!r}")
    return path


def _format_score(parsed: ParsedCompletion, requested_path: str) -> float:
    path_accepted = requested_path == "auto" or parsed.path == requested_path
    return 1.0 if parsed.well_formed and path_accepted else 0.0


def _scored_path(parsed: ParsedCompletion, requested_path: str) -> str:
    if requested_path != "auto":
        return requested_path
    return parsed.path or "lor"


def _ground_truth(solution: Any, answer_type: Any, index: int) -> float | str | int:
    """The canonical ground truth of one sample; ValueError naming the sample for a dataset bug."""
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"sample {index}: column 'answer_type' must be one of {ANSWER_TYPES}, got {answer_type!r}")
    truth = canonical_solution(solution, answer_type)
    if truth is None:
        raise ValueError(f"sample {index}: column 'solution' = {solution!r} is not a valid {answer_type} answer")
    return truth


def _answer_score(answer: str | None, truth: float | str | int, answer_type: str, near_credit: float) -> float:
    predicted = parse_answer(answer, answer_type, _CHOICE_LETTERS) if answer is not None else None
    if predicted is None:
        return 0.0
    if answer_type == "numeric":
        return math.exp(-2.0 * abs(predicted - truth) / (abs(truth) + 0.01))
    if answer_type == "direction":
        hours_off = clock_distance(predicted, truth)
        return 1.0 if hours_off == 0 else near_credit if hours_off == 1 else 0.0
    return 1.0 if predicted == truth else 0.0


def _gt_regions(value: Any, index: int) -> list[GroundTruthRegion]:
    try:
        return parse_gt_centers(value)
    except ValueError as error:
        raise ValueError(f"sample {index}: column 'gt_centers': {error}") from error


def detection_bin_score(distance_m: float | None) -> float:
    """The discrete detection score of one centre distance (None or non-finite: 0)."""
    if distance_m is None or not math.isfinite(distance_m):
        return 0.0
    return next((score for bound, score in DETECTION_BINS if distance_m < bound), 0.0)


def _detection_score(
    parsed: ParsedCompletion, scored_path: str, regions: list[GroundTruthRegion], norm: str
) -> float | None:
    if scored_path != "dtr" or not regions:
        return None
    if parsed.path != "dtr":
        return 0.0
    total = sum(detection_bin_score(error) for error in matched_center_errors(parsed.detections, regions))
    predicted = len(parsed.detections)
    denominator = predicted if norm == "reference" else max(len(regions), predicted)
    return min(1.0, total / denominator) if denominator else 0.0


def _total(
    format_score: float, accuracy: float, detection: float | None, scored_path: str, weights: RewardWeights
) -> float:
    if scored_path == "lor":
        return weights.lor_accuracy * accuracy + weights.lor_format * format_score
    answer_part = weights.dtr_accuracy * accuracy + weights.dtr_format * format_score
    if detection is not None:
        return answer_part + weights.dtr_detection * detection
    kept = weights.dtr_accuracy + weights.dtr_format  # no ground-truth centres: rescale the other weights
    return answer_part / kept if kept else 0.0


def score_completion(
    completion: Any,
    *,
    solution: Any,
    answer_type: Any,
    path: Any = None,
    gt_centers: Any = None,
    config: RewardConfig = DEFAULT_CONFIG,
    index: int = 0,
) -> RewardBreakdown:
    """Every reward component of one completion; ``index`` names the sample in dataset errors."""
    requested = _requested_path(path, index)
    truth = _ground_truth(solution, answer_type, index)
    regions = _gt_regions(gt_centers, index)
    parsed = parse_completion(completion_text(completion))
    scored_path = _scored_path(parsed, requested)
    format_score = _format_score(parsed, requested)
    accuracy = _answer_score(parsed.answer, truth, answer_type, config.direction_near_credit) if format_score else 0.0
    detection = _detection_score(parsed, scored_path, regions, config.detection_norm)
    total = _total(format_score, accuracy, detection, scored_path, config.weights)
    return RewardBreakdown(
        requested, parsed.path, scored_path, format_score, accuracy, detection, min(1.0, max(0.0, total)),
        tuple(parsed.errors),
    )


def reward_breakdown(completion: Any, *, config: RewardConfig = DEFAULT_CONFIG, **sample: Any) -> dict[str, Any]:
    """Per-component rewards of one completion for logging; ``sample`` holds that sample's columns
    (``solution``, ``answer_type``, optionally ``path`` and ``gt_centers``; other keys are ignored)."""
    columns = {key: sample.get(key) for key in ("solution", "answer_type", "path", "gt_centers")}
    return asdict(score_completion(completion, config=config, **columns))


# ------------------------------------------------------------------------------ TRL reward functions


def _column(columns: Mapping[str, Any], name: str, count: int, required: bool) -> list[Any]:
    values = columns.get(name)
    if values is None:
        if required:
            raise ValueError(f"this reward needs the dataset column {name!r}")
        return [None] * count
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != count:
        raise ValueError(f"column {name!r} must be a list with one value per completion ({count})")
    return list(values)


def _parsed_samples(completions: Sequence[Any], paths: list[Any]) -> list[tuple[int, ParsedCompletion, str]]:
    """(index, parsed completion, requested path) per sample."""
    return [
        (index, parse_completion(completion_text(completion)), _requested_path(path, index))
        for index, (completion, path) in enumerate(zip(completions, paths))
    ]


def format_reward(completions: Sequence[Any], **columns: Any) -> list[float]:
    """1 per completion well formed in its sample's path form, else 0 (reads ``path``)."""
    paths = _column(columns, "path", len(completions), required=False)
    return [_format_score(parsed, requested) for _, parsed, requested in _parsed_samples(completions, paths)]


def make_accuracy_reward(*, direction_near_credit: float = DEFAULT_CONFIG.direction_near_credit) -> RewardFunction:
    """Answer accuracy as a TRL reward function named ``accuracy_reward``."""
    config = RewardConfig(direction_near_credit=direction_near_credit)

    def accuracy_reward(completions: Sequence[Any], **columns: Any) -> list[float]:
        """Answer accuracy per completion, 0 unless the format is right (reads ``path``, ``solution``,
        ``answer_type``)."""
        count = len(completions)
        paths = _column(columns, "path", count, required=False)
        solutions = _column(columns, "solution", count, required=True)
        answer_types = _column(columns, "answer_type", count, required=True)
        rewards = []
        for index, parsed, requested in _parsed_samples(completions, paths):
            truth = _ground_truth(solutions[index], answer_types[index], index)
            if _format_score(parsed, requested):
                rewards.append(_answer_score(parsed.answer, truth, answer_types[index], config.direction_near_credit))
            else:
                rewards.append(0.0)
        return rewards

    return accuracy_reward


def make_detection_reward(*, detection_norm: str = DEFAULT_CONFIG.detection_norm) -> RewardFunction:
    """The detection score as a TRL reward function named ``detection_reward``."""
    config = RewardConfig(detection_norm=detection_norm)

    def detection_reward(completions: Sequence[Any], **columns: Any) -> list[float]:
        """Detection score per completion; 0 where it does not apply (LOR, no ground-truth centres)
        (reads ``path``, ``gt_centers``)."""
        count = len(completions)
        paths = _column(columns, "path", count, required=False)
        centers = _column(columns, "gt_centers", count, required=False)
        rewards = []
        for index, parsed, requested in _parsed_samples(completions, paths):
            regions = _gt_regions(centers[index], index)
            score = _detection_score(parsed, _scored_path(parsed, requested), regions, config.detection_norm)
            rewards.append(score or 0.0)
        return rewards

    return detection_reward


def make_sr_real_reward(
    *,
    weights: RewardWeights = DEFAULT_WEIGHTS,
    detection_norm: str = DEFAULT_CONFIG.detection_norm,
    direction_near_credit: float = DEFAULT_CONFIG.direction_near_credit,
) -> RewardFunction:
    """The weighted total reward as a TRL reward function named ``sr_real_reward``."""
    config = RewardConfig(weights, detection_norm, direction_near_credit)

    def sr_real_reward(completions: Sequence[Any], **columns: Any) -> list[float]:
        """Weighted total reward per completion, in [0, 1] (reads ``path``, ``solution``, ``answer_type``,
        ``gt_centers``)."""
        count = len(completions)
        solutions = _column(columns, "solution", count, required=True)
        answer_types = _column(columns, "answer_type", count, required=True)
        paths = _column(columns, "path", count, required=False)
        centers = _column(columns, "gt_centers", count, required=False)
        scores = [
            score_completion(
                completion,
                solution=solutions[index],
                answer_type=answer_types[index],
                path=paths[index],
                gt_centers=centers[index],
                config=config,
                index=index,
            )
            for index, completion in enumerate(completions)
        ]
        if callable(columns.get("log_metric")):
            log_components(columns["log_metric"], scores, _column(columns, "family", count, required=False))
        return [score.total for score in scores]

    return sr_real_reward


def log_components(log_metric: Callable[[str, float], None], scores: Sequence[RewardBreakdown],
                   families: Sequence[str | None]) -> None:
    """Report the batch's mean components, path shares, format failures and accuracy per question family."""
    def mean(values):
        values = list(values)
        return sum(values) / len(values)

    log_metric("reward/format", mean(s.format for s in scores))
    log_metric("reward/accuracy", mean(s.accuracy for s in scores))
    detections = [s.detection for s in scores if s.detection is not None]
    if detections:
        log_metric("reward/detection", mean(detections))
    for taken in (*PATHS, None):
        log_metric(f"path/{taken or 'none'}", mean(s.completion_path == taken for s in scores))
    log_metric("format_failures", mean(s.format == 0.0 for s in scores))
    by_family: dict[str, list[float]] = defaultdict(list)
    for score, family in zip(scores, families):
        if family is not None:
            by_family[family].append(score.accuracy)
    for family, values in sorted(by_family.items()):
        log_metric(f"accuracy/{family}", mean(values))


accuracy_reward = make_accuracy_reward()
detection_reward = make_detection_reward()
sr_real_reward = make_sr_real_reward()
