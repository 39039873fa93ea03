"""Errors of the VGGT geometry model."""

from __future__ import annotations


class VGGTError(Exception):
    """Base class of VGGT model errors."""


class VGGTConfigError(VGGTError, ValueError):
    """A :class:`~spatial_mllm_ros.model.vggt.config.VGGTConfig` is inconsistent."""


class VGGTInputError(VGGTError, ValueError):
    """Images, tokens or predictions given to the model have the wrong shape or values."""
