"""Answer parsing: VSI-Bench's prediction token and the lenient parser."""

from __future__ import annotations

import math

import pytest

from spatial_mllm_ros.vsibench.errors import UnknownQuestionTypeError
from spatial_mllm_ros.vsibench.parsing import (
    ParsedAnswer,
    answer_text,
    parse_answer,
    parse_number,
    parse_option,
    prediction_token,
    spatial_mllm_clean_text,
    vsi_prediction_token,
)


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("3", "3"),
        ("3.5 meters", "3.5"),
        ("B.", "B"),
        ("B. sofa", "B"),
        ("2.", "2"),
        ("4...", "4"),
        ("3\n", "3"),
        (" 3", ""),  # the reference splits on " " only: a leading space gives an empty token
        ("3\nmeters", "3\nmeters"),  # ... and a newline does not split
        ("B.\n", "B."),  # rstrip(".") happens before strip()
        ("", ""),
    ],
)
def test_vsi_prediction_token(text: str, token: str) -> None:
    assert vsi_prediction_token(text) == token


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3.0),
        ("3.5 meters", 3.5),
        ("about 2.4m", 2.4),
        ("-2", -2.0),
        (".5", 0.5),
        ("2,5", 2.5),
        ("1,250 cm", 1250.0),
        ("1e3", 1000.0),
        ("The room is 12.75 square meters.", 12.75),
        ("two", 2.0),
        ("There are Twelve chairs", 12.0),
        ("a dozen", 12.0),
        ("none", 0.0),
        ("3, 4 and 5", 3.0),
    ],
)
def test_parse_number_accepts(text: str, value: float) -> None:
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "many", "x3", "inf", "nan", "thirty-one", "1e999"])
def test_parse_number_rejects(text: str) -> None:
    assert math.isnan(parse_number(text))


OPTS = ["A. sofa", "B. chair", "C. table", "D. tv"]


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("b", "B"),
        ("B.", "B"),
        ("(B)", "B"),
        ("[C]", "C"),
        ("D)", "D"),
        ("B. chair", "B"),
        ("B chair", "B"),
        ("The answer is C.", "C"),
        ("Answer: d", "D"),
        ("chair", "B"),
        ("Table.", "C"),
        ("I think the tv is closest", "D"),
        ("The answer is a chair", "B"),  # "a" here is an article, not option A
        ("a sofa", "A"),  # lower-case "a" is an article; the option text decides
        ("E", ""),  # only four options
        ("", ""),
        ("the sofa and the chair", ""),  # ambiguous
    ],
)
def test_parse_option(text: str, letter: str) -> None:
    assert parse_option(text, OPTS) == letter


def test_parse_option_prefers_longest_contained_option() -> None:
    opts = ["A. left", "B. front-left", "C. right"]
    assert parse_option("front-left", opts) == "B"
    assert parse_option("it is front-left of me", opts) == "B"
    assert parse_option("left", opts) == "A"


def test_parse_option_without_options_uses_a_to_d() -> None:
    assert parse_option("C") == "C"
    assert parse_option("E") == ""
    assert parse_option("chair") == ""


def test_parse_answer_by_type() -> None:
    num = parse_answer(" 3.5 meters ", "object_abs_distance")
    assert num == ParsedAnswer(text="3.5 meters", numeric_value=3.5, option="")
    mc = parse_answer("B. chair", "object_rel_distance", OPTS)
    assert mc.option == "B" and math.isnan(mc.numeric_value)
    bad = parse_answer("I cannot tell", "object_counting")
    assert math.isnan(bad.numeric_value) and not bad.has_number
    mc_bad = parse_answer("no idea", "route_planning", OPTS)
    assert mc_bad.option == ""
    opened = parse_answer("2 mugs", "open")
    assert opened.numeric_value == 2.0 and opened.option == ""
    opened_opts = parse_answer("B", "open", OPTS)
    assert opened_opts.option == "B"


def test_parse_answer_unknown_type() -> None:
    with pytest.raises(UnknownQuestionTypeError):
        parse_answer("3", "colour")


# --- answer tags, <think>, and the Spatial-MLLM evaluations' rules -----------------------------


def test_answer_tags_are_unwrapped_and_typed() -> None:
    num = parse_answer("<answer>2.9</answer>", "object_abs_distance")
    assert num.text == "2.9" and num.numeric_value == pytest.approx(2.9)
    mc = parse_answer("Let me see. <answer>C</answer>", "object_rel_distance", OPTS)
    assert mc.text == "C" and mc.option == "C"
    last = parse_answer("<answer>A</answer> no wait <answer>B</answer>", "route_planning", OPTS)
    assert last.option == "B"


def test_think_part_is_dropped() -> None:
    parsed = parse_answer("<think>3 chairs? maybe 4</think><answer>5</answer>", "object_counting")
    assert parsed.numeric_value == 5.0
    parsed = parse_answer("<think>it is B, not A</think> A", "object_rel_distance", OPTS)
    assert parsed.text == "A" and parsed.option == "A"
    # An unclosed think part (generation cut off) leaves no answer.
    cut = parse_answer("<think>counting 3 chairs and", "object_counting")
    assert cut.text == "" and not cut.has_number
    assert answer_text("  plain 4 \n") == "plain 4"


@pytest.mark.parametrize(
    ("text", "v11", "v10"),
    [
        ("<answer>A</answer>", "a", "a"),
        ("B.", "b", "b"),
        ("A. left", "a. left", "a. left"),
        ("x <answer>1,250</answer> y <answer>3.5 </answer>", "3.5", "3.5"),
        ("Two\n  chairs.", "two chairs", "two   chairs"),
        ("Two \nchairs", "two chairs", "two chairs"),
    ],
)
def test_spatial_mllm_clean_text(text: str, v11: str, v10: str) -> None:
    assert spatial_mllm_clean_text(text) == v11
    assert spatial_mllm_clean_text(text, v1_0=True) == v10


def test_prediction_token_by_family() -> None:
    assert prediction_token("B. chair", "lmms-eval") == "B"
    assert prediction_token("B. chair", "spatial-mllm-v1.1") == "b. chair"
    assert prediction_token("<answer>B</answer>", "spatial-mllm-v1.0") == "b"
    with pytest.raises(ValueError):
        prediction_token("B", "nope")
