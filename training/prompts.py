"""Which path a training prompt asks for.

RL (`rl.path_mode`): `with_path` re-asks an RL record on the path of its mode: the mixture's own `path`
column (`dataset`), `lor`, `dtr`, `reference` (the reference's rule: DTR when the question has regions, else
LOR) or `auto` (the prompt offers both formats and the policy picks; the rewards follow the path it took). A
mapping of modes to shares draws one mode per prompt, fixed by the prompt id and the seed.

SFT (`data.auto_share`): the mixture's chains of thought are all asked on a fixed path, so a cold-started
model has never seen the auto prompt. `with_auto_prompt` re-asks a share of them in auto mode, keeping the
completion, when the completion's path is the one the reference's rule picks for that question: the cold
start then teaches the reference's choice, which RL can refine.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sr_real_core.grammar import build_prompt
from sr_real_core.query import ANSWER_TYPES, reference_path

COT_PATHS = {"lor_cot": "lor", "dtr_cot": "dtr"}


def _draw(identifier: str, seed: int) -> float:
    """A number in [0, 1) fixed by a record id and a seed."""
    digest = hashlib.sha256(f"{seed}:{identifier}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_prompt(content: str, path: str, answer_type: str | None = None) -> tuple[str, str | None]:
    """(question, answer type) of a prompt made by `grammar.build_prompt` for `path`; the answer type is tried
    over every type when not given. ValueError if the prompt is not such a prompt."""
    question = content.partition("\n\n")[0]
    for candidate in [answer_type] if answer_type else [*ANSWER_TYPES, None]:
        if build_prompt(question, path, candidate) == content:
            return question, candidate
    raise ValueError("the prompt was not made by grammar.build_prompt")


def question_of(record: Mapping[str, Any]) -> str:
    """The question of an RL record: its `question` column, else its prompt minus the format instructions."""
    if record.get("question"):
        return record["question"]
    try:
        return split_prompt(record["prompt"][-1]["content"], record["path"], record["answer_type"])[0]
    except ValueError:
        raise ValueError(f"record {record.get('id')!r}: cannot recover the question from its prompt; add a "
                         "'question' column to the RL records") from None


def path_for(record: Mapping[str, Any], mode: str | Mapping[str, float], seed: int) -> str:
    """The prompt path ("lor", "dtr" or "auto") of a record under a path mode or a mapping of mode shares."""
    if isinstance(mode, Mapping):
        draw = _draw(record["id"], seed) * sum(mode.values())
        chosen = next(name for name, share in reversed(mode.items()) if share > 0)
        for name, share in mode.items():
            if draw < share:
                chosen = name
                break
            draw -= share
        mode = chosen
    if mode == "dataset":
        return record["path"]
    if mode == "reference":
        return reference_path(bool(record.get("regions")))
    return mode


def with_path(record: dict[str, Any], mode: str | Mapping[str, float], seed: int) -> dict[str, Any]:
    """An RL record's prompt and `path` column for the path of `mode` (the rewards read `path`)."""
    path = path_for(record, mode, seed)
    prompt = build_prompt(question_of(record), path, record["answer_type"])
    return {"prompt": [{"role": "user", "content": prompt}], "path": path}


def with_auto_prompt(record: dict[str, Any], share: float, seed: int) -> dict[str, Any]:
    """An SFT record's messages, its first user turn re-asked in auto mode for a `share` of the chains of
    thought whose path is the reference's choice for the question (other records unchanged)."""
    path = COT_PATHS.get(record["kind"])
    if path is None or path != reference_path(bool(record.get("regions"))) or _draw(record["id"], seed) >= share:
        return {"messages": record["messages"]}
    user, *rest = record["messages"]
    try:
        question, answer_type = split_prompt(user["content"], path)
    except ValueError:
        raise ValueError(f"record {record.get('id')!r}: its prompt was not made by grammar.build_prompt") from None
    return {"messages": [{**user, "content": build_prompt(question, "auto", answer_type)}, *rest]}
