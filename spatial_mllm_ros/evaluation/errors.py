"""Errors of the evaluation subpackage."""

from __future__ import annotations


class EvaluationError(Exception):
    """Base class of errors raised by :mod:`spatial_mllm_ros.evaluation`."""


class MetricsError(EvaluationError, ValueError):
    """A record cannot be scored (unknown type, unusable ground truth, bad thresholds)."""


class QuestionsFileError(EvaluationError):
    """A questions file cannot be read or a line of it is invalid.

    Attributes:
        path: the file.
        line: 1-based line number, or None for file-level problems.
        field: the offending JSON field, or None.
        detail: what is wrong.
    """

    def __init__(
        self, path: str, detail: str, line: int | None = None, field: str | None = None
    ) -> None:
        where = path if line is None else f"{path}:{line}"
        what = f"field {field!r}: " if field is not None else ""
        super().__init__(f"{where}: {what}{detail}")
        self.path = path
        self.line = line
        self.field = field
        self.detail = detail


class ResultsFileError(EvaluationError):
    """``results.jsonl`` cannot be used: a malformed line (not the last one), or lines of
    another result format version."""


class ResumeMismatchError(EvaluationError):
    """The output directory holds results of a run with other settings."""
