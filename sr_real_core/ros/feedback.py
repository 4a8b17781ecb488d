"""Operator labels: the text on the node's `~/feedback` topic (std_msgs/String, JSON).

    {"id": "q7", "answer": "1.2 m"}         the correct answer to the query whose id was "q7"
    {"id": "q7", "verdict": "correct"}      the model's answer was right ("wrong": it was not, answer unknown)
    {"id": "q7", "verdict": "wrong", "answer": "left"}   both: wrong, and this is the right one

Only queries asked with an `id` can be labelled. The node accepts feedback for its most recent answered ids
(`RECENT_IDS`) and hands it to the recorder (`ros.recorder`); `data.labels` later turns labelled queries into
training records. Parsing never raises anything but FeedbackError, whose text says what is wrong.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass

from sr_real_core.inputs import load_untrusted_json

VERDICTS = ("correct", "wrong")
MAX_FEEDBACK_CHARS = 4096  # an operator's answer is a few words; anything longer is refused
RECENT_IDS = 1024  # answered query ids the node remembers for feedback


class FeedbackError(ValueError):
    """Feedback that cannot be used; the text says why."""


@dataclass(frozen=True)
class Feedback:
    id: str
    answer: str | None = None
    verdict: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def parse_feedback(text: str) -> Feedback:
    """A Feedback from the `~/feedback` text (see the module docstring); FeedbackError if malformed."""
    if len(text) > MAX_FEEDBACK_CHARS:
        raise FeedbackError(f"feedback of {len(text)} characters; at most {MAX_FEEDBACK_CHARS}")
    try:
        record = load_untrusted_json(text)  # bounded nesting, finite numbers: a peer's text
    except ValueError as error:
        raise FeedbackError(f"malformed JSON feedback: {getattr(error, 'msg', error)}") from None
    if not isinstance(record, dict):
        raise FeedbackError("feedback: expected a JSON object {id, answer} or {id, verdict}")
    unknown = sorted(set(record) - {"id", "answer", "verdict"})
    if unknown:
        raise FeedbackError(f"unknown feedback field(s) {', '.join(unknown)}; known: id, answer, verdict")
    query_id, answer, verdict = record.get("id"), record.get("answer"), record.get("verdict")
    if not isinstance(query_id, str) or not query_id:
        raise FeedbackError("id: expected the non-empty id of an answered query")
    if answer is not None and (not isinstance(answer, str) or not answer.strip()):
        raise FeedbackError("answer: expected a non-empty string")
    if verdict is not None and verdict not in VERDICTS:
        raise FeedbackError(f"verdict: {verdict!r} is not one of {', '.join(VERDICTS)}")
    if answer is None and verdict is None:
        raise FeedbackError("feedback needs an answer or a verdict")
    if verdict == "correct" and answer is not None:
        raise FeedbackError("give either verdict 'correct' or the correct answer, not both")
    return Feedback(query_id, None if answer is None else answer.strip(), verdict)


def confirmed_answer(feedback: dict | None, model_answer: str | None) -> str | None:
    """The answer an operator confirmed for a query: theirs, or the model's when they said it was correct;
    None when there is no feedback or only "wrong"."""
    if not feedback:
        return None
    if feedback.get("answer"):
        return feedback["answer"]
    return model_answer if feedback.get("verdict") == "correct" else None


class RecentIds:
    """The ids of the most recently answered queries (bounded), to refuse feedback for unknown ones."""

    def __init__(self, size: int = RECENT_IDS):
        self.size, self._ids = size, OrderedDict()

    def add(self, query_id: str | None) -> None:
        if query_id is None:
            return
        self._ids[query_id] = None
        self._ids.move_to_end(query_id)
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)

    def __contains__(self, query_id: str) -> bool:
        return query_id in self._ids
