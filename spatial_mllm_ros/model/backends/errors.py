"""Errors of the vision backends (ONNX Runtime and TensorRT encoders, the engine cache)."""

from __future__ import annotations

from spatial_mllm_ros.model.errors import ModelError


class BackendError(ModelError):
    """Base class of vision backend errors."""


class BackendUnavailableError(BackendError):
    """The backend's package, execution provider or GPU is not present on this machine."""


class EngineBuildError(BackendError):
    """An engine (or an onnxruntime session) could not be built from an ONNX graph."""


class EngineCacheError(BackendError):
    """A cached engine is unusable: corrupt, truncated, or built for another key."""


class OutsideProfileError(BackendError):
    """A clip's frame count lies outside the engine's optimisation profile."""
