"""Optional rewriting of the templated chains of thought by an OpenAI-compatible chat endpoint.

Off by default (``sr-real data qa --rewrite-endpoint URL --rewrite-model NAME``). Each completion is sent
with its question and true answer to ``POST {endpoint}/chat/completions``; the reply replaces the
template only if it is still a well-formed completion of the same path, its answer still parses to the
truth, and (DTR) its detections are unchanged. Anything else -- a malformed reply, a changed answer, an
HTTP or network error -- keeps the template and is counted in ``stats``. Plain ``urllib``: no client
library. The API key, if the endpoint needs one, is read from the environment variable ``api_key_env``.
"""

from __future__ import annotations

import json
import math
import os
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sr_real_core.answers import parse_answer
from sr_real_core.grammar import parse_completion

SYSTEM_PROMPT = (
    "You rewrite chains of thought for training a spatial-reasoning vision-language model. Keep every fact, "
    "number, unit and the final conclusion exactly; vary the wording and sentence structure so it reads like "
    "a careful person thinking aloud (60-150 words). Reply with the completion only, in exactly the same tag "
    "format as the input: keep any <detect> block unchanged character for character, rewrite only the text "
    "inside <think>, and keep the <answer> block unchanged."
)


@dataclass
class RewriteConfig:
    endpoint: str  # base URL of the API, e.g. http://127.0.0.1:8000/v1
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    temperature: float = 0.7


class CoTRewriter:
    """Rewrites the completions of QA records through the endpoint; ``stats`` counts the outcomes."""

    def __init__(self, config: RewriteConfig):
        self.config = config
        self.stats: Counter = Counter()

    def rewrite_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record with each completion replaced by an accepted rewrite (``rewritten`` lists which)."""
        completions = dict(record["completions"])
        rewritten = []
        for path, completion in completions.items():
            candidate = self._ask(record, completion)
            if candidate is not None and accepts(record, path, completion, candidate):
                completions[path] = candidate
                rewritten.append(path)
                self.stats["kept"] += 1
            elif candidate is not None:
                self.stats["rejected"] += 1
        return record | {"completions": completions, "rewritten": rewritten}

    def _ask(self, record: dict[str, Any], completion: str) -> str | None:
        user = f"Question: {record['question']}\nTrue answer: {record['answer']}\n\nCompletion to rewrite:\n{completion}"
        body = {
            "model": self.config.model,
            "temperature": self.config.temperature,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}],
        }
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            self.config.endpoint.rstrip("/") + "/chat/completions", json.dumps(body).encode("utf-8"), headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                reply = json.loads(response.read().decode("utf-8"))
            text = reply["choices"][0]["message"]["content"]
        except (urllib.error.URLError, TimeoutError, ValueError, KeyError, IndexError, TypeError) as error:
            self.stats[f"error: {type(error).__name__}"] += 1
            return None
        return _strip_fence(text) if isinstance(text, str) else None


def _strip_fence(text: str) -> str:
    """Chat models often wrap a reply in a Markdown code fence; the completion is what is inside."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped.split("\n", 1)[-1].rsplit("```", 1)[0]
    return stripped.strip()


def accepts(record: dict[str, Any], path: str, original: str, candidate: str) -> bool:
    """Whether a rewritten completion may replace the original (see the module docstring)."""
    parsed = parse_completion(candidate)
    if not parsed.well_formed or parsed.path != path or not parsed.think:
        return False
    answer = parse_answer(parsed.answer, record["answer_type"])
    truth = record["solution"]
    if record["answer_type"] == "numeric":
        if answer is None or not math.isclose(answer, truth, rel_tol=1e-6, abs_tol=1e-9):
            return False
    elif answer != truth:
        return False
    return path == "lor" or parsed.detections == parse_completion(original).detections
