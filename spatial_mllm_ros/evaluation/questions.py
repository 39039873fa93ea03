"""The questions file: JSON Lines, one question per line.

Schema of one line (a JSON object; blank lines are skipped)::

    {"id": "q1" | 7,                       # required, str or int, unique in the file
     "question": "How many chairs ...?",   # required, non-empty string
     "question_type": "object_counting",   # required, one of answers.prompts.QUESTION_TYPES
     "options": ["A. sofa", "B. chair"],   # multiple-choice types: required, >= 2 strings;
                                           #   numeric types: absent, null or []
                                           #   open: optional
     "ground_truth": 4,                    # multiple choice: an option letter ("B", any case);
                                           #   numeric: a number or numeric string, finite, > 0;
                                           #   open: optional string or null
     "bag_time_s": 12.5,                   # optional: seconds from the bag's first message up
                                           #   to which the robot has seen the scene
     "until_stamp_ns": 1700000000000000000 # optional: the same as an absolute stamp (ns);
                                           #   takes precedence over bag_time_s
    }

Any other field is kept in :attr:`Question.extra` (e.g. VSI-Bench's ``dataset``,
``scene_name``) and written back by :func:`write_questions`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spatial_mllm_ros.evaluation.errors import QuestionsFileError
from spatial_mllm_ros.vsibench.prompts import (
    MULTIPLE_CHOICE_TYPES,
    NUMERIC_TYPES,
    OPTION_LETTERS,
    QUESTION_TYPES,
)

KNOWN_FIELDS = (
    "id",
    "question",
    "question_type",
    "options",
    "ground_truth",
    "bag_time_s",
    "until_stamp_ns",
)


@dataclass(frozen=True)
class Question:
    """One evaluation question (see the module docstring for the fields' rules).

    Attributes:
        ground_truth: multiple choice: the option letter, upper case; numeric: float;
            open: str or None.
        options: the options as given, or None.
        line: 1-based line in the file it was read from (0 if built in code).
    """

    id: str | int
    question: str
    question_type: str
    ground_truth: str | float | None
    options: tuple[str, ...] | None = None
    bag_time_s: float | None = None
    until_stamp_ns: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    line: int = 0

    def cutoff_stamp_ns(self, bag_start_ns: int) -> int | None:
        """Absolute stamp (ns) up to which frames may be used; None = the whole bag."""
        if self.until_stamp_ns is not None:
            return self.until_stamp_ns
        if self.bag_time_s is not None:
            return bag_start_ns + round(self.bag_time_s * 1e9)
        return None

    def to_json_dict(self) -> dict[str, Any]:
        """The line's JSON object (optional fields omitted when unset)."""
        d: dict[str, Any] = dict(self.extra)
        d.update(id=self.id, question=self.question, question_type=self.question_type)
        if self.options is not None:
            d["options"] = list(self.options)
        if self.ground_truth is not None:
            d["ground_truth"] = self.ground_truth
        if self.bag_time_s is not None:
            d["bag_time_s"] = self.bag_time_s
        if self.until_stamp_ns is not None:
            d["until_stamp_ns"] = self.until_stamp_ns
        return d


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class _Line:
    """Where a line of a questions file is (``path``, 1-based ``line``), to name in errors."""

    path: str
    line: int

    def error(self, detail: str, fld: str | None = None) -> QuestionsFileError:
        """The error for this line, naming the offending field ``fld``."""
        return QuestionsFileError(self.path, detail, line=self.line, field=fld)


def _json_object(line_text: str, at: _Line) -> dict[str, Any]:
    """The line's JSON object."""
    try:
        obj = json.loads(line_text)
    except json.JSONDecodeError as err:
        raise at.error(f"not valid JSON ({err.msg} at column {err.colno})") from err
    if not isinstance(obj, dict):
        raise at.error(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _question_id(obj: dict[str, Any], at: _Line) -> str | int:
    """``id``: a non-empty string or an integer (not a bool)."""
    qid = obj.get("id")
    if qid is None:
        raise at.error("missing", "id")
    if (
        isinstance(qid, bool)
        or not isinstance(qid, (str, int))
        or (isinstance(qid, str) and not qid.strip())
    ):
        raise at.error(f"must be a non-empty string or an integer, got {qid!r}", "id")
    return qid


def _question_text(obj: dict[str, Any], at: _Line) -> str:
    """``question``: a non-empty string."""
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise at.error("missing" if question is None else "must be a non-empty string",
                       "question")
    return question


def _question_type(obj: dict[str, Any], at: _Line) -> str:
    """``question_type``: one of :data:`QUESTION_TYPES`."""
    qtype = obj.get("question_type")
    if qtype not in QUESTION_TYPES:
        raise at.error(
            "missing"
            if qtype is None
            else f"unknown type {qtype!r} (expected one of {', '.join(QUESTION_TYPES)})",
            "question_type",
        )
    assert isinstance(qtype, str)
    return qtype


def _options(obj: dict[str, Any], qtype: str, at: _Line) -> tuple[str, ...] | None:
    """``options``: 2 to 26 non-empty strings for a multiple-choice type, none (absent, null
    or []) for a numeric type, optional for ``open``."""
    raw_options = obj.get("options")
    options: tuple[str, ...] | None = None
    if raw_options is not None:
        if not isinstance(raw_options, list) or not all(
            isinstance(o, str) and o.strip() for o in raw_options
        ):
            raise at.error("must be a list of non-empty strings", "options")
        options = tuple(raw_options)
    if qtype in MULTIPLE_CHOICE_TYPES:
        if options is None:
            raise at.error(f"required for multiple-choice type {qtype!r}", "options")
        if not 2 <= len(options) <= len(OPTION_LETTERS):
            raise at.error(f"expected 2 to 26 options, got {len(options)}", "options")
    elif qtype in NUMERIC_TYPES:
        if options:
            raise at.error(f"numeric type {qtype!r} takes no options", "options")
        options = None
    return options


def _option_letter(raw_gt: object, options: tuple[str, ...], at: _Line) -> str:
    """A multiple-choice ``ground_truth``: one of the options' letters (any case), upper
    case."""
    letters = OPTION_LETTERS[: len(options)]
    if (
        not isinstance(raw_gt, str)
        or raw_gt.strip().upper() not in letters
        or len(raw_gt.strip()) != 1
    ):
        raise at.error(
            f"must be one of the option letters {', '.join(letters)}, got {raw_gt!r}",
            "ground_truth",
        )
    return raw_gt.strip().upper()


def _ground_truth(obj: dict[str, Any], qtype: str, options: tuple[str, ...] | None,
                  at: _Line) -> str | float | None:
    """``ground_truth`` by type: an option letter, a finite number > 0, or an optional
    string (``open``)."""
    raw_gt = obj.get("ground_truth")
    if qtype in MULTIPLE_CHOICE_TYPES:
        assert options is not None
        return _option_letter(raw_gt, options, at)
    if qtype in NUMERIC_TYPES:
        value = _number(raw_gt)
        if value is None or not math.isfinite(value) or value <= 0.0:
            raise at.error(f"must be a finite number > 0, got {raw_gt!r}", "ground_truth")
        return value
    if raw_gt is not None and not isinstance(raw_gt, str):
        raise at.error(
            f"must be a string or null for open questions, got {raw_gt!r}", "ground_truth"
        )
    return raw_gt


def _bag_time_s(obj: dict[str, Any], at: _Line) -> float | None:
    """``bag_time_s``: seconds >= 0 (finite), or None when absent or null."""
    if obj.get("bag_time_s") is None:
        return None
    t = obj["bag_time_s"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
        raise at.error(f"must be a finite number of seconds >= 0, got {t!r}", "bag_time_s")
    return float(t)


def _until_stamp_ns(obj: dict[str, Any], at: _Line) -> int | None:
    """``until_stamp_ns``: an integer stamp >= 0 (ns), or None when absent or null."""
    if obj.get("until_stamp_ns") is None:
        return None
    u = obj["until_stamp_ns"]
    if isinstance(u, bool) or not isinstance(u, int) or u < 0:
        raise at.error(
            f"must be an integer number of nanoseconds >= 0, got {u!r}", "until_stamp_ns"
        )
    return u


def parse_question_line(line_text: str, line: int = 0, path: str = "<questions>") -> Question:
    """Parse and validate one line of a questions file.

    Raises:
        QuestionsFileError: naming ``path``, ``line`` and the offending field.
    """
    at = _Line(path, line)
    obj = _json_object(line_text, at)
    qid = _question_id(obj, at)
    question = _question_text(obj, at)
    qtype = _question_type(obj, at)
    options = _options(obj, qtype, at)
    return Question(
        id=qid,
        question=question,
        question_type=qtype,
        ground_truth=_ground_truth(obj, qtype, options, at),
        options=options,
        bag_time_s=_bag_time_s(obj, at),
        until_stamp_ns=_until_stamp_ns(obj, at),
        extra={k: v for k, v in obj.items() if k not in KNOWN_FIELDS},
        line=line,
    )


def load_questions(path: str | Path) -> list[Question]:
    """Read and validate a questions file (UTF-8 JSON Lines; blank lines skipped).

    Raises:
        QuestionsFileError: unreadable file, an invalid line (its number and field), a
            duplicate id (both line numbers), or a file without questions.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise QuestionsFileError(str(p), f"cannot read: {err}") from err
    questions: list[Question] = []
    seen: dict[str | int, int] = {}
    for number, line_text in enumerate(text.splitlines(), start=1):
        if not line_text.strip():
            continue
        q = parse_question_line(line_text, number, str(p))
        if q.id in seen:
            raise QuestionsFileError(
                str(p),
                f"duplicate id {q.id!r} (first on line {seen[q.id]})",
                line=number,
                field="id",
            )
        seen[q.id] = number
        questions.append(q)
    if not questions:
        raise QuestionsFileError(str(p), "no questions in file")
    return questions


def write_questions(path: str | Path, questions: Iterable[Question]) -> None:
    """Write questions as JSON Lines (UTF-8, one compact object per line, non-ASCII kept)."""
    p = Path(path)
    with p.open("w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q.to_json_dict(), ensure_ascii=False, allow_nan=False) + "\n")
