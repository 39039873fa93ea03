"""Errors of the answers subpackage."""

from __future__ import annotations


class AnswersError(Exception):
    """Base class of errors raised by :mod:`spatial_mllm_ros.vsibench`."""


class InvalidQuestionError(AnswersError, ValueError):
    """A question (or its options) cannot be asked: empty, too long, control characters..."""


class UnknownQuestionTypeError(AnswersError, ValueError):
    """A question type not in :data:`spatial_mllm_ros.vsibench.prompts.QUESTION_TYPES`."""


class BoxError(AnswersError, ValueError):
    """Invalid arguments to the box functions (never raised because of model text)."""
