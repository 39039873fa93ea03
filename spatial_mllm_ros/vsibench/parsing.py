"""Turning a generated answer into a number or an option letter.

Two kinds of parser live here, for two purposes:

- scoring rules, verbatim from the reference evaluations, so that scores compare with published
  ones (:func:`prediction_token` picks the one of a prompt family):
  :func:`vsi_prediction_token` is lmms-eval's ``fuzzy_matching``
  (``text.split(" ")[0].rstrip(".").strip()``); :func:`spatial_mllm_clean_text` is
  Spatial-MLLM's ``clean_text`` (the last ``<answer>...</answer>`` block, or the whole text;
  newlines to spaces, whitespace collapsed, stripped, a trailing "." dropped, lower case; the
  v1.0 branch's variant drops a newline that follows white space instead of collapsing);
  :func:`spatialladder_token` is SpatialLadder's (the first ``<answer>`` block, its
  multiple-choice ``fuzzy_matching``);
- :func:`parse_answer`, a lenient reader for the live node and reports, documented below. It
  first reduces the text to its answer: a ``<think>...</think>`` part is dropped and the last
  ``<answer>...</answer>`` block, when there is one, is the answer (the v1.0 prompts ask for
  those tags).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from spatial_mllm_ros.vsibench.prompts import (
    MULTIPLE_CHOICE_TYPES,
    NUMERIC_TYPES,
    OPTION_LETTERS,
    check_question_type,
    option_text,
)
from spatial_mllm_ros.vsibench.templates import (
    LMMS_EVAL,
    SPATIAL_MLLM_V1_0,
    SPATIALLADDER,
    TEMPLATES,
)

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)


def vsi_prediction_token(text: str) -> str:
    """VSI-Bench's prediction token: ``text.split(" ")[0].rstrip(".").strip()``.

    Exactly the reference rule, including its quirks: the split is on the space character only
    (so ``" 3"`` gives ``""`` and ``"3\\nmeters"`` gives ``"3\\nmeters"``), and the trailing "."
    is removed before the surrounding whitespace (so ``"B.\\n"`` gives ``"B."``).
    """
    return text.split(" ")[0].rstrip(".").strip()


def spatial_mllm_clean_text(text: str, v1_0: bool = False) -> str:
    """Spatial-MLLM's ``clean_text``: the comparable form of an answer (see module docstring).

    ``v1_0`` selects the ``v1.0`` branch's newline rule: a newline after white space is
    removed, any other becomes a space, and runs of spaces are kept.
    """
    blocks = _ANSWER_TAG.findall(text)
    cleaned = blocks[-1] if blocks else text
    for char in ("\n", "\r"):
        if v1_0:
            cleaned = re.sub(r"(?<=\s)" + re.escape(char), "", cleaned)
            cleaned = re.sub(r"(?<!\s)" + re.escape(char), " ", cleaned)
        else:
            cleaned = cleaned.replace(char, " ")
    if not v1_0:
        cleaned = re.sub(r"\s+", " ", cleaned)
    return cleaned.strip().rstrip(".").lower()


_LADDER_LETTER = re.compile(r"^[A-D]\.?$")


def spatialladder_token(text: str) -> str:
    """SpatialLadder's reading of an answer (``eval_spld``: ``extract_answer_text`` when the
    text has ``<answer>`` -- the first block stripped, ``"None"`` when it is not closed --
    then ``"Answer:"`` removed and ``fuzzy_matching``: a first space-separated word ``A``..``D``
    (a "." allowed) is the letter, else the whole text stripped).  Its numeric rule (the first
    number word or number anywhere) is not reproduced: the evaluator reads numbers from this
    token as from Spatial-MLLM's."""
    if "<answer>" in text:
        match = _ANSWER_TAG.search(text)
        text = match.group(1).strip() if match else "None"
    text = text.replace("Answer:", "")
    first = _LADDER_LETTER.search(text.split(" ")[0].strip())
    return first.group(0).rstrip(".").upper().strip() if first else text.strip()


def prediction_token(text: str, template: str = LMMS_EVAL) -> str:
    """The scoring rule of the evaluation that goes with prompt family ``template``:
    lmms-eval's :func:`vsi_prediction_token`, SpatialLadder's :func:`spatialladder_token`,
    or Spatial-MLLM's :func:`spatial_mllm_clean_text` for the ``spatial-mllm-*`` families."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown prompt template {template!r}")
    if template == LMMS_EVAL:
        return vsi_prediction_token(text)
    if template == SPATIALLADDER:
        return spatialladder_token(text)
    return spatial_mllm_clean_text(text, v1_0=template == SPATIAL_MLLM_V1_0)


def answer_text(text: str) -> str:
    """The answer part of a generated text: without a ``<think>`` part (also an unclosed one),
    and the content of the last ``<answer>...</answer>`` block when there is one; stripped."""
    without_thought = _THINK.sub(" ", text)
    blocks = _ANSWER_TAG.findall(without_thought)
    return (blocks[-1] if blocks else without_thought).strip()


@dataclass(frozen=True)
class ParsedAnswer:
    """A generated answer read leniently.

    Attributes:
        text: the answer text, stripped.
        numeric_value: the number read from the answer; NaN when none (always NaN for
            multiple-choice types).
        option: the option letter "A".."Z" (upper case) or "" when none (always "" for numeric
            types).
    """

    text: str
    numeric_value: float
    option: str

    @property
    def has_number(self) -> bool:
        return not math.isnan(self.numeric_value)


# A number: optional sign, then comma thousands groups (exactly three digits each), or digits with
# an optional '.'/',' decimal part, or a bare '.5'; an optional exponent.  A unit may follow
# directly ("2.4m"); a letter or '.' may not precede it ("x3" is not a number).
_NUMBER = re.compile(
    r"(?<![\w.])([-+]?)(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?|\.\d+)(?:[eE]([-+]?\d+)(?![\w]))?"
)
_WORD_NUMBERS: dict[str, int] = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_WORD_NUMBER = re.compile(r"(?<![\w-])(" + "|".join(_WORD_NUMBERS) + r"|a dozen|no|none)(?![\w-])")


def parse_number(text: str) -> float:
    """The first number in ``text``; NaN if none.

    Accepted: "3", "-2", "3.5 meters", "about 2.4m" (a unit glued to the number is fine),
    ".5", "1e3", "1,250" (comma thousands groups of exactly three digits) -> 1250, "2,5"
    (decimal comma) -> 2.5; else the first English number word "zero".."twenty" (also "a dozen"
    -> 12, "no"/"none" -> 0) when the text holds no digits. Not accepted: fractions ("1/2"),
    number words above twenty, infinities and NaN.
    """
    m = _NUMBER.search(text.replace("\u2212", "-"))
    if m is not None:
        sign, body, exponent = m.group(1), m.group(2), m.group(3)
        if (
            "," in body
            and "." not in body
            and re.fullmatch(r"\d+,\d+", body)
            and len(body) - body.index(",") != 4
        ):
            body = body.replace(",", ".")  # decimal comma: "2,5"
        else:
            body = body.replace(",", "")  # thousands groups: "1,250"
        value = float(body + ("e" + exponent if exponent else ""))
        value = -value if sign == "-" else value
        return value if math.isfinite(value) else math.nan
    if re.search(r"\d", text):
        return math.nan
    w = _WORD_NUMBER.search(text.lower())
    if w is None:
        return math.nan
    word = w.group(1)
    if word == "a dozen":
        return 12.0
    if word in ("no", "none"):
        return 0.0
    return float(_WORD_NUMBERS[word])


def _letters(options: Sequence[str] | None) -> str:
    return OPTION_LETTERS[: len(options)] if options else OPTION_LETTERS[:4]


_ANSWER_IS = re.compile(
    r"\b(?i:answer)\s*(?:(?i:is)|:)?\s*:?\s*[\(\[]?"
    r"(?:([A-Z])\b(?![\w'])|([a-z])(?=[\)\]\.:,]?\s*$))"
)
_NORMALISE = re.compile(r"[^\w\s-]")


def _norm(text: str) -> str:
    return " ".join(_NORMALISE.sub(" ", text.lower()).split())


def parse_option(text: str, options: Sequence[str] | None = None) -> str:
    """The option letter an answer names, or "".

    Accepted (letters limited to the options' count, "A".."D" without options): "B", "b", "B.",
    "(B)", "[B]", "B)", "B:", "B. sofa", "B sofa" (upper case only), "Answer: B",
    "The answer is B"; else, with options, the option's text itself ("sofa", case and
    punctuation ignored), or the only option whose text occurs in the answer (when several
    occur, the one whose text contains all the others).
    """
    letters = _letters(options)
    s = text.strip()
    m = re.match(r"^[\(\[]?([A-Za-z])(?:[\)\]\.:,]|$)", s)
    if m is None:
        m = re.match(r"^([A-Z])\s", s)  # "B sofa"; lower case would be an article ("a sofa")
    if m is None:
        m = _ANSWER_IS.search(s)
    letter = next((g for g in (m.groups() if m else ()) if g), "").upper()
    if letter and letter in letters:
        return letter
    if not options:
        return ""
    answer = _norm(s)
    if not answer:
        return ""
    texts = [_norm(option_text(o)) for o in options]
    for i, t in enumerate(texts):
        if t and t == answer:
            return OPTION_LETTERS[i]
    found = [
        i
        for i, t in enumerate(texts)
        if t and re.search(r"(?<![\w-])" + re.escape(t) + r"(?![\w-])", answer)
    ]
    found = [i for i in found if not any(j != i and texts[i] in texts[j] for j in found)]
    return OPTION_LETTERS[found[0]] if len(found) == 1 else ""


def parse_answer(
    text: str, question_type: str, options: Sequence[str] | None = None
) -> ParsedAnswer:
    """Read a generated answer leniently (see :func:`parse_number` and :func:`parse_option`).

    The text is first reduced by :func:`answer_text` (``<think>`` dropped, ``<answer>`` tags
    unwrapped); ``ParsedAnswer.text`` is that answer. Numeric types get only
    ``numeric_value``; multiple-choice types only ``option``; ``open`` gets both when present
    (the option only when ``options`` are given).

    Raises:
        UnknownQuestionTypeError: unknown ``question_type``.
    """
    check_question_type(question_type)
    stripped = answer_text(text)
    value = math.nan
    option = ""
    if question_type not in MULTIPLE_CHOICE_TYPES:
        value = parse_number(stripped)
    if question_type not in NUMERIC_TYPES and (question_type in MULTIPLE_CHOICE_TYPES or options):
        option = parse_option(stripped, options)
    return ParsedAnswer(text=stripped, numeric_value=value, option=option)
