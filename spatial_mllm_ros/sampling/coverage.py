"""Greedy maximum voxel coverage (Spatial-MLLM's space-aware frame sampling).

Spatial-MLLM (Wu et al., 2025, Sec. 3.3) selects K of N candidate frames by greedy maximum
coverage: start from nothing covered, repeatedly take the frame whose voxel set adds the most
not-yet-covered voxels, stop after K frames or as soon as no frame adds a voxel.

:func:`max_coverage` returns *exactly* what the plain set-based greedy returns
(:func:`greedy_set_cover_reference`, ties to the lowest index), but runs a **lazy greedy**
(Minoux's accelerated greedy) over sorted unique int64 arrays:

* the marginal gain of a frame can only shrink as coverage grows (submodularity), so a heap
  holds stale upper bounds keyed by ``(-bound, index)``; the top entry is re-evaluated and
  taken only when its fresh gain still orders first against the next bound -- with the index
  in the key, ties resolve to the lowest index exactly like the plain greedy;
* the covered set is kept as the list of keys newly covered at each step (disjoint sorted
  arrays); each frame caches ``|a & covered|`` up to the step it was last evaluated, so a
  re-evaluation only intersects ``a`` with the keys added since then, restricted to the slice
  within ``[a.min(), a.max()]`` (frames see local regions, so these slices are small), via
  ``np.searchsorted`` of the added keys into ``a``.

Cost: O(sum |a_i|) to validate plus, per re-evaluation, O(|new keys in range| log |a|) --
instead of the plain greedy's K * N full set differences.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.sampling.errors import InvalidInputError

KeyArray = npt.NDArray[np.int64]


def _as_sorted_unique(arr: npt.ArrayLike, index: int) -> KeyArray:
    a = np.asarray(arr)
    if a.ndim != 1:
        raise InvalidInputError(f"voxel_sets[{index}] must be 1-D, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise InvalidInputError(f"voxel_sets[{index}] must hold integers, got {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if a.size > 1 and not bool(np.all(a[1:] > a[:-1])):
        a = np.unique(a)
    return a


def _hits_in(a: KeyArray, delta: KeyArray) -> npt.NDArray[np.intp]:
    """Positions in sorted ``a`` of the keys of sorted ``delta`` that ``a`` contains."""
    lo = int(np.searchsorted(delta, a[0], side="left"))
    hi = int(np.searchsorted(delta, a[-1], side="right"))
    if hi <= lo:
        return np.empty(0, dtype=np.intp)
    sub = delta[lo:hi]  # within [a[0], a[-1]], so every position is < a.size
    pos = np.searchsorted(a, sub)
    return pos[a[pos] == sub]


def max_coverage(voxel_sets: Sequence[npt.ArrayLike], k: int) -> list[int]:
    """Greedy maximum coverage over voxel sets.

    Args:
        voxel_sets: N 1-D integer arrays of voxel keys (duplicates and any order accepted;
            sorted unique int64 arrays skip normalization).
        k: maximum number of frames to select (``k <= 0`` selects nothing).

    Returns:
        Indices into ``voxel_sets`` in selection order; at most ``min(k, N)`` of them, fewer when
        no remaining frame adds a voxel.  Identical to :func:`greedy_set_cover_reference`.
    """
    if k <= 0 or len(voxel_sets) == 0:
        return []
    sets = [_as_sorted_unique(s, i) for i, s in enumerate(voxel_sets)]
    n = len(sets)
    heap = [(-int(s.size), i) for i, s in enumerate(sets) if s.size > 0]
    heapq.heapify(heap)
    added: list[KeyArray] = []  # keys newly covered at each selection step (disjoint, sorted)
    hits = [0] * n  # |sets[i] & covered| as of step synced[i]
    synced = [0] * n
    selected: list[int] = []
    while heap and len(selected) < k:
        _neg_bound, i = heapq.heappop(heap)
        a = sets[i]
        for step in range(synced[i], len(added)):
            hits[i] += int(_hits_in(a, added[step]).size)
        synced[i] = len(added)
        gain = a.size - hits[i]
        if gain <= 0:
            continue  # never useful again (gains only shrink)
        if heap and (-gain, i) > heap[0]:
            heapq.heappush(heap, (-gain, i))  # stale: someone else may be better now
            continue
        selected.append(i)
        covered_mask = np.zeros(a.size, dtype=bool)
        for delta in added:
            covered_mask[_hits_in(a, delta)] = True
        added.append(a[~covered_mask])
    return selected


def greedy_set_cover_reference(voxel_sets: Sequence[npt.ArrayLike], k: int) -> list[int]:
    """Plain set-based greedy (the specification of :func:`max_coverage`; slow, for tests).

    Each step scans all frames in index order and takes the first one with the largest number
    of uncovered voxels; it stops after ``k`` frames or when the best gain is zero.
    """
    return greedy_on_python_sets([set(np.asarray(s).tolist()) for s in voxel_sets], k)


def greedy_on_python_sets(sets: Sequence[set[int]], k: int) -> list[int]:
    """:func:`greedy_set_cover_reference` on already built Python sets."""
    covered: set[int] = set()
    selected: list[int] = []
    while len(selected) < k:
        best, best_gain = -1, 0
        for i, s in enumerate(sets):
            g = len(s - covered)
            if g > best_gain:
                best, best_gain = i, g
        if best < 0:
            break
        selected.append(best)
        covered |= sets[best]
    return selected


def coverage_fraction(voxel_sets: Sequence[KeyArray], indices: Sequence[int]) -> float:
    """|union of selected sets| / |union of all sets| (0.0 when the union is empty)."""
    non_empty = [np.asarray(s, dtype=np.int64) for s in voxel_sets if len(s)]
    if not non_empty:
        return 0.0
    total = np.unique(np.concatenate(non_empty)).size
    picked = [np.asarray(voxel_sets[i], dtype=np.int64) for i in indices if len(voxel_sets[i])]
    if not picked:
        return 0.0
    return float(np.unique(np.concatenate(picked)).size / total)
