"""Pluggable frame-selection strategies behind one protocol, selected by name.

Registered strategies:

* ``coverage`` -- the paper's greedy maximum voxel coverage (:func:`max_coverage`) over the
  candidates that have geometry (sensor voxels in the buffer, or voxels of predicted geometry,
  :mod:`.predicted`).  Online extras, both on by default and both off for the reference rule
  (``CoverageStrategy(fill=False, guard_uniform=False)``, used on predicted geometry):
  *fill* -- when greedy returns fewer than ``k`` frames (fewer geometric frames, or early stop
  because every voxel is covered), the remaining slots are filled from the other candidates --
  colour-only frames included -- with the ``scored`` rule, the decay seeded by the frames
  already chosen; *guard* -- greedy coverage is a (1 - 1/e) approximation and can, on
  adversarial inputs, cover less than the uniform pick; if the uniform pick of ``k`` covers
  strictly more voxels, it is returned instead, so coverage is never below uniform's.
* ``scored`` -- the seed's weighted per-frame score with proximity decay (:mod:`.scoring`).
* ``uniform`` -- ``k`` indices evenly spaced over the candidates, the reference's rule
  (:func:`uniform_indices`: first and last included).

Strategies return candidate indices (selection order for greedy ones); callers put them in
time order for the video.  Add one with :func:`register_strategy`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.sampling.coverage import max_coverage
from spatial_mllm_ros.sampling.errors import InvalidInputError, UnknownStrategyError
from spatial_mllm_ros.sampling.scoring import frame_scores, select_by_score

KeyArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Candidates:
    """Frames to choose from, in time order, with their voxel sets (None = colour-only)."""

    frames: Sequence[Frame]
    voxel_sets: Sequence[KeyArray | None]

    def __post_init__(self) -> None:
        if len(self.frames) != len(self.voxel_sets):
            raise InvalidInputError(
                f"{len(self.frames)} frames but {len(self.voxel_sets)} voxel sets"
            )

    def __len__(self) -> int:
        return len(self.frames)


@runtime_checkable
class SamplingStrategy(Protocol):
    """Chooses up to ``k`` candidate indices."""

    name: str

    def select(self, candidates: Candidates, k: int) -> list[int]:
        """Indices into ``candidates`` (distinct, at most ``min(k, len(candidates))``)."""
        ...


def uniform_indices(n: int, k: int) -> list[int]:
    """``min(k, n)`` evenly spaced indices over ``range(n)``, as the reference samples.

    The reference (Spatial-MLLM ``src/sampling/sa_sampling.py``) pre-samples its candidates and
    picks its uniform baseline with ``min(k, n)`` points of ``linspace(0, n - 1)`` truncated to
    integers; so does this (same numpy call, so the same float rounding): ascending, distinct,
    ``0`` first and, for ``k >= 2``, ``n - 1`` last; ``k == 1`` gives ``[0]``; ``k >= n`` gives
    every index.
    """
    if k <= 0 or n <= 0:
        return []
    picks = np.linspace(0, n - 1, num=min(k, n), dtype=int)
    return [int(i) for i in picks]


def union_size(voxel_sets: Sequence[KeyArray | None], indices: Sequence[int]) -> int:
    """Number of distinct voxels in the union of the chosen sets (None sets ignored)."""
    parts = [voxel_sets[i] for i in indices]
    arrays = [p for p in parts if p is not None and p.size]
    if not arrays:
        return 0
    return int(np.unique(np.concatenate(arrays)).size)


class UniformStrategy:
    """Evenly spaced frames (the baseline the paper compares against)."""

    name = "uniform"

    def select(self, candidates: Candidates, k: int) -> list[int]:
        return uniform_indices(len(candidates), k)


class ScoredStrategy:
    """The seed's weighted per-frame score with proximity decay."""

    name = "scored"

    def select(self, candidates: Candidates, k: int) -> list[int]:
        if k <= 0 or len(candidates) == 0:
            return []
        return select_by_score(frame_scores(candidates.frames), k)


class CoverageStrategy:
    """Greedy maximum voxel coverage, with optional scored fill-in and uniform guard.

    Args:
        guard_uniform: return the uniform pick when it covers strictly more voxels.
        fill: fill up to ``min(k, n)`` frames with the ``scored`` rule when greedy stops early
            (off: greedy's frames only, as the reference).
    """

    name = "coverage"

    def __init__(self, guard_uniform: bool = True, fill: bool = True) -> None:
        self.guard_uniform = guard_uniform
        self.fill = fill

    def select(self, candidates: Candidates, k: int) -> list[int]:
        n = len(candidates)
        if k <= 0 or n == 0:
            return []
        geo = [i for i, v in enumerate(candidates.voxel_sets) if v is not None]
        geo_sets = [v for v in candidates.voxel_sets if v is not None]
        picked = [geo[j] for j in max_coverage(geo_sets, k)]
        if self.fill and len(picked) < min(k, n):
            rest = [i for i in range(n) if i not in set(picked)]
            scores = frame_scores(candidates.frames)
            picked += select_by_score(scores, min(k, n) - len(picked), picked, rest)
        if self.guard_uniform and geo:
            uni = uniform_indices(n, k)
            if union_size(candidates.voxel_sets, uni) > union_size(candidates.voxel_sets, picked):
                return uni
        return picked


_REGISTRY: dict[str, Callable[[], SamplingStrategy]] = {
    "coverage": CoverageStrategy,
    "scored": ScoredStrategy,
    "uniform": UniformStrategy,
}


def register_strategy(name: str, factory: Callable[[], SamplingStrategy]) -> None:
    """Register (or replace) a strategy factory under ``name``."""
    _REGISTRY[name] = factory


def available_strategies() -> list[str]:
    """Sorted names of the registered strategies."""
    return sorted(_REGISTRY)


def get_strategy(name: str) -> SamplingStrategy:
    """A new instance of the strategy registered as ``name``.

    Raises:
        UnknownStrategyError: the name is not registered (the message lists the known ones).
    """
    try:
        factory = _REGISTRY[name]
    except KeyError as err:
        raise UnknownStrategyError(name, available_strategies()) from err
    return factory()
