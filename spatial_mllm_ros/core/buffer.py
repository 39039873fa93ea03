"""Rolling frame buffers.  Never imports rclpy.

:class:`FrameStore` is the protocol the node holds its buffer through, so that the sampler's
space-aware ``SpatialFrameBuffer`` (spatial_mllm_ros.sampling.online) drops in for the plain
:class:`FrameBuffer` here.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from spatial_mllm_ros.core.frame import Frame

__all__ = ["AddOutcome", "FifoOutcome", "FrameBuffer", "FrameStore"]


class AddOutcome(Protocol):
    """What a store did with one frame."""

    @property
    def admitted(self) -> bool:
        """True when the frame is now held."""
        ...

    @property
    def reason(self) -> str:
        """Short reason of the decision (a diagnostics key, e.g. ``fifo``, ``redundant``)."""
        ...

    @property
    def evicted_count(self) -> int:
        """Frames evicted to respect the bounds."""
        ...


@dataclass(frozen=True)
class FifoOutcome:
    """:class:`AddOutcome` of :class:`FrameBuffer`: always admitted; the evicted frames."""

    evicted: tuple[Frame, ...]
    admitted: bool = True
    reason: str = "fifo"

    @property
    def evicted_count(self) -> int:
        return len(self.evicted)


@runtime_checkable
class FrameStore(Protocol):
    """A bounded, thread-safe store of frames (:class:`FrameBuffer`, or the sampler's
    space-aware ``SpatialFrameBuffer``)."""

    def add(self, frame: Frame) -> AddOutcome:
        """Offer ``frame``; the store decides whether to keep it and what to evict."""
        ...

    def __len__(self) -> int: ...

    @property
    def nbytes(self) -> int:
        """Bytes held by the frames' arrays."""
        ...


class FrameBuffer:
    """Plain FIFO bounded by a frame count and a byte count (``Frame.nbytes``).

    Adding a frame evicts the oldest frames until both bounds hold.  A single frame larger
    than ``max_bytes`` is itself evicted at once (returned by :meth:`add`): the byte bound is
    never exceeded.
    """

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: collections.deque[Frame] = collections.deque()
        self._nbytes = 0
        self._lock = threading.Lock()

    def add(self, frame: Frame) -> FifoOutcome:
        evicted: list[Frame] = []
        with self._lock:
            self._frames.append(frame)
            self._nbytes += frame.nbytes
            while self._frames and (
                len(self._frames) > self.max_frames or self._nbytes > self.max_bytes
            ):
                old = self._frames.popleft()
                self._nbytes -= old.nbytes
                evicted.append(old)
        return FifoOutcome(tuple(evicted))

    def snapshot(self) -> tuple[Frame, ...]:
        with self._lock:
            return tuple(self._frames)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._nbytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._nbytes
