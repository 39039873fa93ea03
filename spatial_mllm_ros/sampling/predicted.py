"""Space-aware sampling on predicted geometry (colour-only cameras), as the reference does it.

A colour-only camera gives the buffer no depth or pose, so its frames have no voxel sets.
Spatial-MLLM (Wu et al., 2025, Sec. 3.3; reference code ``src/sampling/sa_sampling.py`` of
``diankun-wu/Spatial-MLLM``) predicts the geometry of pre-sampled candidate frames with VGGT and
runs greedy maximum coverage on it.  This module is that rule on a buffer snapshot; the model
call itself is the caller's (``answering.monocular`` asks the answerer's ``predict_geometry``
for :func:`candidate_indices` and hands the result to :func:`select_on_predicted`).
:class:`PredictedGeometry` is the one type of a predicted frame's geometry in the package (the
model's VGGT conversion produces it, the model process ships it).

Point by point against the reference:

1. **Pre-sampling** -- reference: ``min(128, N)`` frames of the video at
   ``linspace(0, N - 1)`` truncated to integers.  Here: the same rule
   (:func:`~.strategies.uniform_indices`) over the buffer snapshot, ``max(candidates, k)``
   frames; with ``candidates = 128`` the indices are the reference's.  Differences, with
   reasons: the default is :data:`DEFAULT_CANDIDATES` (32; parameter
   ``sampling.monocular_candidates``) because the prediction runs once per *question* on the
   robot and VGGT's global attention grows quadratically with the frame count; at least ``k``
   so that a large frame budget is not capped by the candidate count; and the snapshot is the
   buffer's (colour-only frames admitted every ``colour_min_interval_s`` and thinned in time),
   not every decoded video frame.
2. **Model input** (not this module) -- the reference resizes frames to 518 pixels wide
   (height a multiple of 14, centre-cropped to 518) and takes the **point head**'s
   ``world_points`` / ``world_points_conf``.  The engine predicts at the clip's processor
   resolution, and :func:`~spatial_mllm_ros.model.vggt.vggt_geometry` gives either head
   (``source="points"`` is the reference's; ``"depth"``, the depth head unprojected with the
   predicted cameras, is VGGT's more accurate route) -- the engine's ``predict_geometry`` says
   which it uses.
3. **Confidence filter** -- same: a point is kept when its confidence is ``> 0.1`` and ``>=``
   the **global** 50th percentile (numpy's linear interpolation) of the confidences of *all*
   candidate frames together, compared in the confidences' dtype (float32, as the reference's
   torch comparisons: a confidence of float32 0.1 is not above 0.1).  Only non-finite points or
   confidences are dropped first (the reference has none to drop; NaN would make its
   percentile NaN and keep nothing).
4. **Voxel size and grid** -- same: edge = the shortest side of the kept points' bounding box
   / 20, cells ``floor((p - bbox_min) / edge)``, one set per frame.  Differences: float64 on the
   CPU instead of float32 on the GPU (a point within rounding of a cell boundary may fall in
   the neighbour cell); the cell is packed into an int64 key (:func:`~spatial_mllm_ros.core.
   geometry.voxel_keys`), which drops points more than ``2**20`` cells from the corner (a
   bounding box over 52 000 times longer than its shortest side); and where the reference
   would divide by zero or fail (no point kept, flat bounding box) this raises
   :class:`~.errors.UnusableGeometryError`, so the caller falls back to the buffer's strategy.
5. **Greedy** -- same: each step takes the frame adding the most uncovered voxels, ties to the
   lowest candidate index (the reference scans a ``set`` of small ints, i.e. ascending, with a
   strict ``>``); at most ``k`` frames; it **stops** when no frame adds a voxel and does **not
   fill** the remaining slots (so fewer than ``k`` frames may be returned); no uniform guard
   (``CoverageStrategy(fill=False, guard_uniform=False)``; the buffer's online ``coverage`` on
   sensor geometry keeps its fill and guard).
6. **Output** -- same: the picks sorted ascending (time order), mapped back to snapshot
   indices.  ``uniform_coverage`` scores the reference's uniform baseline: ``k`` truncated
   ``linspace`` picks over the candidates.
7. **When** -- the reference always runs it; here only when the question's strategy is
   ``coverage``, no snapshot frame has sensor geometry (sensor voxels are metric in the robot's
   world frame, predicted ones at VGGT's scale in frame 0's camera frame: not comparable without
   an alignment) and the snapshot holds more than ``k`` frames (else every frame is taken
   without a VGGT pass, where the reference could still drop frames that add no voxel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros import params as P
from spatial_mllm_ros.core.frame import CameraIntrinsics
from spatial_mllm_ros.core.geometry import (
    PAPER_CONF_PERCENTILE,
    PAPER_CONF_THRESHOLD,
    GeometryError,
    paper_voxel_size,
    voxel_keys,
)
from spatial_mllm_ros.sampling.errors import InvalidInputError, UnusableGeometryError
from spatial_mllm_ros.sampling.selection import BufferSnapshot, Selection, build_selection
from spatial_mllm_ros.sampling.strategies import Candidates, CoverageStrategy, uniform_indices

KeyArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

COVERAGE = "coverage"
"""The question strategy that selects on predicted geometry when there is no sensor geometry."""
PREDICTED_STRATEGY = "coverage(predicted)"
"""Strategy name of a selection made on predicted geometry."""
FALLBACK_STRATEGY = "coverage(fallback:scored)"
"""Strategy name when prediction failed: the buffer's ``coverage`` strategy ran on colour-only
frames, which (no voxel sets) picks every frame with the ``scored`` rule."""
REFERENCE_CANDIDATES = 128
"""Frames the reference pre-samples from a video."""
DEFAULT_CANDIDATES = P.default_int("sampling.monocular_candidates")
"""Frames pre-sampled for one prediction by default (parameter ``sampling.monocular_candidates``;
see point 1 of the module docstring)."""

_REFERENCE_RULE = CoverageStrategy(guard_uniform=False, fill=False)


@dataclass(frozen=True)
class PredictedGeometry:
    """Geometry of one frame as the spatial encoder predicts it.

    Attributes:
        world_points: (H, W, 3) float32 points in the prediction's shared world frame (frame
            0's camera for VGGT), at the model's scale (not metres).
        confidence: (H, W) float32 per-pixel confidence (VGGT: >= 1).
        camera_to_world: (4, 4) float64 pose of the frame's optical frame, when known.
        intrinsics: pinhole intrinsics at the prediction's resolution (W x H), when known.
    """

    world_points: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    camera_to_world: npt.NDArray[np.float64] | None = None
    intrinsics: CameraIntrinsics | None = None


@dataclass(frozen=True)
class PredictedVoxels:
    """Voxel sets of one prediction's frames.

    Attributes:
        sets: per frame, sorted unique int64 voxel keys.
        voxel_size: edge in the prediction's unit (bounding-box shortest side / 20).
        origin: (3,) corner of the grid, the kept points' bounding-box minimum.
        conf_cut: the global confidence percentile the points had to reach.
    """

    sets: list[KeyArray]
    voxel_size: float
    origin: FloatArray
    conf_cut: float


def candidate_indices(n: int, k: int, candidates: int = DEFAULT_CANDIDATES) -> list[int]:
    """Snapshot indices whose geometry is predicted: ``max(candidates, k)`` frames of ``n``,
    evenly spaced by the reference's rule (all of them when ``n`` is not larger)."""
    return uniform_indices(n, max(candidates, k))


def predicted_voxel_sets(
    geometries: Sequence[PredictedGeometry],
    conf_threshold: float = PAPER_CONF_THRESHOLD,
    conf_percentile: float = PAPER_CONF_PERCENTILE,
) -> PredictedVoxels:
    """Voxel sets of one prediction's frames, by the reference's filter and grid (points 3, 4).

    Args:
        geometries: per frame, world points (H, W, 3) and confidence (H, W), all in one world
            frame and scale (frames may differ in H, W).
        conf_threshold: keep points with confidence above this (reference: 0.1) ...
        conf_percentile: ... and at or above this percentile of all frames' confidences
            together (reference: 50).

    Raises:
        InvalidInputError: a frame's arrays have the wrong shapes.
        UnusableGeometryError: no point survives the filter, or their bounding box is flat.
    """
    points: list[FloatArray] = []
    confs: list[npt.NDArray[np.floating]] = []
    for i, g in enumerate(geometries):
        wp = np.asarray(g.world_points, dtype=np.float64)
        cf = np.asarray(g.confidence)
        if not np.issubdtype(cf.dtype, np.floating):
            cf = cf.astype(np.float64)
        if wp.ndim != 3 or wp.shape[2] != 3 or cf.shape != wp.shape[:2]:
            raise InvalidInputError(
                f"frame {i}: expected world_points (H, W, 3) and confidence (H, W), "
                f"got {wp.shape} and {cf.shape}"
            )
        finite = np.isfinite(cf) & np.all(np.isfinite(wp), axis=2)
        points.append(wp[finite])
        confs.append(cf[finite])
    if not any(c.size for c in confs):
        raise UnusableGeometryError("no finite predicted point")
    every_conf = np.concatenate(confs)
    # in the confidences' own dtype (float32 from VGGT), as the reference's numpy percentile
    # and torch comparisons are: float32(0.1) is not > 0.1 there
    cut = np.percentile(every_conf, conf_percentile).astype(every_conf.dtype)
    threshold = np.asarray(conf_threshold, dtype=every_conf.dtype)
    kept = [p[(c >= cut) & (c > threshold)] for p, c in zip(points, confs, strict=True)]
    if not any(p.shape[0] for p in kept):
        raise UnusableGeometryError("no predicted point passed the confidence filter")
    everything = np.concatenate(kept, axis=0)
    try:
        edge = paper_voxel_size(everything)
    except GeometryError as err:  # flat bounding box
        raise UnusableGeometryError(str(err)) from err
    origin = everything.min(axis=0)
    sets = [voxel_keys(p, edge, origin) for p in kept]
    return PredictedVoxels(sets, edge, origin, float(cut))


def needs_prediction(snapshot: BufferSnapshot, k: int, strategy: str) -> bool:
    """True when selection on predicted geometry applies (point 7 of the module docstring):
    ``coverage`` asked, more frames than ``k``, and no frame with sensor geometry."""
    return (
        strategy == COVERAGE
        and len(snapshot) > k
        and all(v is None for v in snapshot.voxel_sets)
    )


def select_on_predicted(
    snapshot: BufferSnapshot,
    candidates: Sequence[int],
    geometries: Sequence[PredictedGeometry],
    k: int,
) -> Selection:
    """Choose up to ``k`` of the ``candidates`` by greedy coverage of their predicted geometry.

    Args:
        snapshot: the buffer's frames.
        candidates: ascending snapshot indices whose geometry was predicted
            (:func:`candidate_indices`).
        geometries: one prediction per candidate, in the same order, from one model pass.
        k: frames to choose at most.

    Returns:
        A :class:`Selection` named :data:`PREDICTED_STRATEGY`, indices into ``snapshot``;
        coverage figures are over the candidates' predicted voxels.

    Raises:
        UnusableGeometryError: the prediction is unusable (see :func:`predicted_voxel_sets`).
    """
    if len(geometries) != len(candidates):
        raise UnusableGeometryError(
            f"predicted geometry of {len(geometries)} frames for {len(candidates)}"
        )
    voxels = predicted_voxel_sets(geometries)
    pool = Candidates([snapshot.frames[i] for i in candidates], voxels.sets)
    order = _REFERENCE_RULE.select(pool, k)
    return build_selection(pool, order, PREDICTED_STRATEGY, k, positions=candidates)
