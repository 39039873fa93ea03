"""Errors of the sampling subpackage."""

from __future__ import annotations


class SamplingError(Exception):
    """Base class of sampling errors."""


class UnknownStrategyError(SamplingError, KeyError):
    """A sampling strategy name is not registered."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown sampling strategy {name!r}; known strategies: {', '.join(known)}"
        )
        self.name = name
        self.known = known

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class InvalidInputError(SamplingError, ValueError):
    """Inputs of a sampling function are malformed (shapes, dtypes, k)."""


class UnusableGeometryError(SamplingError):
    """Predicted geometry gives no voxels to select on (nothing confident, flat bounding box,
    or not one prediction per candidate frame)."""
