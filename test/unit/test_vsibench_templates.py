"""Exact prompt strings of each checkpoint family for every VSI-Bench question type.

The expected strings are written out by hand from the reference code: Spatial-MLLM's default
branch ``src/evaluation/vsibench/eval_vsibench.py`` (v1.1) and its ``v1.0`` branch
``evaluate/eval_vsibench.py`` (v1.0). Questions and options are VSI-Bench's own wording.
"""

from __future__ import annotations

import pytest

from spatial_mllm_ros.vsibench.prompts import MULTIPLE_CHOICE_TYPES, NUMERIC_TYPES, build_prompt
from spatial_mllm_ros.vsibench.templates import (
    LMMS_EVAL,
    SPATIAL_MLLM_V1_0,
    SPATIAL_MLLM_V1_1,
    TEMPLATES,
    template_for_layout,
)

NA_V11 = "Please answer the question using a single word or phrase."
MC_V11 = "Answer with the option's letter from the given choices directly."
NA_V10 = (
    " Please answer with the only numerical value (e.g., 42, 3.14, etc.) within the "
    "<answer> </answer> tags."
)
MC_V10 = (
    " Please answer with the option's letter from the given choices (e.g., A, B, etc.) within "
    "the <answer> </answer> tags."
)

NUMERIC_QUESTIONS = {
    "object_counting": "How many table(s) are in this room?",
    "object_abs_distance": (
        "Measuring from the closest point of each object, what is the distance between the "
        "sofa and the stove (in meters)?"
    ),
    "object_size_estimation": (
        "What is the length of the longest dimension (length, width, or height) of the stove, "
        "measured in centimeters?"
    ),
    "room_size_estimation": (
        "What is the size of this room (in square meters)? \nIf multiple rooms are shown, "
        "estimate the size of the combined space."
    ),
}

CHOICE_QUESTIONS = {
    "object_rel_direction_easy": (
        "If I am standing by the stove and facing the sofa, is the tv to the left or the right "
        "of the sofa?",
        ["A. left", "B. right"],
    ),
    "object_rel_direction_medium": (
        "If I am standing by the stove and facing the sofa, is the tv to my left, right, or "
        "back?\nAn object is to my back if I would have to turn at least 135 degrees in order "
        "to face it.",
        ["A. back", "B. right", "C. left"],
    ),
    "object_rel_direction_hard": (
        "If I am standing by the stove and facing the sofa, is the tv to my front-left, "
        "front-right, back-left, or back-right?\nThe directions refer to the quadrants of a "
        "Cartesian plane (if I am standing at the origin and facing along the positive "
        "y-axis).",
        ["A. front-left", "B. back-right", "C. back-left", "D. front-right"],
    ),
    "object_rel_distance": (
        "Measuring from the closest point of each object, which of these objects (chair, "
        "stool, stove, sofa) is the closest to the tv?",
        ["A. chair", "B. stool", "C. stove", "D. sofa"],
    ),
    "route_planning": (
        "You are a robot beginning at the bed facing the tv. You want to navigate to the "
        "toilet. You will perform the following actions (Note: for each [please fill in], "
        "choose either 'turn back,' 'turn left,' or 'turn right.'): 1. Go forward until the TV "
        "2. [please fill in] 3. Go forward until the shower 4.",
        ["A. Turn Back, Turn Left", "B. Turn Left, Turn Left", "C. Turn Left, Turn Right"],
    ),
    "obj_appearance_order": (
        "What will be the first-time appearance order of the following categories in the "
        "video: ceiling light, cup, heater, door?",
        [
            "A. cup, door, heater, ceiling light",
            "B. ceiling light, door, cup, heater",
            "C. heater, cup, door, ceiling light",
            "D. ceiling light, cup, heater, door",
        ],
    ),
}


def test_every_vsibench_type_is_covered() -> None:
    vsibench_choice = [t for t in MULTIPLE_CHOICE_TYPES if t != "object_rel_direction"]
    assert sorted(NUMERIC_QUESTIONS) == sorted(NUMERIC_TYPES)
    assert sorted(CHOICE_QUESTIONS) == sorted(vsibench_choice)


@pytest.mark.parametrize("qtype", sorted(NUMERIC_QUESTIONS))
def test_v1_1_numeric(qtype: str) -> None:
    q = NUMERIC_QUESTIONS[qtype]
    assert build_prompt(q, qtype, template=SPATIAL_MLLM_V1_1) == q + "\n" + NA_V11


@pytest.mark.parametrize("qtype", sorted(NUMERIC_QUESTIONS))
def test_v1_0_numeric(qtype: str) -> None:
    q = NUMERIC_QUESTIONS[qtype]
    assert build_prompt(q, qtype, template=SPATIAL_MLLM_V1_0) == q + NA_V10


@pytest.mark.parametrize("qtype", sorted(CHOICE_QUESTIONS))
def test_v1_1_multiple_choice(qtype: str) -> None:
    q, opts = CHOICE_QUESTIONS[qtype]
    expected = q + "\nOptions:\n" + "\n".join(opts) + "\n" + MC_V11
    assert build_prompt(q, qtype, opts, SPATIAL_MLLM_V1_1) == expected


@pytest.mark.parametrize("qtype", sorted(CHOICE_QUESTIONS))
def test_v1_0_multiple_choice(qtype: str) -> None:
    q, opts = CHOICE_QUESTIONS[qtype]
    # The reference appends "Options:\n" straight to the problem, and a newline after each
    # option; the post-prompt starts with a space.
    expected = q + "Options:\n" + "".join(o + "\n" for o in opts) + MC_V10
    assert build_prompt(q, qtype, opts, SPATIAL_MLLM_V1_0) == expected


def test_literal_strings_of_one_question_per_family() -> None:
    q, opts = CHOICE_QUESTIONS["object_rel_direction_easy"]
    assert build_prompt(q, "object_rel_direction_easy", opts, SPATIAL_MLLM_V1_1) == (
        "If I am standing by the stove and facing the sofa, is the tv to the left or the right "
        "of the sofa?\nOptions:\nA. left\nB. right\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert build_prompt(q, "object_rel_direction_easy", opts, SPATIAL_MLLM_V1_0) == (
        "If I am standing by the stove and facing the sofa, is the tv to the left or the right "
        "of the sofa?Options:\nA. left\nB. right\n Please answer with the option's letter from "
        "the given choices (e.g., A, B, etc.) within the <answer> </answer> tags."
    )
    assert build_prompt("How many table(s) are in this room?", "object_counting",
                        template=LMMS_EVAL) == (
        "These are frames of a video.\nHow many table(s) are in this room?\n"
        "Please answer the question using a single word or phrase."
    )


def test_open_forms() -> None:
    q = "What is on the shelf?"
    assert build_prompt(q, "open", template=SPATIAL_MLLM_V1_1) == q
    assert build_prompt(q, "open", template=SPATIAL_MLLM_V1_0) == (
        q + " Please answer the question simply within the <answer> </answer> tags"
    )
    assert build_prompt(q, "open", ["mug", "book"], SPATIAL_MLLM_V1_1) == (
        q + "\nOptions:\nA. mug\nB. book"
    )


def test_plain_options_are_lettered_in_every_family() -> None:
    for name in TEMPLATES:
        got = build_prompt("Which is nearer?", "object_rel_distance", ["sofa", "tv"], name)
        assert "A. sofa" in got and "B. tv" in got


def test_layout_picks_family() -> None:
    assert template_for_layout("v1.0") == SPATIAL_MLLM_V1_0
    assert template_for_layout("v1.1") == SPATIAL_MLLM_V1_1
    assert TEMPLATES[SPATIAL_MLLM_V1_0].answer_tags
    assert not TEMPLATES[SPATIAL_MLLM_V1_1].answer_tags
    with pytest.raises(ValueError):
        template_for_layout("v2")
