"""Constrained greedy decoding: the answer is of the kind the question asks for.

The prompt names the answer's kind (yes/no, an option letter, a length with its unit, a clock hour:
`grammar.answer_instruction`), yet a small policy sometimes answers a yes/no question with a letter or a
length. For a query with a known `answer_type`, decoding is greedy as before until the completion opens
`<answer>`; from there each step takes the most likely token that keeps the answer a prefix of the kind's
canonical form (`answers.answer_pattern`) followed by `</answer>`, and the sequence cannot end inside it.
The model still chooses the answer ("yes" or "no", which letter, which number): only answers of another kind
are ruled out. Reasoning, detections and the choice of path are untouched, and a completion that never opens
`<answer>` stays a format failure.

It works on token texts, so with any tokenizer and runtime: the PyTorch backend through a `transformers`
logits processor (`AnswerLogitsProcessor`), the ONNX Runtime / TensorRT host loop directly. The argmax is
checked first; only when it is ruled out (a few steps per answer) are the row's best `TOP_K` tokens searched,
then the tokens made only of the answer form's characters (found once per tokenizer and form), best first.
"""
from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence

import numpy as np
import regex

from sr_real_core.answers import answer_pattern

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TOP_K = 256  # tokens searched by score before the answer-form tokens


class TokenTexts(list):
    """Each token id's text, and per character set the ids of the tokens made only of those characters."""

    def __init__(self, texts):
        super().__init__(texts)
        self._within: dict[frozenset, np.ndarray] = {}

    def ids_within(self, characters: frozenset) -> np.ndarray:
        if characters not in self._within:
            self._within[characters] = np.array([index for index, text in enumerate(self)
                                                 if text and set(text) <= characters], dtype=np.int64)
        return self._within[characters]


def token_texts(tokenizer) -> TokenTexts:
    """Each token id's text (special tokens as written), so that a completion's text is their concatenation."""
    return TokenTexts(tokenizer.batch_decode([[token] for token in range(len(tokenizer))], skip_special_tokens=False,
                                             clean_up_tokenization_spaces=False))


class AnswerConstraint:
    """The decoding state of one batch: per row, the completion's text so far and the pattern its answer
    must follow (None: unconstrained, e.g. an unknown answer type)."""

    def __init__(self, texts: Sequence[str], answer_types: Sequence[str | None], questions: Sequence[str],
                 prefix: str = ""):
        """`texts`: each token id's text (`token_texts`); `prefix`: completion text every row already has (e.g.
        an `<answer>` the caller wrote into the prompt)."""
        self.token_texts = texts if isinstance(texts, TokenTexts) else TokenTexts(texts)
        forms = [answer_pattern(kind, question) if kind else None for kind, question in zip(answer_types, questions)]
        # White space bounded, so that a constrained answer always closes within a few tokens.
        self.patterns = [regex.compile(rf"\s{{0,4}}(?:{form})\s{{0,4}}{re.escape(ANSWER_CLOSE)}[\s\S]*")
                         if form else None for form in forms]
        # A superset of the characters an answer of the form and its close can contain (the pattern's own
        # characters cover its letters; digits from ranges like [0-9] are added).
        self.characters = [frozenset(form) | frozenset(string.digits + string.whitespace + ANSWER_CLOSE)
                           if form else None for form in forms]
        self.completions = [prefix] * len(self.patterns)

    def allows(self, row: int, token: int) -> bool:
        """Whether appending `token` keeps row's answer, if opened, a prefix of its form."""
        pattern = self.patterns[row]
        if pattern is None:
            return True
        # An id past the tokenizer (embeddings are padded) has no text: never part of an answer.
        text = self.completions[row] + (self.token_texts[token] if token < len(self.token_texts) else "\ufffd")
        start = text.find(ANSWER_OPEN)  # the answer block; anything after its close is free
        return start < 0 or pattern.fullmatch(text, pos=start + len(ANSWER_OPEN), partial=True) is not None

    def pick(self, best: np.ndarray, row_scores: Callable[[int], np.ndarray]) -> np.ndarray:
        """The greedy choice per row: `best` (the argmax ids) where allowed, else the highest-scoring
        allowed token of `row_scores(row)` (or the argmax when none is: nothing better exists)."""
        chosen = np.array(best, dtype=np.int64)
        for row, token in enumerate(chosen.tolist()):
            if not self.allows(row, token):
                scores = np.asarray(row_scores(row), dtype=np.float32)
                top = np.argpartition(-scores, min(TOP_K, scores.size - 1))[:TOP_K]
                formed = self.token_texts.ids_within(self.characters[row])
                candidates = (*top[np.argsort(-scores[top], kind="stable")],
                              *formed[np.argsort(-scores[formed], kind="stable")])
                chosen[row] = next((int(t) for t in candidates if self.allows(row, int(t))), token)
        return chosen

    def advance(self, tokens: Sequence[int]) -> None:
        """Append the tokens each row generated."""
        for row, token in enumerate(tokens):
            token = int(token)
            self.completions[row] += self.token_texts[token] if token < len(self.token_texts) else ""


def logits_processor(constraint: AnswerConstraint):
    """A `transformers` logits processor applying `constraint` to greedy `generate`."""
    import torch
    from transformers import LogitsProcessor

    class AnswerLogitsProcessor(LogitsProcessor):
        def __init__(self):
            self.started = False  # the first call sees only the prompt

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            if self.started:
                constraint.advance(input_ids[:, -1].tolist())
            self.started = True
            best = scores.argmax(-1)
            chosen = torch.as_tensor(constraint.pick(best.cpu().numpy(),
                                                     lambda row: scores[row].float().cpu().numpy()),
                                     device=scores.device)
            changed = (chosen != best).nonzero().flatten()
            if changed.numel():
                scores[changed] = float("-inf")
                scores[changed, chosen[changed]] = 0.0
            return scores

    return AnswerLogitsProcessor()
