"""Prompt templates per checkpoint family, as each family was evaluated by its authors.

A released checkpoint answers best, and as its published numbers say, when it is asked the way
its authors asked it. Four families of prompt text exist, and each is kept here verbatim:

``spatial-mllm-v1.1``
    Spatial-MLLM's own VSI-Bench evaluation on its default branch
    (``src/evaluation/vsibench/eval_vsibench.py``, ``build_user_message``), the one the v1.1
    checkpoints (``Spatial-MLLM-v1.1-Instruct-135K`` / ``-820K``) were evaluated with: no
    pre-prompt; numeric types ``question + "\\n" + NA_POST``; multiple-choice types
    ``question + "\\nOptions:\\n" + "\\n".join(options) + "\\n" + MCA_POST``.
``spatial-mllm-v1.0``
    The ``v1.0`` branch's ``evaluate/eval_vsibench.py`` (``prepare_single_message_eval``), for
    ``Spatial-MLLM-subset-sft``: the answer is asked for inside ``<answer> </answer>`` tags;
    multiple choice ``question + "Options:\\n" + "".join(o + "\\n" for o in options) +
    MC_POST`` (the question and "Options:" are joined with nothing between them, as there);
    numeric ``question + NUMERIC_POST`` (the reference's "regression" problem type, which all
    four numeric VSI-Bench types are); each post-prompt starts with a space.
``lmms-eval``
    VSI-Bench's published evaluation (``vsibench_doc_to_text`` in lmms-eval): the pre-prompt
    ``"These are frames of a video."``, then question, options and post-prompt joined by
    newlines. Used to compare with other models' published VSI-Bench numbers. It is also the
    family of the plain Qwen2.5-VL spatial checkpoints (layout ``qwen2.5-vl``, the ``auto``
    default for it): VST-3B-SFT/-RL (``Yangr116/vst``, ``benchmark/eval_vsibench.py``: lmms-eval's
    ``vsibench_doc_to_text`` with its default kwargs) and SenseNova-SI-1.1-Qwen2.5-VL-3B (through
    EASI: lmms-eval's ``vsibench_multiimage`` task, the same text).
``spatialladder``
    SpatialLadder-3B's evaluation (``ZJU-REAL/SpatialLadder``, ``eval_spld/data_utils/
    vsibench.py`` and ``vsi_utils.py``, ``prompt_type`` ``thinking``, the default of its
    ``run_eval.sh``): options are appended to the question (``"\nOptions:\n" +
    "\n".join(options)``), the result goes into ``"Question: {question}\n"`` followed by the
    "think as a human" guidance (:data:`SPATIALLADDER_GUIDANCE`, verbatim with its missing full
    stop and trailing space), then ``"\n"`` and a post-prompt asking for ``<think> </think>``
    reasoning and the answer inside ``<answer> </answer>``; other question types get no
    post-prompt. A plain Qwen2.5-VL checkpoint cannot be told apart from VST's by its files:
    SpatialLadder-3B is asked in its form only with ``answer.prompt_template: spatialladder``.

``open`` questions (an operator's free text, not a VSI-Bench type) get the family's open form:
the question alone (v1.1), the question plus v1.0's "verbal" post-prompt, or the pre-prompt
plus the question (lmms-eval); options, when given, follow in the family's ``Options:`` block.

None of the templates asks for a ``<think>`` part; answer parsing
(:mod:`spatial_mllm_ros.vsibench.parsing`) still strips one, should a model write it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "AUTO_TEMPLATE",
    "DEFAULT_TEMPLATE",
    "LMMS_EVAL",
    "SPATIALLADDER",
    "SPATIAL_MLLM_V1_0",
    "SPATIAL_MLLM_V1_1",
    "TEMPLATES",
    "PromptTemplate",
    "template_for_layout",
]

SPATIAL_MLLM_V1_1 = "spatial-mllm-v1.1"
SPATIAL_MLLM_V1_0 = "spatial-mllm-v1.0"
LMMS_EVAL = "lmms-eval"
SPATIALLADDER = "spatialladder"
DEFAULT_TEMPLATE = SPATIAL_MLLM_V1_1
AUTO_TEMPLATE = "auto"
"""Parameter value meaning: the family of the loaded checkpoint (:func:`template_for_layout`)."""

LMMS_PRE_PROMPT = "These are frames of a video."
"""lmms-eval's VSI-Bench pre-prompt."""
MCA_POST_PROMPT = "Answer with the option's letter from the given choices directly."
"""Multiple-choice post-prompt of v1.1 and lmms-eval (``mca_post_prompt``)."""
NA_POST_PROMPT = "Please answer the question using a single word or phrase."
"""Numeric post-prompt of v1.1 and lmms-eval (``na_post_prompt``)."""
V1_0_MC_POST_PROMPT = (
    " Please answer with the option's letter from the given choices (e.g., A, B, etc.) "
    "within the <answer> </answer> tags."
)
"""v1.0's post-prompt of "multiple choice" problems."""
V1_0_NUMERIC_POST_PROMPT = (
    " Please answer with the only numerical value (e.g., 42, 3.14, etc.) "
    "within the <answer> </answer> tags."
)
"""v1.0's post-prompt of "numerical" and "regression" problems (the VSI-Bench numeric types)."""
V1_0_VERBAL_POST_PROMPT = " Please answer the question simply within the <answer> </answer> tags"
"""v1.0's post-prompt of "verbal" problems (no final full stop, as in the reference)."""
SPATIALLADDER_GUIDANCE = (
    "Please think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', "
    "'oh, I see', 'let's break it down', etc, or other natural language thought expressions "
    "It's encouraged to include self-reflection or verification in the reasoning process. \n"
)
"""SpatialLadder's ``THINKING_TEMPLATE`` after its ``"Question: {question}\n"`` line."""
SPATIALLADDER_MC_POST_PROMPT = (
    "Please provide your detailed reasoning between the <think> </think> tags, "
    "and then answer the question with the option's letter from the given choices "
    "(e.g., A, B, etc.) within the <answer> </answer> tags."
)
"""SpatialLadder's ``thinking`` ``mca_post_prompt``."""
SPATIALLADDER_NUMERIC_POST_PROMPT = (
    "Please provide your detailed reasoning between the <think> </think> tags, "
    "and then answer the question with a numerical value (e.g., 42 or 3.1) within the "
    "<answer> </answer> tags."
)
"""SpatialLadder's ``thinking`` ``na_post_prompt``."""


def _v1_1_numeric(question: str) -> str:
    return f"{question}\n{NA_POST_PROMPT}"


def _v1_1_choice(question: str, options: Sequence[str]) -> str:
    return f"{question}\nOptions:\n" + "\n".join(options) + f"\n{MCA_POST_PROMPT}"


def _v1_1_open(question: str, options: Sequence[str]) -> str:
    return question + ("\nOptions:\n" + "\n".join(options) if options else "")


def _v1_0_block(options: Sequence[str]) -> str:
    return "Options:\n" + "".join(o + "\n" for o in options)


def _v1_0_numeric(question: str) -> str:
    return question + V1_0_NUMERIC_POST_PROMPT


def _v1_0_choice(question: str, options: Sequence[str]) -> str:
    return question + _v1_0_block(options) + V1_0_MC_POST_PROMPT


def _v1_0_open(question: str, options: Sequence[str]) -> str:
    return question + (_v1_0_block(options) if options else "") + V1_0_VERBAL_POST_PROMPT


def _lmms_numeric(question: str) -> str:
    return LMMS_PRE_PROMPT + "\n" + question + "\n" + NA_POST_PROMPT


def _lmms_choice(question: str, options: Sequence[str]) -> str:
    block = "Options:\n" + "\n".join(options)
    return "\n".join([LMMS_PRE_PROMPT, question, block, MCA_POST_PROMPT])


def _lmms_open(question: str, options: Sequence[str]) -> str:
    parts = [LMMS_PRE_PROMPT, question]
    if options:
        parts.append("Options:\n" + "\n".join(options))
    return "\n".join(parts)


def _ladder_pre(question: str, options: Sequence[str] = ()) -> str:
    if options:
        question += "\nOptions:\n" + "\n".join(options)
    return "Question: " + question + "\n" + SPATIALLADDER_GUIDANCE


def _ladder_numeric(question: str) -> str:
    return _ladder_pre(question) + "\n" + SPATIALLADDER_NUMERIC_POST_PROMPT


def _ladder_choice(question: str, options: Sequence[str]) -> str:
    return _ladder_pre(question, options) + "\n" + SPATIALLADDER_MC_POST_PROMPT


@dataclass(frozen=True)
class PromptTemplate:
    """One family's prompt forms. ``options`` are already lettered ("A. sofa").

    Attributes:
        name: the family's name (a value of ``answer.prompt_template``).
        numeric: question -> prompt, for the numeric VSI-Bench types.
        choice: (question, options) -> prompt, for the multiple-choice types.
        open: (question, options or ()) -> prompt, for free-form questions.
        answer_tags: the family asks for the answer inside ``<answer> </answer>``.
    """

    name: str
    numeric: Callable[[str], str]
    choice: Callable[[str, Sequence[str]], str]
    open: Callable[[str, Sequence[str]], str]
    answer_tags: bool = False


TEMPLATES: dict[str, PromptTemplate] = {
    SPATIAL_MLLM_V1_1: PromptTemplate(SPATIAL_MLLM_V1_1, _v1_1_numeric, _v1_1_choice, _v1_1_open),
    SPATIAL_MLLM_V1_0: PromptTemplate(
        SPATIAL_MLLM_V1_0, _v1_0_numeric, _v1_0_choice, _v1_0_open, answer_tags=True
    ),
    LMMS_EVAL: PromptTemplate(LMMS_EVAL, _lmms_numeric, _lmms_choice, _lmms_open),
    SPATIALLADDER: PromptTemplate(
        SPATIALLADDER, _ladder_numeric, _ladder_choice, _ladder_pre, answer_tags=True
    ),
}
"""Every prompt family by name."""


PLAIN_QWEN_LAYOUT = "qwen2.5-vl"
"""A plain Qwen2.5-VL checkpoint's layout (:mod:`spatial_mllm_ros.model.configuration`)."""


def template_for_layout(layout: str) -> str:
    """The family a checkpoint of ``layout`` (``v1.0``, ``v1.1`` or ``qwen2.5-vl``) was
    evaluated with; for ``qwen2.5-vl`` the family of VST and SenseNova-SI, ``lmms-eval``."""
    if layout == "v1.0":
        return SPATIAL_MLLM_V1_0
    if layout == "v1.1":
        return SPATIAL_MLLM_V1_1
    if layout == PLAIN_QWEN_LAYOUT:
        return LMMS_EVAL
    raise ValueError(
        f"unknown checkpoint layout {layout!r}; expected 'v1.0', 'v1.1' or {PLAIN_QWEN_LAYOUT!r}"
    )
