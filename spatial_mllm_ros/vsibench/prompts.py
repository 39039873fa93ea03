"""VSI-Bench question types, prompts, a question-type heuristic and question validation.

:func:`build_prompt` words a question in one checkpoint family's form
(:mod:`spatial_mllm_ros.vsibench.templates`: ``spatial-mllm-v1.1`` by default,
``spatial-mllm-v1.0``, or lmms-eval's ``lmms-eval``). VSI-Bench options already carry their
letter ("A. sofa"); such options are used verbatim, others are lettered here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from spatial_mllm_ros.vsibench.errors import InvalidQuestionError, UnknownQuestionTypeError
from spatial_mllm_ros.vsibench.templates import (
    DEFAULT_TEMPLATE,
    TEMPLATES,
)

OPEN_TYPE = "open"
"""Free-form question: no VSI-Bench post-prompt, not scored."""

NUMERIC_TYPES: tuple[str, ...] = (
    "object_counting",
    "object_abs_distance",
    "object_size_estimation",
    "room_size_estimation",
)
"""VSI-Bench numeric-answer ("NA") types, scored with mean relative accuracy."""

REL_DIRECTION_DIFFICULTIES: tuple[str, ...] = (
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
)
"""VSI-Bench's three relative-direction difficulties (averaged into ``object_rel_direction``)."""

MULTIPLE_CHOICE_TYPES: tuple[str, ...] = (
    "object_rel_direction",
    *REL_DIRECTION_DIFFICULTIES,
    "object_rel_distance",
    "route_planning",
    "obj_appearance_order",
)
"""Multiple-choice ("MCA") types, scored by exact match of the option letter.

``object_rel_direction`` (no difficulty) is this project's type for operators' questions and
generated scenes; VSI-Bench itself only has the three difficulty variants.
"""

QUESTION_TYPES: tuple[str, ...] = (*NUMERIC_TYPES, *MULTIPLE_CHOICE_TYPES, OPEN_TYPE)
"""Every accepted question type."""

OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LETTERED_OPTION = re.compile(r"^([A-Z])\.\s")
_SPECIAL_TOKEN = re.compile(r"<\|[^<>|]*\|>")
_ALLOWED_CONTROL = frozenset("\n\t")


def check_question_type(question_type: str) -> str:
    """Return ``question_type`` if known, else raise :class:`UnknownQuestionTypeError`."""
    if question_type not in QUESTION_TYPES:
        raise UnknownQuestionTypeError(
            f"unknown question type {question_type!r}; expected one of {', '.join(QUESTION_TYPES)}"
        )
    return question_type


def is_multiple_choice(question_type: str) -> bool:
    """True for the multiple-choice types (raises on unknown types)."""
    return check_question_type(question_type) in MULTIPLE_CHOICE_TYPES


def is_numeric(question_type: str) -> bool:
    """True for the numeric-answer types (raises on unknown types)."""
    return check_question_type(question_type) in NUMERIC_TYPES


def format_options(options: Sequence[str]) -> list[str]:
    """Options as they appear in the prompt, one per line.

    Options that all already start with their letter in order ("A. sofa", "B. chair") are kept
    verbatim (VSI-Bench's form); otherwise each option is prefixed with "A. ", "B. ", ...

    Raises:
        InvalidQuestionError: fewer than two options, more than 26, or an empty option.
    """
    if isinstance(options, str):
        raise InvalidQuestionError("options must be a sequence of strings, not one string")
    opts = [str(o).strip() for o in options]
    if len(opts) < 2 or len(opts) > len(OPTION_LETTERS):
        raise InvalidQuestionError(f"expected 2 to 26 options, got {len(opts)}")
    if any(not o for o in opts):
        raise InvalidQuestionError("an option is empty")
    for o in opts:
        _check_characters(o, "option")
    lettered = all(
        (m := _LETTERED_OPTION.match(o)) is not None and m.group(1) == OPTION_LETTERS[i]
        for i, o in enumerate(opts)
    )
    if lettered:
        return opts
    return [f"{OPTION_LETTERS[i]}. {o}" for i, o in enumerate(opts)]


def option_text(option: str) -> str:
    """The text of an option without its "A. " letter prefix."""
    m = _LETTERED_OPTION.match(option.strip())
    return option.strip()[m.end() :].strip() if m else option.strip()


def build_prompt(
    question: str,
    question_type: str,
    options: Sequence[str] | None = None,
    template: str = DEFAULT_TEMPLATE,
) -> str:
    """The user text of a question in the form of one checkpoint family.

    Args:
        question: the question text (used as given; validate it first with
            :func:`validate_question`).
        question_type: one of :data:`QUESTION_TYPES`.
        options: the choices of a multiple-choice question ("A. sofa" or plain "sofa"); ignored
            for numeric types (as VSI-Bench does); added in an ``Options:`` block for ``open``.
        template: a name of :data:`~spatial_mllm_ros.vsibench.templates.TEMPLATES`.

    Returns:
        The prompt text, exactly as the family's reference evaluation builds it (see
        :mod:`spatial_mllm_ros.vsibench.templates`).

    Raises:
        UnknownQuestionTypeError: unknown type.
        InvalidQuestionError: a multiple-choice question without at least two options.
        ValueError: unknown template.
    """
    check_question_type(question_type)
    try:
        form = TEMPLATES[template]
    except KeyError as err:
        raise ValueError(
            f"unknown prompt template {template!r}; expected one of {', '.join(TEMPLATES)}"
        ) from err
    if question_type in NUMERIC_TYPES:
        return form.numeric(question)
    if question_type in MULTIPLE_CHOICE_TYPES:
        if options is None:
            raise InvalidQuestionError(f"question type {question_type!r} needs options")
        return form.choice(question, format_options(options))
    return form.open(question, format_options(options) if options else ())


# --- heuristic classification ------------------------------------------------------------------

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "obj_appearance_order",
        re.compile(
            r"\b(appear(s|ed|ance)?|seen|see|saw|show(s|n|ed)?( up)?)\b"
            r".*\b(first|order|before|after|earliest|last)\b"
            r"|\b(first|order|earliest)\b.*\b(appear(s|ed|ance)?|seen|saw|show(s|n|ed)? up)\b"
        ),
    ),
    (
        "route_planning",
        re.compile(
            r"\b(route|navigate|path|directions?|way)\b.*\b(from|to|get)\b"
            r"|\bhow (do|can|should|would) (i|we|you|the robot) (get|go|walk|reach)\b"
            r"|\bturn (left|right|back)\b"
        ),
    ),
    (
        "object_rel_direction",
        re.compile(
            r"\b(to|on) (my|the|your) (left|right)\b"
            r"|\bleft or (the )?right\b|\bright or (the )?left\b"
            r"|\b(front|back)[- ](left|right)\b|\bbehind (me|you)\b|\bin front of (me|you)\b"
            r"|\bfacing\b.*\b(left|right|behind|front|back)\b"
            r"|\b(stand|standing|stood|sit|sitting)\b.*\b(left|right|behind)\b"
        ),
    ),
    (
        "object_rel_distance",
        re.compile(
            r"\b(which|what)\b.*\b(closer|closest|nearer|nearest|farther|farthest|further|furthest)\b"
            r"|\b(closer|closest|nearer|nearest|farther|farthest|further|furthest)\b.*\bor\b"
        ),
    ),
    (
        "room_size_estimation",
        re.compile(
            r"\b(size|area|square (meters?|metres?|feet)|how (big|large))\b"
            r".*\b(room|space|apartment|house|floor)\b"
            r"|\b(room|space|apartment|house|floor)\b"
            r".*\b(size|area|square (meters?|metres?|feet)|how (big|large))\b"
        ),
    ),
    (
        "object_counting",
        re.compile(r"\bhow many\b|\bnumber of\b|\bcount\b"),
    ),
    (
        "object_size_estimation",
        re.compile(
            r"\bhow (big|large|tall|long|wide|high|deep|small)\b"
            r"|\b(size|dimensions?|height|length|width)\b"
        ),
    ),
    (
        "object_abs_distance",
        re.compile(
            r"\bhow far\b|\bdistance\b|\bhow (close|near)\b|\bmeters? (from|between|away)\b"
        ),
    ),
)
_NUMERIC_OR_OPEN = frozenset((*NUMERIC_TYPES, OPEN_TYPE))


def infer_question_type(question: str, options: Sequence[str] | None = None) -> str:
    """Guess the VSI-Bench type of an operator's free-form question (keyword heuristics).

    Rules are tried in this order, the first match wins: appearance order, route planning,
    relative direction, relative distance ("which ... closer"), room size, counting, object size,
    absolute distance; otherwise ``open``. With options, numeric rules are skipped (only a
    multiple-choice type or ``open`` is returned). Without options a multiple-choice type may
    still be returned: the caller must then supply options, or ask it as ``open``.

    Examples: "how many chairs are in this room?" -> ``object_counting``; "how far is the sofa
    from the stove?" -> ``object_abs_distance``; "if I stand by the door facing the TV, is the
    table to my left?" -> ``object_rel_direction``.
    """
    text = " ".join(question.lower().split())
    for qtype, pattern in _RULES:
        if not pattern.search(text):
            continue
        if options and qtype in _NUMERIC_OR_OPEN:
            continue
        return qtype
    return OPEN_TYPE


# --- validation --------------------------------------------------------------------------------


def _check_characters(text: str, what: str) -> None:
    for ch in text:
        cat = unicodedata.category(ch)
        if (cat == "Cc" and ch not in _ALLOWED_CONTROL) or cat == "Cs":
            raise InvalidQuestionError(f"{what} contains control character U+{ord(ch):04X}")
    m = _SPECIAL_TOKEN.search(text)
    if m:
        raise InvalidQuestionError(f"{what} contains the special-token text {m.group(0)!r}")


def validate_question(question: str, max_chars: int) -> str:
    """Check an operator's question and return it stripped of surrounding whitespace.

    Accepted: a ``str`` of 1..``max_chars`` characters after stripping; newlines and tabs are
    allowed, other control characters (Unicode category Cc, and lone surrogates) are not, nor is
    special-token text such as ``<|im_end|>`` (it would break the chat template).

    Raises:
        InvalidQuestionError: not a string, empty or whitespace only, longer than ``max_chars``,
            or containing forbidden characters.
        ValueError: ``max_chars`` < 1.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    if not isinstance(question, str):
        raise InvalidQuestionError(f"question must be a string, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise InvalidQuestionError("question is empty")
    if len(text) > max_chars:
        raise InvalidQuestionError(f"question has {len(text)} characters, more than {max_chars}")
    _check_characters(text, "question")
    return text
