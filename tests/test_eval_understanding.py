"""Free-text answers read in the light of their question (sr_real_core.evaluation.understanding)."""

from __future__ import annotations

import pytest

from sr_real_core.evaluation.understanding import answer_text, choice_options, question_relation, understand

REGIONS = [{"ref": "Region [0]"}, {"ref": "Region [1]"}]


def rgpt(question: str, category: str | None = None, **extra) -> dict:
    """A SpatialRGPT-style record about Region [0] and Region [1]."""
    return {"question": question, "category": category, "regions": REGIONS, **extra}


LEFT = rgpt("Is Region [0] to the left of Region [1] from the viewer's perspective?", "left_predicate")
BEHIND = rgpt("Is Region [0] behind Region [1]?", "behind_predicate")
THIN = rgpt("Is Region [0] thinner than Region [1]?", "thin_predicate")
ABOVE_CHOICE = rgpt("Which is above, Region [0] or Region [1]?", "above_choice")
TALL_CHOICE = rgpt("Who is taller, Region [0] or Region [1]?", "tall_choice")
SINK_OR_BOTTLE = {"question": "Which object is closer to the camera taking this photo, the sink (highlighted by a red "
                              "box) or the bottle (highlighted by a blue box)?", "options": ["sink", "bottle"]}
# This project's data engine: marked regions named by colour, objects by name, options as a letter dict.
OURS = {"question": "Is the red bbox <region> to the left of the blue bbox <region>?", "category": "left_predicate",
        "regions": [{"ref": "red bbox", "object_index": 4}, {"ref": "blue bbox", "object_index": 2}],
        "objects": [4, 2], "object_names": ["mug", "laptop"]}
OURS_CHOICE = {"question": "Which is taller?\nA. the red bbox <region>\nB. the blue point <region>",
               "category": "tall_choice", "options": {"A": "the red bbox <region>", "B": "the blue point <region>"},
               "regions": [{"ref": "red bbox", "object_index": 4}, {"ref": "blue point", "object_index": 2}],
               "objects": [4, 2], "object_names": ["mug", "laptop"]}
NAMED = {"question": "Is the duck above the cup?", "category": "above_predicate", "regions": [],
         "object_names": ["duck", "cup"]}


@pytest.mark.parametrize(
    ("text", "answer_type", "record", "expected"),
    [
        # lengths: units converted to metres, the benchmark's phrasings
        ("about 3 feet 2 inches", "numeric", {"question": "How tall is it?"}, pytest.approx(38 * 0.0254)),
        ("Region [0] and Region [1] are 11.4 meters apart.", "numeric", {"question": "How far?"}, pytest.approx(11.4)),
        ("It is 48.47 centimeters.", "numeric", {"question": "How tall?"}, pytest.approx(0.4847)),
        ("22.32 feet.", "numeric", {"question": "How far?"}, pytest.approx(22.32 * 0.3048)),
        ("so \\scalar{3.5} \\distance_unit{feet}", "numeric", {"question": "How far?"}, pytest.approx(3.5 * 0.3048)),
        # clock hours
        ("It is at 2 o'clock", "direction", {"question": "where?"}, 2),
        ("Region [0] will find Region [1] around the 11 o’clock direction.", "direction", {"question": "?"}, 11),
        # letters
        ("(B)", "choice", SINK_OR_BOTTLE, "B"),
        ("The answer is A.", "choice", SINK_OR_BOTTLE, "A"),
        # yes/no predicates: verdict words, relation statements, negation, swapped subject, pronouns
        ("Yes, Region [0] is to the left of Region [1].", "yesno", LEFT, "yes"),
        ("Region [0] is indeed to the left of Region [1].", "yesno", LEFT, "yes"),
        ("Indeed, Region [0] is positioned on the left side of Region [1].", "yesno", LEFT, "yes"),
        ("In fact, Region [0] is to the right of Region [1].", "yesno", LEFT, "no"),
        ("Incorrect, Region [0] is not on the left side of Region [1].", "yesno", LEFT, "no"),
        ("Region [0] is not on the left side of Region [1].", "yesno", LEFT, "no"),
        ("Region [1] is to the left of Region [0].", "yesno", LEFT, "no"),
        ("To the left of Region [1] is Region [0].", "yesno", LEFT, "yes"),
        ("That is True.", "yesno", BEHIND, "yes"),
        ("No, Region [0] is closer to the viewer.", "yesno", BEHIND, "no"),
        ("Region [0] is further from the viewer.", "yesno", BEHIND, "yes"),
        ("It is in front of Region [1].", "yesno", BEHIND, "no"),
        ("Region [1] is in front of Region [0].", "yesno", BEHIND, "yes"),
        ("Region [0]'s width is not less than Region [1]'s.", "yesno", THIN, "no"),
        ("In fact, Region [0] might be wider than Region [1].", "yesno", THIN, "no"),
        ("Region [0] is less wide than Region [1].", "yesno", THIN, "yes"),
        ("Region [0] isn't thinner than Region [1].", "yesno", THIN, "no"),
        ("The mug is to the left of the laptop.", "yesno", OURS, "yes"),
        ("The laptop is left of the mug", "yesno", OURS, "no"),
        ("The red box is to the right of the blue box.", "yesno", OURS, "no"),
        ("The duck sits above the cup, so yes.", "yesno", NAMED, "yes"),
        ("The cup is above the duck.", "yesno", NAMED, "no"),
        # choices over regions or option texts
        ("Region [1] is below.", "choice", ABOVE_CHOICE, "A"),
        ("Region [1] is above.", "choice", ABOVE_CHOICE, "B"),
        ("Region [0] is higher up than Region [1].", "choice", ABOVE_CHOICE, "A"),
        ("With more height is Region [0].", "choice", TALL_CHOICE, "A"),
        ("Standing taller between the two is Region [1].", "choice", TALL_CHOICE, "B"),
        ("Region [1].", "choice", TALL_CHOICE, "B"),
        ("bottle", "choice", SINK_OR_BOTTLE, "B"),
        ("The bottle is closer than the sink.", "choice", SINK_OR_BOTTLE, "B"),
        ("The sink is farther away than the bottle", "choice", SINK_OR_BOTTLE, "B"),
        ("The red bbox is taller.", "choice", OURS_CHOICE, "A"),
        ("B", "choice", OURS_CHOICE, "B"),
        ("The laptop stands taller than the mug.", "choice", OURS_CHOICE, "B"),  # object names of the options' regions
    ],
)
def test_free_text_answers_are_understood(text, answer_type, record, expected):
    assert understand(text, answer_type, record) == expected


@pytest.mark.parametrize(
    ("text", "answer_type", "record"),
    [
        ("TwelveMug photo photo photo", "numeric", {"question": "How far?"}),  # an untrained model's output
        ("TwelveMug photo photo photo", "yesno", LEFT),
        ("TwelveMug photo photo photo", "choice", ABOVE_CHOICE),
        ("TwelveMug photo photo photo", "direction", {"question": "where?"}),
        ("I am not sure.", "yesno", LEFT),
        ("Region [0] or Region [1], hard to say.", "choice", TALL_CHOICE),  # both named, no relation: undecided
        ("", "numeric", {"question": "How far?"}),
    ],
)
def test_answers_that_say_nothing_are_unparsed(text, answer_type, record):
    assert understand(text, answer_type, record) is None


def test_answer_text_takes_the_answer_block_else_what_is_outside_the_reasoning():
    text, parsed = answer_text('<detect><3d_box center="0,0,1">cup (red bbox)</3d_box></detect>\n'
                               "<think>close</think>\n<answer>1.2 m</answer>")
    assert (text, parsed.path, parsed.well_formed) == ("1.2 m", "dtr", True)
    text, parsed = answer_text("<think>It is 5 m, no, 3 m.</think> So 40 cm")  # no <answer>: outside the think
    assert (text, parsed.path, parsed.well_formed) == ("So 40 cm", "lor", False)
    assert answer_text("About 2 meters.")[0] == "About 2 meters."  # no grammar at all: the whole text


def test_options_come_from_the_record_the_question_or_the_regions():
    letters = lambda options: [option.label for option in options]  # noqa: E731
    assert letters(choice_options(SINK_OR_BOTTLE, SINK_OR_BOTTLE["question"])) == ["sink", "bottle"]
    asked = "Which is wider, (A) the chair (red bbox) or (B) the table (blue bbox)?"
    assert letters(choice_options({}, asked)) == ["the chair (red bbox)", "the table (blue bbox)"]
    assert letters(choice_options({}, "Which is taller?\nA. the mug\nB) the cup")) == ["the mug", "the cup"]
    swapped = rgpt("Which is above, Region [1] or Region [0]?")
    assert letters(choice_options(swapped, swapped["question"])) == ["Region [1]", "Region [0]"]  # mention order


@pytest.mark.parametrize(
    ("question", "category", "relation"),
    [("Is Region [0] behind Region [1]?", None, "behind"), ("Which object is closer to the camera?", None, "front"),
     ("Which one is further to the right?", None, "right"), ("Does it have a lesser width?", None, "thin"),
     ("Anything?", "tall_choice", "tall"), ("How far is it?", "distance", None)],
)
def test_question_relation(question, category, relation):
    assert question_relation(question, category) == relation
