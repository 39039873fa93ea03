"""Incremental union of the buffer's voxel sets, with each holder's count of exclusive voxels.

Three parallel arrays over the union's voxels, sorted by key: the keys (int64), their reference
counts (how many held sets contain the voxel, int32) and the *sum of the slot ids* of the holders
(int64) -- when the count is 1 that sum **is** the sole holder's slot.  From them each slot's
number of *exclusive* voxels (held by no other set) is maintained on every insert and removal,
so no union is ever recomputed per frame.  Slots are small integers ``0 .. capacity - 1`` chosen
by the caller (the buffer's free-slot list).  Not thread-safe: the buffer calls it under its lock.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

KeyArray = npt.NDArray[np.int64]

BYTES_PER_VOXEL = 8 + 4 + 8
"""Bookkeeping bytes per union voxel: key int64 + count int32 + owner-sum int64."""


class VoxelUnion:
    """Union of per-slot sorted unique int64 key arrays with exclusive counts per slot.

    Args:
        capacity: number of slots (slot ids are ``0 .. capacity - 1``).
    """

    def __init__(self, capacity: int) -> None:
        self._keys: KeyArray = np.empty(0, dtype=np.int64)
        self._count: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._owner_sum: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._exclusive: npt.NDArray[np.int64] = np.zeros(capacity, dtype=np.int64)

    @property
    def size(self) -> int:
        """Distinct voxels in the union."""
        return int(self._keys.size)

    @property
    def nbytes(self) -> int:
        """Bookkeeping bytes (``BYTES_PER_VOXEL`` per union voxel)."""
        return self.size * BYTES_PER_VOXEL

    def exclusive(self, slot: int) -> int:
        """Voxels of ``slot``'s set that no other held set contains."""
        return int(self._exclusive[slot])

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

    def insert(self, keys: KeyArray, slot: int) -> None:
        """Add ``slot``'s sorted unique ``keys`` (the slot must hold nothing yet)."""
        pos, found = self._lookup(keys)
        fp = pos[found]
        if fp.size:
            was_single = fp[self._count[fp] == 1]
            if was_single.size:
                owners = self._owner_sum[was_single]
                self._exclusive -= np.bincount(owners, minlength=self._exclusive.size)
            self._count[fp] += 1
            self._owner_sum[fp] += slot
        new_pos = pos[~found]
        n_new = int(new_pos.size)
        if n_new:
            self._keys = np.insert(self._keys, new_pos, keys[~found])
            self._count = np.insert(self._count, new_pos, np.int32(1))
            self._owner_sum = np.insert(self._owner_sum, new_pos, np.int64(slot))
        self._exclusive[slot] = n_new

    def remove(self, keys: KeyArray, slot: int) -> None:
        """Remove ``slot``'s keys (exactly those passed to :meth:`insert` for it)."""
        if keys.size == 0:
            self._exclusive[slot] = 0
            return
        pos = np.searchsorted(self._keys, keys)
        self._count[pos] -= 1
        self._owner_sum[pos] -= slot
        c = self._count[pos]
        now_single = pos[c == 1]
        if now_single.size:
            owners = self._owner_sum[now_single]
            self._exclusive += np.bincount(owners, minlength=self._exclusive.size)
        gone = pos[c == 0]
        if gone.size:
            keep = np.ones(self._keys.size, dtype=bool)
            keep[gone] = False
            self._keys = self._keys[keep]
            self._count = self._count[keep]
            self._owner_sum = self._owner_sum[keep]
        self._exclusive[slot] = 0
