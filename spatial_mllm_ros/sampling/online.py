"""Rolling, space-aware frame buffer for a live camera stream.

Every incoming RGB-D frame is back-projected once (strided depth, vectorized) into a sorted
unique int64 voxel-key array at a **fixed** edge ``BufferConfig.voxel_size_m`` (the paper's
scene-adaptive edge, bbox-shortest-side / 20, needs the whole video; see
:mod:`spatial_mllm_ros.core.geometry`).  The union of the held frames' voxels and each voxel's
reference count (how many held frames see it) are kept incrementally by
:class:`~.union.VoxelUnion`, so no union is ever recomputed per frame.  A held frame's
**coverage share** is ``sum over its voxels of 1 / count``: its part of the union when every
voxel is split evenly among the frames that see it (the shares add up to the union's size).  A
frame with a large share sees much that few others see; greedy max coverage at selection time
wants such frames, and evicting the smallest share thins densely sampled places first while
keeping wide views and rarely seen corners.

* **Admission** (geometric frame): the number of voxels not in the union (``new_voxels``) is one
  ``searchsorted``; the frame is admitted (``new_coverage``) when ``new_voxels >=
  min_new_voxels`` and ``new_voxels >= min_new_fraction * |frame voxels|``, or (``interval``)
  when ``max_interval_s`` has passed since the last admitted geometric frame (keeps some
  temporal context when standing still).  Otherwise, **while the buffer has room** (frames and
  bytes) it is admitted all the same (``room``): a frame that adds no voxel still serves the
  ``uniform`` and ``scored`` strategies, the greedy's fill and the model's temporal context,
  and costs nothing while the bounds are not reached.  Once the buffer is full it
  **competes** (``share``): it is admitted only if, once inserted, some held geometric frame
  has a strictly smaller coverage share than its own -- that frame is then the first one
  evicted -- and is rejected (``redundant``) otherwise (ties go against the newcomer, so a
  static camera does not churn the buffer).  A full buffer thus holds the same kind of set
  as before (issue 16: the earlier rule rejected redundant frames while there was room, and
  the 15-frame shelf sequence kept 3 of its 15 frames).
* **Eviction** when over ``max_frames`` or ``max_bytes``: the geometric frame with the smallest
  coverage share (ties: fewer voxels, then the oldest).  A frame admitted by ``first``,
  ``new_coverage`` or ``interval`` is never the victim of its own add.  On long walkthroughs
  (>= 1000 frames) the ``coverage`` pick of 16 frames from the buffer covers at least as much
  of the whole stream as the paper's offline rule (greedy over 128 uniformly pre-sampled frames;
  ``benchmarks/bench_online_offline.py``, ``test/unit/test_online_offline.py``).
* **Colour-only frames** (no depth or no pose, e.g. a monocular camera or a folder of colour
  images) live in a bounded share of the buffer (``colour_only_share * max_frames`` frames).
  While that share and the buffer have room every one is admitted (``colour_only``); once
  either is full a frame closer than ``colour_min_interval_s`` to the last admitted
  colour-only frame is rejected (``colour_throttled``) and any other one is admitted and the
  colour-only frame closest in time to its predecessor is evicted (temporal thinning).  At
  selection time the ``coverage`` strategy runs max coverage over the geometric frames and
  fills the remaining slots with the ``scored`` rule over everything else (colour-only frames
  included).  A snapshot with no geometric frame
  at all can instead be selected on geometry the model predicts for it (:mod:`.predicted`).
* **Several cameras** (the ``cameras`` parameter) share the one buffer: their frames carry
  their camera's name (``Frame.camera``), poses in one world frame, and a frame is identified by
  ``(camera, stamp)`` (a rig's cameras may share stamps). The union counts the voxels seen by
  any camera, so admission, eviction and the ``coverage`` pick prefer whichever camera's view
  adds the most; the order the picks are handed to the model is
  :func:`~.selection.model_order`'s. A camera's new time base drops its frames alone
  (:meth:`SpatialFrameBuffer.clear_camera`).
* **Selection** works on an immutable :class:`~.selection.BufferSnapshot` (tuples of
  references; key arrays are read-only and never mutated), so a worker may select while camera
  callbacks keep adding (:func:`~.selection.select_on_snapshot`).

Why this rule (issue 11): the earlier rule admitted only frames with new voxels and evicted the
most redundant one (largest ``1 - exclusive / |voxels|``, oldest first among the many frames
with no exclusive voxel); on 1000-frame walkthroughs its pick could cover less of the stream
than the offline rule, since it dropped the wide views greedy wants.  Coverage shares keep them.

Cost per add: voxelization and one lookup; a frame that is inserted also updates the union
(its own voxels only), and once the buffer is full every add -- an eviction or a competition --
runs :meth:`~.union.VoxelUnion.smallest_share`, one gather over all held voxel references
(about 1 ms more per add for 256 frames of 640x480 depth at stride 8 on one core; see
``benchmarks/bench_sampling.py`` (b)).  All mutation happens under one lock; voxelization of an
incoming frame happens outside it.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import math
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros import params as P
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.geometry import frame_voxel_keys
from spatial_mllm_ros.sampling.errors import InvalidInputError
from spatial_mllm_ros.sampling.selection import BufferSnapshot, Selection, select_on_snapshot
from spatial_mllm_ros.sampling.strategies import union_size
from spatial_mllm_ros.sampling.union import BYTES_PER_REF, BYTES_PER_VOXEL, VoxelUnion

__all__ = [
    "AdmitDecision",
    "AdmitReason",
    "BufferConfig",
    "BufferSnapshot",
    "Selection",
    "SpatialFrameBuffer",
]

KeyArray = npt.NDArray[np.int64]
_NS = 1_000_000_000


@dataclass(frozen=True)
class BufferConfig:
    """Bounds and admission rule of a :class:`SpatialFrameBuffer`; defaults are the parameter
    schema's (``buffer.*``), the fields without a parameter are fixed rules.

    Attributes:
        max_frames: frames held at most (geometric + colour-only).
        max_bytes: bytes held at most (frame arrays + voxel keys + union bookkeeping).
        voxel_size_m: fixed voxel edge (metres) for the whole buffer.
        depth_stride: pixel stride when back-projecting depth (8 -> 80x60 points at 640x480).
        min_new_voxels: a geometric frame is admitted when it adds at least this many voxels ...
        min_new_fraction: ... and at least this fraction of its own voxels ...
        max_interval_s: ... or when this long has passed since the last admitted geometric
            frame (any other frame is admitted while the buffer has room, and competes by
            coverage share once it is full).
        max_depth_m: depth beyond this is ignored.
        colour_only_share: fraction of ``max_frames`` colour-only frames may occupy.
        colour_min_interval_s: minimum spacing of admitted colour-only frames once the
            buffer or the colour-only share is full (none while there is room).
    """

    max_frames: int = P.bound("buffer.max_frames")
    max_bytes: int = P.bound("buffer.max_bytes")
    voxel_size_m: float = P.bound("buffer.voxel_size_m")
    depth_stride: int = P.bound("buffer.depth_stride")
    min_new_voxels: int = P.bound("buffer.min_new_voxels")
    min_new_fraction: float = 0.0
    max_interval_s: float = P.bound("buffer.max_interval_s")
    max_depth_m: float = P.bound("buffer.max_depth_m")
    colour_only_share: float = P.bound("buffer.colour_only_share")
    colour_min_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if self.max_frames < 1 or self.max_bytes < 1:
            raise InvalidInputError("max_frames and max_bytes must be >= 1")
        if not self.voxel_size_m > 0 or self.depth_stride < 1:
            raise InvalidInputError("voxel_size_m must be > 0 and depth_stride >= 1")
        if not 0.0 <= self.colour_only_share <= 1.0 or not 0.0 <= self.min_new_fraction <= 1.0:
            raise InvalidInputError("colour_only_share and min_new_fraction must be in [0, 1]")

    @property
    def max_colour_frames(self) -> int:
        """Colour-only frames held at most."""
        return math.floor(self.colour_only_share * self.max_frames)


class AdmitReason(enum.StrEnum):
    """Why :meth:`SpatialFrameBuffer.add` admitted or rejected a frame; the values are stable
    identifiers used as diagnostics keys (``buffer.admit.<reason>``)."""

    # admitted, geometric
    FIRST = "first"
    NEW_COVERAGE = "new_coverage"
    INTERVAL = "interval"
    #: it adds too few voxels but the buffer had room
    ROOM = "room"
    #: a full buffer took it in place of a frame with a smaller share
    SHARE = "share"
    # admitted, colour-only
    COLOUR_ONLY = "colour_only"
    # rejected
    REDUNDANT = "redundant"
    COLOUR_THROTTLED = "colour_throttled"
    #: a second frame of one camera and stamp
    DUPLICATE_STAMP = "duplicate_stamp"
    TOO_LARGE = "too_large"
    COLOUR_SHARE_ZERO = "colour_share_zero"


@dataclass(frozen=True)
class AdmitDecision:
    """Outcome of :meth:`SpatialFrameBuffer.add`.

    ``reason`` is one of: ``first``, ``new_coverage``, ``interval``, ``room``, ``share``
    (admitted geometric; ``room``: it adds too few voxels but the buffer had room; ``share``: a
    full buffer took it in place of a frame with a smaller share),
    ``colour_only`` (admitted colour-only), ``redundant``, ``colour_throttled``,
    ``duplicate_stamp`` (a second frame of one camera and stamp), ``too_large``,
    ``colour_share_zero`` (rejected).
    """

    admitted: bool
    reason: AdmitReason
    new_voxels: int
    evicted_seqs: tuple[int, ...] = ()
    evicted_stamps_ns: tuple[int, ...] = ()

    @property
    def evicted_count(self) -> int:
        """Frames evicted by this add (the ``core.buffer.AddOutcome`` protocol)."""
        return len(self.evicted_stamps_ns)


class _Entry:
    __slots__ = ("frame", "keys", "nbytes", "slot")

    def __init__(self, frame: Frame, keys: KeyArray | None, slot: int) -> None:
        self.frame = frame
        self.keys = keys
        self.slot = slot
        self.nbytes = frame.nbytes + (0 if keys is None else int(keys.nbytes))


class SpatialFrameBuffer:
    """Bounded, thread-safe buffer of frames that keeps the stream's spatial coverage."""

    def __init__(self, config: BufferConfig | None = None) -> None:
        self.config = config or BufferConfig()
        self._lock = threading.Lock()
        self._reset()

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        cap = self.config.max_frames + 2
        self._entries: list[_Entry] = []
        self._stamps: list[int] = []
        self._free_slots: list[int] = list(range(cap - 1, -1, -1))
        self._by_slot: list[_Entry | None] = [None] * cap
        self._union = VoxelUnion(cap)
        self._frame_bytes = 0
        self._n_colour = 0
        self._last_geo_stamp: int | None = None
        self._last_colour_stamp: int | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes held: frame arrays, voxel keys and the union bookkeeping."""
        with self._lock:
            return self._nbytes_locked()

    def _nbytes_locked(self) -> int:
        return self._frame_bytes + self._union.nbytes

    @property
    def union_voxels(self) -> int:
        """Distinct voxels covered by the held frames."""
        with self._lock:
            return self._union.size

    def clear(self) -> None:
        """Drop every frame."""
        with self._lock:
            self._reset()

    def clear_camera(self, camera: str) -> None:
        """Drop every frame of ``camera`` (its new time base); the other cameras' frames, and
        the voxels they cover, stay. The admission intervals restart from the newest kept
        frame of each kind."""
        with self._lock:
            for entry in [e for e in self._entries if e.frame.camera == camera]:
                self._remove_entry(entry)
            geo = [e.frame.stamp_ns for e in self._entries if e.keys is not None]
            colour = [e.frame.stamp_ns for e in self._entries if e.keys is None]
            self._last_geo_stamp = max(geo, default=None)
            self._last_colour_stamp = max(colour, default=None)

    # ------------------------------------------------------------ entry lists
    def _insert_entry(self, entry: _Entry) -> None:
        i = bisect.bisect_right(self._stamps, entry.frame.stamp_ns)
        self._stamps.insert(i, entry.frame.stamp_ns)
        self._entries.insert(i, entry)
        self._frame_bytes += entry.nbytes
        self._by_slot[entry.slot] = entry
        if entry.keys is None:
            self._n_colour += 1
        else:
            self._union.insert(entry.keys, entry.slot, entry.frame.stamp_ns)

    def _remove_entry(self, entry: _Entry) -> None:
        i = self._entries.index(entry)
        del self._entries[i]
        del self._stamps[i]
        self._frame_bytes -= entry.nbytes
        if entry.keys is None:
            self._n_colour -= 1
        else:
            self._union.remove(entry.keys, entry.slot)
        self._by_slot[entry.slot] = None
        self._free_slots.append(entry.slot)

    def _find(self, camera: str, stamp_ns: int) -> _Entry | None:
        """The held frame of ``camera`` stamped ``stamp_ns`` (cameras of one rig may share
        stamps; a frame is identified by both)."""
        i = bisect.bisect_left(self._stamps, stamp_ns)
        while i < len(self._stamps) and self._stamps[i] == stamp_ns:
            if self._entries[i].frame.camera == camera:
                return self._entries[i]
            i += 1
        return None

    # --------------------------------------------------------------- eviction
    def _geo_victim(self, protect: _Entry | None, newcomer: _Entry | None = None) -> _Entry | None:
        """The geometric frame with the smallest coverage share (ties: fewer voxels, then the
        oldest; ``newcomer``, a frame competing for admission, loses every tie)."""
        slot = self._union.smallest_share(
            exclude=-1 if protect is None or protect.keys is None else protect.slot,
            newcomer=-1 if newcomer is None else newcomer.slot,
        )
        return None if slot < 0 else self._by_slot[slot]

    def _colour_victim(self, protect: _Entry | None) -> _Entry | None:
        colour = [e for e in self._entries if e.keys is None]
        if not colour:
            return None
        if len(colour) == 1:
            return None if colour[0] is protect else colour[0]
        best_gap: int | None = None
        victim: _Entry | None = None
        for a, b in itertools.pairwise(colour):
            gap = b.frame.stamp_ns - a.frame.stamp_ns
            if best_gap is None or gap < best_gap:
                best_gap, victim = gap, (a if b is protect else b)
        return victim

    def _over_bounds(self) -> bool:
        cfg = self.config
        return (
            len(self._entries) > cfg.max_frames
            or self._nbytes_locked() > cfg.max_bytes
            or self._n_colour > cfg.max_colour_frames
        )

    def _evict(self, protect: _Entry | None, newcomer: _Entry | None = None) -> list[_Entry]:
        """Evict until within bounds; ``protect`` is never evicted, ``newcomer`` (a competing
        frame, only with ``protect`` None) may be the first victim: then nothing else is."""
        evicted: list[_Entry] = []
        while self._over_bounds():
            n_geo = len(self._entries) - self._n_colour
            protected_geo = protect is not None and protect.keys is not None
            colour_first = self._n_colour > self.config.max_colour_frames or (
                n_geo - protected_geo <= 0
            )
            if colour_first:
                victim = self._colour_victim(protect)
                if victim is None:
                    victim = self._geo_victim(protect, newcomer)
            else:
                victim = self._geo_victim(protect, newcomer)
                if victim is None:
                    victim = self._colour_victim(protect)
            if victim is None:
                break
            self._remove_entry(victim)
            evicted.append(victim)
            if victim is newcomer:
                break
            if newcomer is not None:
                protect, newcomer = newcomer, None
        return evicted

    def _is_full(self, entry_bytes: int) -> bool:
        """Whether a geometric frame of ``entry_bytes`` (with its new union voxels) would push
        the buffer over a bound."""
        cfg = self.config
        return (
            len(self._entries) + 1 > cfg.max_frames
            or self._nbytes_locked() + entry_bytes > cfg.max_bytes
        )

    def _colour_full(self, entry_bytes: int) -> bool:
        """Whether a colour-only frame of ``entry_bytes`` would push the buffer or the
        colour-only share over a bound."""
        return self._n_colour + 1 > self.config.max_colour_frames or self._is_full(entry_bytes)

    # ------------------------------------------------------------------ public
    def add(self, frame: Frame) -> AdmitDecision:
        """Offer a frame; voxelizes it (outside the lock), admits or rejects, evicts if needed."""
        cfg = self.config
        keys = frame_voxel_keys(frame, cfg.voxel_size_m, cfg.depth_stride, cfg.max_depth_m)
        if keys is not None:
            keys.setflags(write=False)
        with self._lock:
            if self._find(frame.camera, frame.stamp_ns) is not None:
                return AdmitDecision(False, AdmitReason.DUPLICATE_STAMP, 0)
            entry_bytes = frame.nbytes + (0 if keys is None else keys.size * (8 + BYTES_PER_REF))
            if entry_bytes + (0 if keys is None else keys.size * BYTES_PER_VOXEL) > cfg.max_bytes:
                return AdmitDecision(False, AdmitReason.TOO_LARGE, 0)
            compete = False
            if keys is None:
                if cfg.max_colour_frames == 0:
                    return AdmitDecision(False, AdmitReason.COLOUR_SHARE_ZERO, 0)
                last = self._last_colour_stamp
                if (last is not None and frame.stamp_ns - last < cfg.colour_min_interval_s * _NS
                        and self._colour_full(entry_bytes)):
                    return AdmitDecision(False, AdmitReason.COLOUR_THROTTLED, 0)
                reason, new = AdmitReason.COLOUR_ONLY, 0
            else:
                new = self._union.count_new(keys)
                last = self._last_geo_stamp
                if last is None:
                    reason = AdmitReason.FIRST
                elif new >= cfg.min_new_voxels and new >= cfg.min_new_fraction * keys.size:
                    reason = AdmitReason.NEW_COVERAGE
                elif frame.stamp_ns - last >= cfg.max_interval_s * _NS:
                    reason = AdmitReason.INTERVAL
                elif self._is_full(entry_bytes + new * BYTES_PER_VOXEL):
                    reason, compete = AdmitReason.SHARE, True
                else:
                    reason = AdmitReason.ROOM
            entry = _Entry(frame, keys, self._free_slots.pop())
            self._insert_entry(entry)
            if compete:
                evicted = self._evict(None, newcomer=entry)
                if evicted and evicted[0] is entry:
                    evicted = []
                    if self._over_bounds():  # only by the union's grown arena or scratch
                        self._union.trim()
                        evicted = self._evict(None)
                    return AdmitDecision(
                        False,
                        AdmitReason.REDUNDANT,
                        new,
                        tuple(e.frame.seq for e in evicted),
                        tuple(e.frame.stamp_ns for e in evicted),
                    )
            else:
                evicted = self._evict(entry)
            if keys is None:
                self._last_colour_stamp = frame.stamp_ns
            else:
                self._last_geo_stamp = frame.stamp_ns
        return AdmitDecision(
            True,
            reason,
            new,
            tuple(e.frame.seq for e in evicted),
            tuple(e.frame.stamp_ns for e in evicted),
        )

    def snapshot(self, until_stamp_ns: int | None = None) -> BufferSnapshot:
        """Immutable view (references only; O(frames)).

        Args:
            until_stamp_ns: keep only frames captured at or before this stamp (a question
                asked at that time, replayed offline); the union is then recomputed over
                the kept frames.
        """
        with self._lock:
            snap = BufferSnapshot(
                tuple(e.frame for e in self._entries),
                tuple(e.keys for e in self._entries),
                self._union.size,
                self.config.voxel_size_m,
            )
        if until_stamp_ns is None:
            return snap
        keep = [i for i, f in enumerate(snap.frames) if f.stamp_ns <= until_stamp_ns]
        if len(keep) == len(snap.frames):
            return snap
        voxels = tuple(snap.voxel_sets[i] for i in keep)
        return BufferSnapshot(
            frames=tuple(snap.frames[i] for i in keep),
            voxel_sets=voxels,
            union_voxels=union_size(voxels, range(len(voxels))),
            voxel_size_m=snap.voxel_size_m,
        )

    def select(
        self, k: int, strategy: str = "coverage", snapshot: BufferSnapshot | None = None
    ) -> Selection:
        """Choose ``k`` frames with a named strategy on a snapshot (taken now if not given).

        Raises:
            UnknownStrategyError: ``strategy`` is not registered.
        """
        snap = snapshot if snapshot is not None else self.snapshot()
        return select_on_snapshot(snap, k, strategy)
