"""Errors of the answering stage."""

from __future__ import annotations


class AnsweringError(Exception):
    """Base class of answering errors."""


class QueueClosedError(AnsweringError):
    """A question was submitted to a worker that has been stopped."""


class ModelProcessError(AnsweringError):
    """The model process failed to start, failed a request, or died."""
