"""Incremental union of the buffer's voxel sets, with reference counts and coverage shares.

Voxels
    The union's voxels are kept sorted by key (int64) next to a **stable id** per voxel
    (int32); per id, the number of held sets containing the voxel (its reference count, int32)
    and its weight ``1 / count`` (float32).  Ids never move while the voxel is held (sorted
    positions do, on every insertion); freed ids are reused, the id space grows by doubling.
    Each held set lives in a *slot* (a small integer ``0 .. capacity - 1`` chosen by the caller)
    as the ids of its voxels.  Insert and removal touch only that set's own voxels.

Coverage shares
    A held set's coverage share is ``sum over its voxels of 1 / count``: its part of the union
    when every voxel is split evenly among its holders (the shares of all held sets add up to
    the union's size).  The ids of all held sets also sit back to back in one *arena* (a
    removed set leaves a hole until the arena is compacted, once holes exceed a quarter of the
    live references; every segment starts with id 0, a voxel that never exists and weighs 0, so
    no segment is empty), so :meth:`VoxelUnion.smallest_share` is a handful of numpy calls
    whatever the number of sets -- one gather of the weights over the arena into a scratch
    array, one segmented sum (float64), one lexicographic sort -- with no per-set Python work.
    The terms are float32, each set summed on its own, so identical sets get bit-identical
    shares and ties stay ties.

Not thread-safe: the buffer calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

KeyArray = npt.NDArray[np.int64]
IdArray = npt.NDArray[np.int32]

BYTES_PER_VOXEL = 8 + 4 + 4 + 4
"""Bookkeeping bytes per union voxel: key int64 + id int32 + count int32 + weight float32."""
BYTES_PER_REF = 4 + 4 + 4
"""Bookkeeping bytes per voxel of a held set, at most: its id, its id in the arena and the
arena's gathered weight (int32, int32, float32)."""
BYTES_PER_SLOT = 6 * 8
"""Bookkeeping bytes per held set (size, tie-break, segment; segment start, slot, liveness)."""
_NO_ID = 0  # id 0 is never given to a voxel: weight 0, it opens every arena segment
_EMPTY_IDS: IdArray = np.empty(0, dtype=np.int32)
_MIN_ARENA = 1024


class VoxelUnion:
    """Union of per-slot sorted unique int64 key arrays, with coverage shares per slot.

    Args:
        capacity: number of slots (slot ids are ``0 .. capacity - 1``).
    """

    def __init__(self, capacity: int) -> None:
        self._keys: KeyArray = np.empty(0, dtype=np.int64)
        self._key_ids: IdArray = np.empty(0, dtype=np.int32)
        self._count: npt.NDArray[np.int32] = np.zeros(1, dtype=np.int32)  # id 0: never held
        self._weight: npt.NDArray[np.float32] = np.zeros(1, dtype=np.float32)
        self._free: IdArray = np.empty(0, dtype=np.int32)  # unused ids, popped from the end
        self._ids: list[IdArray] = [_EMPTY_IDS] * capacity
        self._refs = 0
        self._n_held = 0
        self._size = np.zeros(capacity, dtype=np.int64)  # |keys| per slot
        self._tie = np.zeros(capacity, dtype=np.int64)  # tie-break per slot (the caller's)
        self._seg_of = np.full(capacity, -1, dtype=np.int64)  # slot -> its arena segment
        # arena: ids of the held sets, segment after segment (see the module docstring)
        self._arena: IdArray = np.zeros(0, dtype=np.int32)
        self._arena_len = 0
        self._dead_refs = 0
        self._seg_start = np.zeros(2 * capacity + 1, dtype=np.intp)
        self._seg_slot = np.zeros(2 * capacity + 1, dtype=np.int64)
        self._seg_alive = np.zeros(2 * capacity + 1, dtype=bool)
        self._n_segs = 0
        self._scratch: npt.NDArray[np.float32] = np.empty(0, dtype=np.float32)

    # ---------------------------------------------------------------- figures
    @property
    def size(self) -> int:
        """Distinct voxels in the union."""
        return int(self._keys.size)

    @property
    def nbytes(self) -> int:
        """Bookkeeping bytes: per voxel, per held voxel id, per slot, plus the arena and its
        scratch at their allocated sizes."""
        return (
            self.size * BYTES_PER_VOXEL
            + self._refs * 4
            + self._n_held * BYTES_PER_SLOT
            + int(self._arena.nbytes + self._scratch.nbytes)
        )

    # ----------------------------------------------------------------- voxels
    def _lookup(self, keys: KeyArray) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        pos = np.searchsorted(self._keys, keys)
        if self._keys.size == 0:
            return pos, np.zeros(keys.shape, dtype=bool)
        found = self._keys[np.minimum(pos, self._keys.size - 1)] == keys
        return pos, found

    def count_new(self, keys: KeyArray) -> int:
        """How many of the sorted unique ``keys`` are not in the union."""
        _, found = self._lookup(keys)
        return int(keys.size - np.count_nonzero(found))

    def _allocate(self, n: int) -> IdArray:
        if self._free.size < n:
            old = self._count.size
            new = max(2 * old, old + n, 1024)
            self._count = np.concatenate([self._count, np.zeros(new - old, dtype=np.int32)])
            self._weight = np.concatenate([self._weight, np.zeros(new - old, dtype=np.float32)])
            fresh = np.arange(new - 1, old - 1, -1, dtype=np.int32)  # lowest ids popped first
            self._free = np.concatenate([fresh, self._free])
        ids = self._free[self._free.size - n :][::-1].copy()
        self._free = self._free[: self._free.size - n]
        return ids

    def insert(self, keys: KeyArray, slot: int, tie: int) -> None:
        """Add ``slot``'s sorted unique ``keys`` (the slot must hold nothing); ``tie`` breaks
        ties of :meth:`smallest_share` after the share and the set's size (smaller first)."""
        pos, found = self._lookup(keys)
        ids = np.empty(keys.size, dtype=np.int32)
        ids[found] = self._key_ids[pos[found]]
        new_pos = pos[~found]
        if new_pos.size:
            new_ids = self._allocate(int(new_pos.size))
            ids[~found] = new_ids
            self._keys = np.insert(self._keys, new_pos, keys[~found])
            self._key_ids = np.insert(self._key_ids, new_pos, new_ids)
        self._count[ids] += 1
        self._weight[ids] = 1.0 / self._count[ids]
        ids.setflags(write=False)
        self._ids[slot] = ids
        self._refs += int(ids.size)
        self._n_held += 1
        self._size[slot] = keys.size
        self._tie[slot] = tie
        self._append_segment(slot, ids)

    def remove(self, keys: KeyArray, slot: int) -> None:
        """Remove ``slot``'s keys (exactly those passed to :meth:`insert` for it)."""
        ids = self._ids[slot]
        self._ids[slot] = _EMPTY_IDS
        self._refs -= int(ids.size)
        self._n_held -= 1
        self._drop_segment(slot)
        if ids.size == 0:
            return
        self._count[ids] -= 1
        c = self._count[ids]
        gone = c == 0
        self._weight[ids] = np.where(gone, 0.0, 1.0 / np.maximum(c, 1))
        if gone.any():
            keep = np.ones(self._keys.size, dtype=bool)
            keep[np.searchsorted(self._keys, keys[gone])] = False
            self._keys = self._keys[keep]
            self._key_ids = self._key_ids[keep]
            self._free = np.concatenate([self._free, ids[gone][::-1]])

    # ------------------------------------------------------------------ arena
    def _append_segment(self, slot: int, ids: IdArray) -> None:
        need = ids.size + 1
        if self._arena_len + need > self._arena.size or self._n_segs == self._seg_start.size:
            self._compact(extra=need)
        start = self._arena_len
        self._arena[start] = _NO_ID
        self._arena[start + 1 : start + need] = ids
        self._arena_len += need
        k = self._n_segs
        self._seg_start[k] = start
        self._seg_slot[k] = slot
        self._seg_alive[k] = True
        self._seg_of[slot] = k
        self._n_segs += 1

    def _drop_segment(self, slot: int) -> None:
        k = int(self._seg_of[slot])
        self._seg_of[slot] = -1
        self._seg_alive[k] = False
        end = self._seg_start[k + 1] if k + 1 < self._n_segs else self._arena_len
        self._dead_refs += int(end - self._seg_start[k])
        if 4 * self._dead_refs > self._arena_len - self._dead_refs:
            self._compact()

    def _compact(self, extra: int = 0) -> None:
        """Close the holes of removed sets; make room for ``extra`` more references."""
        n = self._n_segs
        starts = self._seg_start[:n]
        ends = np.append(starts[1:], self._arena_len)
        alive = np.flatnonzero(self._seg_alive[:n])
        lens = ends[alive] - starts[alive]
        live = int(lens.sum())
        target = live + extra
        cap = max(_MIN_ARENA, self._arena.size)
        while 2 * target > cap:  # room to grow: appends stay amortized O(1)
            cap *= 2
        while cap > _MIN_ARENA and 4 * target <= cap:
            cap //= 2
        arena = np.zeros(cap, dtype=np.int32)
        if alive.size:
            src = np.concatenate([np.arange(starts[i], ends[i]) for i in alive])
            arena[:live] = self._arena[src]
        new_starts = np.zeros(alive.size, dtype=np.intp)
        np.cumsum(lens[:-1], out=new_starts[1:])
        slots = self._seg_slot[alive].copy()
        self._arena = arena
        self._arena_len = live
        self._dead_refs = 0
        self._n_segs = int(alive.size)
        self._seg_start[: alive.size] = new_starts
        self._seg_slot[: alive.size] = slots
        self._seg_alive[: alive.size] = True
        self._seg_alive[alive.size :] = False
        self._seg_of[slots] = np.arange(alive.size)
        if self._scratch.size > cap:
            self._scratch = np.empty(0, dtype=np.float32)

    def trim(self) -> None:
        """Compact the arena to its live references and free the scratch array."""
        self._compact()
        self._scratch = np.empty(0, dtype=np.float32)

    # ----------------------------------------------------------------- shares
    def _segment_shares(self) -> npt.NDArray[np.float64]:
        n = self._arena_len
        if self._scratch.size < n:
            self._scratch = np.empty(self._arena.size, dtype=np.float32)
        w = np.take(self._weight, self._arena[:n], out=self._scratch[:n], mode="clip")
        sums: npt.NDArray[np.float64] = np.add.reduceat(
            w, self._seg_start[: self._n_segs], dtype=np.float64
        )
        return sums

    def shares(self, slots: Sequence[int]) -> npt.NDArray[np.float64]:
        """Coverage shares of the held ``slots`` (see the module docstring)."""
        if self._n_segs == 0:
            return np.zeros(len(slots), dtype=np.float64)
        return self._segment_shares()[self._seg_of[np.asarray(slots, dtype=np.intp)]]

    def smallest_share(self, exclude: int = -1, newcomer: int = -1) -> int:
        """The held slot with the smallest coverage share, ties to the smaller set, then the
        smaller ``tie``; ``newcomer`` loses every tie, ``exclude`` is never chosen.  -1 if no
        slot qualifies."""
        if self._n_segs == 0:
            return -1
        sums = self._segment_shares()
        keep = self._seg_alive[: self._n_segs] & (self._seg_slot[: self._n_segs] != exclude)
        slots = self._seg_slot[: self._n_segs][keep]
        if slots.size == 0:
            return -1
        tie = np.where(slots == newcomer, np.iinfo(np.int64).min, self._tie[slots])
        order = np.lexsort((tie, self._size[slots], sums[keep]))
        return int(slots[order[0]])
