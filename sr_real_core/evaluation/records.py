"""Loading the evaluation's inputs: QA records and predictions, validated, with errors that name the line.

QA records (JSON Lines; paths relative to the file): required ``id`` (unique), ``question``, ``answer_type``
(numeric | choice | yesno | direction) and ``solution`` (metres, or a length with a unit such as "45 cm",
for numeric; a letter for choice; "yes"/"no" or a bool for yesno; an hour 1..12 for direction). Optional:
``category``, ``answer``, ``image``, ``depth``, ``depth_unit``, ``intrinsics``, ``objects``, ``regions``
(``{ref, object_index, bbox_2d}``), ``gt_centers`` (``{ref, center}``), ``options`` (choice texts in letter
order) and anything else, kept untouched in ``QARecord.raw``.

Predictions (JSON Lines): ``{"id": ..., "completion": "..."}``; the completion may also be a list of chat
messages (``rewards.completion_text`` reads it). Extra keys (``path``, ``latency_s``) are kept. A duplicate
id is an error naming every duplicated id and its lines: which of two answers to score is not ours to guess.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_real_core.answers import canonical_solution
from sr_real_core.metrics import GroundTruthRegion, parse_gt_centers
from sr_real_core.query import ANSWER_TYPES
from sr_real_core.rewards import completion_text

Solution = float | int | str
_EXPECTED = {"numeric": "a positive length (metres, or with a unit such as '45 cm')", "choice": "an option letter",
             "yesno": "yes or no", "direction": "a clock hour 1..12"}


class EvaluationInputError(ValueError):
    """A QA or predictions file that cannot be evaluated as it is; the message names file, line and field."""


@dataclass(frozen=True)
class QARecord:
    """One question with its canonical solution; ``raw`` is the whole JSON line."""

    id: str
    question: str
    answer_type: str
    solution: Solution
    category: str | None
    raw: Mapping[str, Any]
    base_dir: Path
    gt_centers: list[GroundTruthRegion] = field(default_factory=list)  # parsed ``gt_centers``

    def resolve(self, key: str) -> Path | None:
        """The path stored under ``key`` (e.g. "image", "depth"), resolved against the QA file's folder."""
        value = self.raw.get(key)
        return self.base_dir / value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Prediction:
    id: str
    completion: str
    extra: Mapping[str, Any]  # any other key of the line (path, latency_s, ...)


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; EvaluationInputError for a line that is not an object."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationInputError(f"{path}: file not found")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise EvaluationInputError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(value, dict):
                raise EvaluationInputError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
            yield number, value


def load_qa(path: str | Path) -> list[QARecord]:
    """Every QA record of a file, validated; EvaluationInputError names the line and field of a fault."""
    path = Path(path)
    records, lines_by_id = [], defaultdict(list)
    for number, raw in iter_json_lines(path):
        try:
            record = _qa_record(raw, path.parent)
        except ValueError as error:
            raise EvaluationInputError(f"{path}:{number}: {error}") from None
        lines_by_id[record.id].append(number)
        records.append(record)
    _refuse_duplicates(path, lines_by_id)
    if not records:
        raise EvaluationInputError(f"{path}: no QA records")
    return records


def load_predictions(path: str | Path) -> dict[str, Prediction]:
    """Predictions by id; EvaluationInputError for a malformed line or duplicated ids (all of them named)."""
    path = Path(path)
    predictions, lines_by_id = {}, defaultdict(list)
    for number, raw in iter_json_lines(path):
        identifier = _identifier(raw.get("id"), f"{path}:{number}")
        completion = completion_text(raw.get("completion"))
        if completion is None:
            raise EvaluationInputError(
                f"{path}:{number}: 'completion' must be a string or chat messages, got {raw.get('completion')!r}"
            )
        lines_by_id[identifier].append(number)
        extra = {key: value for key, value in raw.items() if key not in ("id", "completion")}
        predictions[identifier] = Prediction(identifier, completion, extra)
    _refuse_duplicates(path, lines_by_id)
    return predictions


def _refuse_duplicates(path: Path, lines_by_id: Mapping[str, list[int]]) -> None:
    duplicated = {identifier: lines for identifier, lines in lines_by_id.items() if len(lines) > 1}
    if duplicated:
        listing = "; ".join(f"{identifier!r} on lines {', '.join(map(str, lines))}"
                            for identifier, lines in duplicated.items())
        raise EvaluationInputError(f"{path}: {len(duplicated)} duplicated id(s): {listing}")


def _identifier(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise EvaluationInputError(f"{where}: 'id' must be a non-empty string or an integer, got {value!r}")
    return str(value)


def _qa_record(raw: Mapping[str, Any], base_dir: Path) -> QARecord:
    identifier = _identifier(raw.get("id"), "id")
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"record {identifier!r}: 'question' must be a non-empty string")
    answer_type = raw.get("answer_type")
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"record {identifier!r}: 'answer_type' must be one of {ANSWER_TYPES}, got {answer_type!r}")
    solution = canonical_solution(raw.get("solution"), answer_type)
    if solution is None or (answer_type == "numeric" and solution <= 0):  # relative errors need a length > 0
        raise ValueError(f"record {identifier!r}: 'solution' {raw.get('solution')!r} is not {_EXPECTED[answer_type]}")
    try:
        gt_centers = parse_gt_centers(raw.get("gt_centers"))
    except ValueError as error:
        raise ValueError(f"record {identifier!r}: 'gt_centers': {error}") from None
    category = None if raw.get("category") is None else str(raw["category"])
    return QARecord(identifier, question, answer_type, solution, category, raw, base_dir, gt_centers)


