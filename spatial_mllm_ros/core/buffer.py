"""The store the ingestor writes frames to, as a protocol.  Never imports rclpy.

:class:`~spatial_mllm_ros.core.ingest.Ingestor` holds its store as a :class:`FrameStore`;
the node's and the evaluator's store is the sampler's space-aware ``SpatialFrameBuffer``
(spatial_mllm_ros.sampling.online), which sits above core.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from spatial_mllm_ros.core.frame import Frame

__all__ = ["AddOutcome", "FrameStore", "SharedFrameStore"]


class AddOutcome(Protocol):
    """What a store did with one frame."""

    @property
    def admitted(self) -> bool:
        """True when the frame is now held."""
        ...

    @property
    def reason(self) -> str:
        """Short reason of the decision (a diagnostics key, e.g. ``redundant``)."""
        ...

    @property
    def evicted_count(self) -> int:
        """Frames evicted to respect the bounds."""
        ...


@runtime_checkable
class FrameStore(Protocol):
    """A bounded, thread-safe store of frames (the sampler's space-aware
    ``SpatialFrameBuffer``)."""

    def add(self, frame: Frame) -> AddOutcome:
        """Offer ``frame``; the store decides whether to keep it and what to evict."""
        ...

    def __len__(self) -> int: ...

    def clear(self) -> None:
        """Drop every frame (a new time base, ``clock.on_time_reset: clear``)."""
        ...

    @property
    def nbytes(self) -> int:
        """Bytes held by the frames' arrays."""
        ...


@runtime_checkable
class SharedFrameStore(FrameStore, Protocol):
    """A :class:`FrameStore` that several cameras write to (frames named by ``Frame.camera``)
    and that can drop one camera's frames alone."""

    def clear_camera(self, camera: str) -> None:
        """Drop every frame of ``camera`` (a new time base of that camera's streams); the
        other cameras' frames stay."""
        ...
