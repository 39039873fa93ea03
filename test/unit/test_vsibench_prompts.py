"""Prompts, question types, heuristic classification and question validation."""

from __future__ import annotations

import pytest

from spatial_mllm_ros.vsibench.errors import InvalidQuestionError, UnknownQuestionTypeError
from spatial_mllm_ros.vsibench.prompts import (
    MULTIPLE_CHOICE_TYPES,
    NUMERIC_TYPES,
    QUESTION_TYPES,
    build_prompt,
    format_options,
    infer_question_type,
    validate_question,
)


def test_type_sets() -> None:
    assert set(NUMERIC_TYPES) == {
        "object_counting",
        "object_abs_distance",
        "object_size_estimation",
        "room_size_estimation",
    }
    for t in (
        "object_rel_direction_easy",
        "object_rel_direction_medium",
        "object_rel_direction_hard",
        "object_rel_distance",
        "route_planning",
        "obj_appearance_order",
    ):
        assert t in MULTIPLE_CHOICE_TYPES
    assert not set(NUMERIC_TYPES) & set(MULTIPLE_CHOICE_TYPES)
    assert "open" in QUESTION_TYPES and "open" not in MULTIPLE_CHOICE_TYPES


def test_numeric_prompt_is_lmms_eval_form() -> None:
    # lmms-eval vsibench_doc_to_text: pre_prompt + "\n" + question + "\n" + na_post_prompt
    got = build_prompt("How many chairs are in this room?", "object_counting", template="lmms-eval")
    assert got == (
        "These are frames of a video.\n"
        "How many chairs are in this room?\n"
        "Please answer the question using a single word or phrase."
    )


def test_numeric_prompt_ignores_options() -> None:
    assert build_prompt("q?", "room_size_estimation", ["A. 1", "B. 2"]) == build_prompt(
        "q?", "room_size_estimation"
    )


def test_multiple_choice_prompt_is_lmms_eval_form() -> None:
    # "\n".join([pre_prompt, question, "Options:\n" + "\n".join(options), mca_post_prompt])
    opts = ["A. sofa", "B. chair", "C. table", "D. tv"]
    got = build_prompt("Which is closest to the door?", "object_rel_distance", opts, "lmms-eval")
    assert got == (
        "These are frames of a video.\n"
        "Which is closest to the door?\n"
        "Options:\n"
        "A. sofa\nB. chair\nC. table\nD. tv\n"
        "Answer with the option's letter from the given choices directly."
    )


def test_plain_options_get_letters() -> None:
    assert format_options(["left", "right"]) == ["A. left", "B. right"]
    # Out-of-order letters are not VSI-Bench form: all get prefixed.
    assert format_options(["B. x", "A. y"]) == ["A. B. x", "B. A. y"]


def test_multiple_choice_needs_options() -> None:
    with pytest.raises(InvalidQuestionError):
        build_prompt("q?", "route_planning")
    with pytest.raises(InvalidQuestionError):
        build_prompt("q?", "route_planning", ["only one"])
    with pytest.raises(InvalidQuestionError):
        build_prompt("q?", "route_planning", "AB")


def test_open_prompt_has_no_post_prompt() -> None:
    assert build_prompt("What is on the shelf?", "open", template="lmms-eval") == (
        "These are frames of a video.\nWhat is on the shelf?"
    )
    assert build_prompt("What is on the shelf?", "open") == "What is on the shelf?"


def test_unknown_template() -> None:
    with pytest.raises(ValueError, match="unknown prompt template"):
        build_prompt("q?", "object_counting", template="qwen3")


def test_unknown_type() -> None:
    with pytest.raises(UnknownQuestionTypeError):
        build_prompt("q?", "object_colour")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("how many chairs are in this room?", "object_counting"),
        ("Count the mugs on the table.", "object_counting"),
        ("how far is the sofa from the stove?", "object_abs_distance"),
        ("What is the distance between the bed and the lamp?", "object_abs_distance"),
        ("if I stand by the door facing the TV, is the table to my left?", "object_rel_direction"),
        ("Standing at the fridge, is the sink left or right?", "object_rel_direction"),
        ("How tall is the bookshelf?", "object_size_estimation"),
        ("What is the length of the longest side of the sofa?", "object_size_estimation"),
        ("What is the size of this room in square meters?", "room_size_estimation"),
        ("How many square meters is the room?", "room_size_estimation"),
        ("Which is closer to the bed, the lamp or the chair?", "object_rel_distance"),
        ("What route should I take to get from the door to the window?", "route_planning"),
        ("Which object appears first in the video?", "obj_appearance_order"),
        ("What colour is the mug?", "open"),
        ("", "open"),
    ],
)
def test_infer_question_type(question: str, expected: str) -> None:
    assert infer_question_type(question) == expected


def test_infer_with_options_never_numeric() -> None:
    # "how many" would be counting, but a question with options is multiple choice or open.
    assert infer_question_type("How many chairs?", ["A. 1", "B. 2"]) == "open"
    assert (
        infer_question_type("Which is nearest to the sofa?", ["A. tv", "B. bed"])
        == "object_rel_distance"
    )


def test_validate_question_strips_and_accepts() -> None:
    assert validate_question("  how many chairs?\n", 100) == "how many chairs?"
    assert validate_question("line one\nline\ttwo", 100) == "line one\nline\ttwo"
    assert validate_question("x" * 10, 10) == "x" * 10


@pytest.mark.parametrize(
    "bad",
    ["", "   \n\t ", "x" * 11, "bell\x07", "nul\x00", "esc\x1b[31m", "hi<|im_end|>", "a\rb"],
)
def test_validate_question_rejects(bad: str) -> None:
    with pytest.raises(InvalidQuestionError):
        validate_question(bad, 10)


def test_validate_question_rejects_non_string_and_bad_limit() -> None:
    with pytest.raises(InvalidQuestionError):
        validate_question(None, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        validate_question("ok", 0)
