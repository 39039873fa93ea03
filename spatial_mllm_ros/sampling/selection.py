"""What a selection works on and what it returns: snapshots, :class:`Selection`, one builder.

:func:`build_selection` is the one place a strategy's picks become a :class:`Selection` (time
order, coverage figures, uniform baseline); both the buffer's selection
(:func:`select_on_snapshot`) and the selection on predicted geometry
(:func:`~spatial_mllm_ros.sampling.predicted.select_on_predicted`) go through it.

**The order the model sees** (:func:`model_order`). Qwen2.5-VL merges the clip's frames in
temporal pairs (``TEMPORAL_PATCH_SIZE`` 2): frames 0-1, 2-3, ... become one token grid each.
Frames of one camera are handed over in time order, as the reference does. Frames of several
cameras are grouped by camera, each group in time order, so that a pair joins two views of
one camera; a group of an odd number of frames must share its last pair with the next group,
so the groups with an even number of frames come first, then the odd ones (each kind in the
order of its first frame's stamp): that joins the fewest pairs across cameras (one per two
odd groups). One camera: plain time order, the reference's, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.sampling.strategies import (
    Candidates,
    get_strategy,
    uniform_indices,
    union_size,
)

KeyArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BufferSnapshot:
    """Immutable view of the buffer: frames in stamp order and their voxel sets.

    ``voxel_sets[i]`` is a read-only sorted unique int64 array, or None for a colour-only frame;
    ``union_voxels`` is the size of their union.
    """

    frames: tuple[Frame, ...]
    voxel_sets: tuple[KeyArray | None, ...]
    union_voxels: int
    voxel_size_m: float

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class Selection:
    """Frames chosen for a question.

    Attributes:
        frames: chosen frames in the order handed to the model (:func:`model_order`: time
            order for one camera, grouped by camera for several).
        indices: their indices in the snapshot, parallel to ``frames`` (ascending for one
            camera).
        selection_order: the same indices in the order the strategy picked them.
        strategy: strategy name.
        coverage: |union of chosen frames' voxels| / |union of the candidates' voxels|
            (NaN when the candidates have no voxel: not measured, e.g. frames without depth
            or pose); the candidates are the whole snapshot, or the frames whose geometry
            was predicted.
        uniform_coverage: the same for ``uniform`` picks of the same k over the same candidates.
        frame_stamps_ns: stamps of ``frames``.
        frame_cameras: cameras of ``frames`` (``Frame.camera``), parallel to the stamps.
    """

    frames: tuple[Frame, ...]
    indices: tuple[int, ...]
    selection_order: tuple[int, ...]
    strategy: str
    coverage: float
    uniform_coverage: float
    frame_stamps_ns: tuple[int, ...]
    frame_cameras: tuple[str, ...] = ()


def model_order(frames: Sequence[Frame], picks: Sequence[int]) -> list[int]:
    """The picked indices of ``frames`` (a time-ordered candidate list) in the order the model
    is given them (see the module): one camera -> ascending; several -> grouped by camera,
    groups of an even count first, then odd, each kind by its first frame's stamp, each group
    ascending."""
    ordered = sorted(picks)
    groups: dict[str, list[int]] = {}
    for j in ordered:
        groups.setdefault(frames[j].camera, []).append(j)
    if len(groups) <= 1:
        return ordered
    ranked = sorted(groups.values(), key=lambda g: (len(g) % 2, frames[g[0]].stamp_ns, g[0]))
    return [j for group in ranked for j in group]


def build_selection(
    candidates: Candidates,
    order: Sequence[int],
    strategy: str,
    k: int,
    positions: Sequence[int] | None = None,
    union_voxels: int | None = None,
) -> Selection:
    """The :class:`Selection` of a strategy's picks.

    Args:
        candidates: what the strategy chose from (frames in time order, voxel sets).
        order: picked candidate indices, in the order they were picked.
        strategy: name recorded in the selection.
        k: the requested frame count (for the uniform baseline).
        positions: snapshot index of each candidate (default: the candidates are the snapshot).
        union_voxels: size of the candidates' voxel union when already known.
    """
    where = list(range(len(candidates))) if positions is None else list(positions)
    chosen = model_order(candidates.frames, order)
    sets = candidates.voxel_sets
    total = union_size(sets, range(len(sets))) if union_voxels is None else union_voxels

    def cov(ids: Sequence[int]) -> float:
        return union_size(sets, ids) / total if total else math.nan

    return Selection(
        frames=tuple(candidates.frames[j] for j in chosen),
        indices=tuple(where[j] for j in chosen),
        selection_order=tuple(where[j] for j in order),
        strategy=strategy,
        coverage=cov(chosen),
        uniform_coverage=cov(uniform_indices(len(candidates), k)),
        frame_stamps_ns=tuple(candidates.frames[j].stamp_ns for j in chosen),
        frame_cameras=tuple(candidates.frames[j].camera for j in chosen),
    )


def select_on_snapshot(snapshot: BufferSnapshot, k: int, strategy: str) -> Selection:
    """Choose ``k`` frames of ``snapshot`` with the strategy registered as ``strategy``.

    Raises:
        UnknownStrategyError: ``strategy`` is not registered.
    """
    candidates = Candidates(snapshot.frames, snapshot.voxel_sets)
    order = get_strategy(strategy).select(candidates, k)
    return build_selection(candidates, order, strategy, k, union_voxels=snapshot.union_voxels)
