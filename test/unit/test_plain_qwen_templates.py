"""Prompt families of the plain Qwen2.5-VL spatial checkpoints (issue 21 point 4): exact strings.

Written out by hand from the authors' evaluation code: SpatialLadder-3B's
``eval_spld/data_utils/vsi_utils.py`` (``PROMPT_TEMPLATES["thinking"]``, ``THINKING_TEMPLATE``)
and ``vsibench.py`` (options appended to the question, ``"\\n"`` before the post-prompt); VST's
``benchmark/eval_vsibench.py`` and lmms-eval's ``vsibench_multiimage`` (SenseNova-SI), which are
lmms-eval's ``vsibench_doc_to_text``.
"""

from __future__ import annotations

import pytest

from spatial_mllm_ros.vsibench.parsing import prediction_token
from spatial_mllm_ros.vsibench.prompts import build_prompt
from spatial_mllm_ros.vsibench.templates import (
    LMMS_EVAL,
    SPATIALLADDER,
    TEMPLATES,
    template_for_layout,
)

GUIDANCE = (
    "Please think about this question as if you were a human pondering deeply. Engage in an "
    "internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
    "'let's break it down', etc, or other natural language thought expressions It's encouraged "
    "to include self-reflection or verification in the reasoning process. \n"
)
LADDER_MC = (
    "Please provide your detailed reasoning between the <think> </think> tags, and then answer "
    "the question with the option's letter from the given choices (e.g., A, B, etc.) within the "
    "<answer> </answer> tags."
)
LADDER_NA = (
    "Please provide your detailed reasoning between the <think> </think> tags, and then answer "
    "the question with a numerical value (e.g., 42 or 3.1) within the <answer> </answer> tags."
)
COUNT = "How many table(s) are in this room?"
DIST = "Which of these objects (sofa, tv) is the closest to the stove?"
OPTIONS = ["A. sofa", "B. tv"]


def test_plain_qwen_layout_defaults_to_lmms_eval() -> None:
    assert template_for_layout("qwen2.5-vl") == LMMS_EVAL
    with pytest.raises(ValueError, match=r"qwen2\.5-vl"):
        template_for_layout("qwen")


def test_lmms_eval_strings_as_vst_and_sensenova_ask() -> None:
    assert build_prompt(COUNT, "object_counting", template=LMMS_EVAL) == (
        "These are frames of a video.\nHow many table(s) are in this room?\n"
        "Please answer the question using a single word or phrase."
    )
    assert build_prompt(DIST, "object_rel_distance", OPTIONS, template=LMMS_EVAL) == (
        "These are frames of a video.\nWhich of these objects (sofa, tv) is the closest to the "
        "stove?\nOptions:\nA. sofa\nB. tv\n"
        "Answer with the option's letter from the given choices directly."
    )


def test_spatialladder_numeric_string() -> None:
    got = build_prompt(COUNT, "object_counting", template=SPATIALLADDER)
    assert got == "Question: How many table(s) are in this room?\n" + GUIDANCE + "\n" + LADDER_NA
    assert "thought expressions It's encouraged" in got
    assert "process. \n\nPlease provide" in got


def test_spatialladder_choice_string() -> None:
    got = build_prompt(DIST, "object_rel_distance", OPTIONS, template=SPATIALLADDER)
    assert got == (
        "Question: Which of these objects (sofa, tv) is the closest to the stove?\n"
        "Options:\nA. sofa\nB. tv\n" + GUIDANCE + "\n" + LADDER_MC
    )


def test_spatialladder_open_has_no_post_prompt() -> None:
    got = TEMPLATES[SPATIALLADDER].open("Is the box on the shelf?", ())
    assert got == "Question: Is the box on the shelf?\n" + GUIDANCE
    assert TEMPLATES[SPATIALLADDER].answer_tags


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("<think>hmm, B?</think><answer> B. tv</answer>", "B"),
        ("<answer>b. tv</answer>", "b. tv"),  # the reference's letter match is case-sensitive
        ("<think>x</think><answer>Answer: C</answer>", "C"),
        ("<answer>3.5</answer> <answer>4</answer>", "3.5"),
        ("<think>never closed <answer>A", "None"),
        ("A. sofa", "A"),
        ("E. other", "E. other"),
    ],
)
def test_spatialladder_scoring_token(text: str, token: str) -> None:
    assert prediction_token(text, SPATIALLADDER) == token
