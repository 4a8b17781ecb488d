"""Constrained answer decoding (`sr_real_core.constrained`): an answer of the asked type, chosen by the model."""
import re

import numpy as np
import pytest
import torch

from sr_real_core.answers import answer_pattern, option_letters, parse_answer
from sr_real_core.constrained import AnswerConstraint, logits_processor, token_texts
from sr_real_core.data.units import LengthStyle, say_length
from sr_real_core.model.tiny import train_tiny_tokenizer

CHOICE = "Which one is larger?\nA. the red bbox <region>\nB. the blue point <region>"


@pytest.fixture(scope="module")
def tokenizer():
    return train_tiny_tokenizer()


@pytest.mark.parametrize("metres", [0.004, 0.19, 0.5, 0.999, 1.0, 1.25, 3.456, 12.0, 250.0])
@pytest.mark.parametrize("imperial", [False, True])
@pytest.mark.parametrize("long_names", [False, True])
def test_every_length_the_data_engine_writes_fits_the_numeric_form(metres, imperial, long_names):
    text = say_length(metres, LengthStyle(imperial=imperial, long_names=long_names)).text
    assert re.fullmatch(answer_pattern("numeric"), text), text
    assert parse_answer(text, "numeric") is not None


def test_the_other_forms_and_the_option_letters():
    assert all(re.fullmatch(answer_pattern("direction"), f"{hour} o'clock") for hour in range(1, 13))
    assert not re.fullmatch(answer_pattern("direction"), "13 o'clock")
    assert [bool(re.fullmatch(answer_pattern("yesno"), a)) for a in ("yes", "no", "B", "1 m")] == [1, 1, 0, 0]
    assert option_letters(CHOICE) == "AB" and answer_pattern("choice", CHOICE) == "[AB]"
    assert option_letters("Is it (A) left, (B) right or (C) up?") == "ABC"
    assert option_letters("Which one is nearer?") == "ABCD"  # options not listed in the text
    with pytest.raises(ValueError, match="unknown answer_type"):
        answer_pattern("colour")


def decode(constraint, first, preferences, texts, steps=12):
    """Greedy decoding of scripted scores: `first` at the first step, then the listed texts in order of
    preference (every other token far below), the same for every row."""
    ids = {text: index for index, text in enumerate(texts)}
    rows = len(constraint.patterns)
    for step in range(steps):
        scores = np.full((rows, len(texts)), -10.0, np.float32)
        for rank, text in enumerate([first] if step == 0 else preferences):
            scores[:, ids[text]] = -rank
        constraint.advance(constraint.pick(scores.argmax(-1), scores.__getitem__))
    return constraint.completions


def test_the_answer_keeps_its_type_and_the_model_chooses_within_it():
    texts = ["<think>", "x", "</think>", "<answer>", "B", " maybe", "no", "yes", "</answer>", "<|im_end|>", "1.5",
             " m", "ye", "s"]
    constraint = AnswerConstraint(texts, ["yesno", None, "numeric", "choice"], ["", "", "", CHOICE])
    # Each row prefers, in this order, a letter, then end-of-sequence, then what its type allows.
    script = ["B", "<|im_end|>", " maybe", "no", "yes", "</answer>", " m", "1.5"]
    done = decode(constraint, "<answer>", script, texts, steps=5)
    assert done[0] == "<answer>no</answer>BB"  # "no" outranks "yes"; no end inside; free after the close
    assert done[1] == "<answer>BBBB"  # no answer type: free
    assert done[2] == "<answer>1.5 m</answer>B"
    assert done[3] == "<answer>B</answer>BB"  # the letter the model prefers is one of the options
    spaces = AnswerConstraint([*texts, " "], ["yesno"], [""])  # white space cannot keep an answer open
    assert decode(spaces, "<answer>", [" ", "no", "</answer>"], [*texts, " "], steps=12)[0].startswith(
        "<answer>    no    </answer>")
    only_a_c = AnswerConstraint([*texts, "C"], ["choice"], ["Which?\nA. the red bbox\nC. the green bbox"])
    assert decode(only_a_c, "<answer>", ["B", "C", "</answer>"], [*texts, "C"], steps=3) == ["<answer>C</answer>"]
    before = AnswerConstraint(texts, ["yesno"], [""])
    assert decode(before, "<think>", ["B", "x"], texts, steps=3) == ["<think>BB"]  # free before <answer>


def test_an_answer_tag_split_across_tokens_is_still_seen(tokenizer):
    texts = token_texts(tokenizer)
    assert "".join(texts[t] for t in tokenizer("<think>a</think><answer>yes</answer>")["input_ids"]) == \
        "<think>a</think><answer>yes</answer>"
    ids = tokenizer("<answ")["input_ids"]
    constraint = AnswerConstraint(texts, ["yesno"], [""])
    for token in ids:
        constraint.advance([token])
    closing = tokenizer("er>")["input_ids"]
    assert constraint.allows(0, closing[0])  # the tag is completed, the answer still empty
    for token in closing:
        constraint.advance([token])
    letter = tokenizer("B")["input_ids"][0]
    assert not constraint.allows(0, letter) and constraint.allows(0, tokenizer("no")["input_ids"][0])
    # This tokenizer merges across the tag: "<answer>yes" is "<answer" + ">yes".
    merged = tokenizer("<answer>yes")["input_ids"]
    assert [texts[t] for t in merged] == ["<answer", ">yes"]
    for kind, allowed in (("yesno", True), ("choice", False)):
        constraint = AnswerConstraint(texts, [kind], [CHOICE])
        constraint.advance([merged[0]])
        assert constraint.allows(0, merged[1]) == allowed


def test_the_transformers_processor_overrules_only_forbidden_argmaxes(tokenizer):
    texts = token_texts(tokenizer)
    letter, no = tokenizer("B")["input_ids"][0], tokenizer("no")["input_ids"][0]
    processor = logits_processor(AnswerConstraint(texts, ["yesno", None], ["", ""], prefix="<answer>"))
    prompt = torch.zeros((2, 5), dtype=torch.long)
    scores = torch.zeros((2, len(texts)))
    scores[:, letter], scores[:, no] = 5.0, 1.0
    out = processor(prompt, scores.clone())
    assert out[0].argmax() == no and torch.isinf(out[0, letter])
    assert out[1].argmax() == letter and torch.equal(out[1], scores[1])  # unconstrained row untouched
    # The next call reads the token each row took from input_ids.
    processor(torch.cat([prompt, torch.tensor([[no], [letter]])], 1), scores.clone())
    assert processor.__class__.__name__ == "AnswerLogitsProcessor"


def test_a_ruled_out_argmax_is_replaced_from_a_large_vocabulary_without_a_full_search():
    """At Qwen's vocabulary size, with the allowed answers ranked far down, the best allowed token is found among
    the tokens made of the answer form's characters (the top-k alone does not hold it)."""
    texts = [f"t{index}" for index in range(151_936)]
    texts[:5] = ["<answer>", "yes", "no", "B", "maybe"]
    scores = np.linspace(1.0, 0.0, len(texts), dtype=np.float32)[None].copy()
    scores[0, 3], scores[0, 1], scores[0, 2] = 5.0, -1.0, -0.5  # "B" first, then "no" above "yes", both last
    constraint = AnswerConstraint(texts, ["yesno"], [""], prefix="<answer>")
    assert constraint.pick(scores.argmax(-1), scores.__getitem__).tolist() == [2]
    assert 2 in constraint.token_texts.ids_within(constraint.characters[0])
    assert 4 not in constraint.token_texts.ids_within(constraint.characters[0])  # "maybe": the "m" is not
