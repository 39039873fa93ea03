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


class FrameNotInBufferError(SamplingError, KeyError):
    """No frame with the requested stamp is held by the buffer."""

    def __str__(self) -> str:
        return str(self.args[0])
