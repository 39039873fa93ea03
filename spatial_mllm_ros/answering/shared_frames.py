"""Frames' colour pixels handed to the model process through shared memory, not the pipe.

Pickling a request's frames through a ``multiprocessing`` pipe copies every pixel twice in
the node (into the pickle, then in 64 KiB writes that each take the GIL back) and once more
in the child; for 8 frames of 640x480 RGB (7.4 MB) that is several milliseconds of the node's
GIL per question, taken from the camera callbacks. Here the node copies the pixels once into
one shared-memory segment (a numpy copy, which runs without the GIL), and the pipe carries
only the frames' metadata and where each image lies in the segment.

Node side: :class:`FrameSender` owns the segment (one per model process, grown when a request
needs more, reused otherwise; requests are serialised by the caller, so one segment suffices)
and unlinks it in :meth:`FrameSender.close`, or at the latest when the interpreter exits (a
node stopped by a signal never cleans up its model). Child side: :class:`FrameReceiver` attaches to
the segment a request names (kept attached until the name changes) and copies the pixels out,
so the frames it returns stay valid after the node reuses the segment. The child never
unlinks: a spawned child shares the node's ``multiprocessing`` resource tracker, which also
removes the segment should the node die without closing it.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from spatial_mllm_ros.core.frame import Frame

__all__ = ["FrameReceiver", "FrameSender", "PackedFrames"]

#: Images start at multiples of this many bytes in the segment.
ALIGN = 64
#: Smallest segment created (bytes): 16 MiB holds 16 frames of 640x480 RGB. Pages of a
#: segment are only backed by memory once written.
MIN_SEGMENT_BYTES = 16 << 20

_NO_PIXELS = np.zeros((0, 0, 3), dtype=np.uint8)


@dataclass(frozen=True)
class PackedFrames:
    """What the pipe carries for a request's frames.

    Attributes:
        segment: name of the shared-memory segment holding the pixels.
        frames: the frames without pixels (``rgb`` is an empty (0, 0, 3) array) and without
            depth, which the model does not use.
        offsets: byte offset of each frame's (H, W, 3) uint8 image in the segment.
        shapes: (H, W, 3) of each frame's image.
    """

    segment: str
    frames: tuple[Frame, ...]
    offsets: tuple[int, ...]
    shapes: tuple[tuple[int, int, int], ...]


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _remove(shm: shared_memory.SharedMemory) -> None:
    """Unmap and unlink ``shm`` (a finalizer: runs once, at close or at interpreter exit)."""
    try:
        shm.close()
    except BufferError:  # a view is still exported: the mapping goes with the process
        pass
    try:
        shm.unlink()
    except FileNotFoundError:  # already removed (e.g. by the resource tracker)
        pass


class FrameSender:
    """Node side: writes frames' pixels into the segment and describes them (not
    thread-safe: one request at a time)."""

    def __init__(self) -> None:
        self._shm: shared_memory.SharedMemory | None = None
        self._remove: weakref.finalize[[shared_memory.SharedMemory], FrameSender] | None = None

    @property
    def segment_name(self) -> str | None:
        """Name of the current segment (None before the first request and after close)."""
        return None if self._shm is None else self._shm.name

    def _segment(self, nbytes: int) -> shared_memory.SharedMemory:
        if self._shm is None or self._shm.size < nbytes:
            size = max(nbytes, MIN_SEGMENT_BYTES, 0 if self._shm is None else 2 * self._shm.size)
            self.close()
            self._shm = shared_memory.SharedMemory(create=True, size=size)
            self._remove = weakref.finalize(self, _remove, self._shm)  # also at exit
        return self._shm

    def pack(self, frames: Sequence[Frame]) -> PackedFrames:
        """Copy the frames' colour images into the segment; their description for the pipe.

        The segment's previous contents are overwritten: call again only once the child has
        answered the previous request.
        """
        images = [np.asarray(f.rgb, dtype=np.uint8) for f in frames]
        offsets, shapes, end = [], [], 0
        for img in images:
            if img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f"expected (H, W, 3) colour images, got shape {img.shape}")
            offsets.append(end)
            shapes.append((int(img.shape[0]), int(img.shape[1]), 3))
            end += _aligned(img.nbytes)
        shm = self._segment(max(end, 1))
        for img, offset, shape in zip(images, offsets, shapes, strict=True):
            dst = np.ndarray(shape, dtype=np.uint8, buffer=shm.buf, offset=offset)
            np.copyto(dst, img)
            del dst  # no view may outlive the segment (close() would fail on exported buffers)
        metadata = tuple(dataclasses.replace(f, rgb=_NO_PIXELS, depth_m=None) for f in frames)
        return PackedFrames(shm.name, metadata, tuple(offsets), tuple(shapes))

    def close(self) -> None:
        """Unmap and remove the segment (idempotent)."""
        remove, self._remove, self._shm = self._remove, None, None
        if remove is not None:
            remove()


class FrameReceiver:
    """Child side: frames with their pixels, copied out of the segment a request names."""

    def __init__(self) -> None:
        self._shm: shared_memory.SharedMemory | None = None

    def _attach(self, name: str) -> shared_memory.SharedMemory:
        if self._shm is None or self._shm.name != name:
            self.close()
            self._shm = shared_memory.SharedMemory(name=name)
        return self._shm

    def unpack(self, packed: PackedFrames) -> list[Frame]:
        """The frames of ``packed`` with (H, W, 3) uint8 images of their own (no depth)."""
        shm = self._attach(packed.segment)
        frames = []
        for meta, offset, shape in zip(packed.frames, packed.offsets, packed.shapes,
                                       strict=True):
            view = np.ndarray(shape, dtype=np.uint8, buffer=shm.buf, offset=offset)
            frames.append(dataclasses.replace(meta, rgb=view.copy()))
            del view
        return frames

    def close(self) -> None:
        """Unmap the segment (the node removes it)."""
        shm, self._shm = self._shm, None
        if shm is not None:
            shm.close()
