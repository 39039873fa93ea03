"""Errors of the VSI-Bench runner (:mod:`spatial_mllm_ros.benchmark`).

Two scopes: a :class:`DatasetError` ends the run (nothing can be answered: the parquet or the
dataset card cannot be read, the output cannot be resumed); a :class:`QuestionInputError` is
one question's (or one scene's) bad input -- a missing or corrupt video, an unknown question
type -- reported for those questions while the others are answered.
"""

from __future__ import annotations


class BenchmarkError(Exception):
    """Base class of the errors of :mod:`spatial_mllm_ros.benchmark`."""


class DatasetError(BenchmarkError):
    """The benchmark cannot be read at all: no or unreadable parquet, a dataset card whose
    YAML names no usable files, columns missing."""


class OutputError(BenchmarkError):
    """The output directory cannot be written or holds results of other settings."""


class QuestionInputError(BenchmarkError):
    """One question cannot be asked: its type is unknown, its scene has no readable video or
    frame folder, or too few frames for the frame count asked."""


class VideoError(QuestionInputError):
    """A scene's video or frame folder is missing, cannot be decoded, or has too few frames."""
