"""Errors of the answering stage."""

from __future__ import annotations


class AnsweringError(Exception):
    """Base class of answering errors."""


class QueueClosedError(AnsweringError):
    """A question was submitted to a worker that has been stopped."""


class ModelProcessError(AnsweringError):
    """The model process failed to start, failed a request, or died."""


class ModelBusyError(AnsweringError):
    """The model server is saturated (every replica at its limit, or this robot at its
    per-client cap): the question is answered BUSY at once."""


class RemoteModelError(ModelProcessError):
    """The model server cannot be reached, refused the request, or lost it (a replica died
    mid-answer): the question is answered MODEL_ERROR with this cause."""
