"""Errors of the synthetic-scene subpackage."""

from __future__ import annotations


class SyntheticError(Exception):
    """Base class of synthetic-scene errors."""


class SceneFormatError(SyntheticError, ValueError):
    """A scene directory or ground-truth file is missing or malformed."""
