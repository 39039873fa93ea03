"""Errors of the core."""

from __future__ import annotations

import enum


class CoreError(Exception):
    """Base class of core errors."""


class RejectReason(enum.StrEnum):
    """Why an incoming message was not turned into a frame.

    The values are stable identifiers used as diagnostics keys.
    """

    UNKNOWN_ENCODING = "unknown_encoding"
    BAD_STEP = "bad_step"
    BAD_SIZE = "bad_size"
    EMPTY_IMAGE = "empty_image"
    OVERSIZED_IMAGE = "oversized_image"
    BAD_DEPTH_VALUES = "bad_depth_values"
    MISSING_INTRINSICS = "missing_intrinsics"
    BAD_INTRINSICS = "bad_intrinsics"
    BAD_POSE = "bad_pose"
    STAMP_BACKWARDS = "stamp_backwards"
    STAMP_FUTURE = "stamp_future"
    INVALID_STAMP = "invalid_stamp"
    DECODE_FAILED = "decode_failed"
    SIZE_MISMATCH = "size_mismatch"


class FrameRejected(CoreError):
    """A message could not be converted into a valid frame.

    Attributes:
        reason: machine-readable reason, used for per-reason counters.
        detail: human-readable explanation.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class EncodeError(CoreError, ValueError):
    """A frame cannot be encoded as a message (unsupported encoding, failed compression)."""


class RgbdDirError(CoreError, ValueError):
    """An RGB-D frame directory is missing, malformed, or cannot be written."""
