"""Frame selection for monocular cameras: the paper's coverage sampling on predicted geometry.

A colour-only camera gives the buffer no depth or pose, so its frames have no voxel sets and
the ``coverage`` strategy would fall back to the ``scored`` rule.  Spatial-MLLM (Wu et al.,
2025, Sec. 3.3) instead predicts the geometry of its candidate frames with the spatial
encoder's VGGT heads and runs greedy maximum coverage on that.  :func:`select_frames` does the
same at question time when

* the strategy is ``coverage``,
* **no** frame of the snapshot has sensor geometry (every voxel set is None), and
* the answerer can predict geometry (it has a ``predict_geometry`` method, see
  :class:`GeometryPredictor`; :class:`~spatial_mllm_ros.model.engine.SpatialMLLMEngine` has),
* and the snapshot holds more frames than the budget (else every frame is taken anyway).

Steps (:func:`select_monocular`): up to ``candidates`` frames (at least ``k``) evenly spaced
over the snapshot -> geometry of all of them in **one** prediction (one VGGT pass, so they
share one world frame, frame 0's camera, and one normalised scale) -> per frame, confident
points only (``conf > 0.1`` and ``>=`` the frame's median, as the paper) -> one scene-adaptive
voxel edge for all of them (bbox shortest side / 20 over the union of kept points, as the
paper) -> :func:`~spatial_mllm_ros.sampling.max_coverage` picks ``k``; when greedy stops early
(everything covered) the remaining slots take the uniform picks of ``k`` over the candidates,
in order.  As the buffer's ``coverage`` strategy, the pick is replaced by the uniform one in
the rare case that covers strictly more (greedy is only a (1 - 1/e) approximation).

Coverage figures are over the predicted voxel sets of the candidates: ``coverage`` is
|union of chosen| / |union of candidates|, ``uniform_coverage`` the same for the uniform pick
of ``k`` over the candidates -- exactly the :class:`~spatial_mllm_ros.sampling.Selection`
definitions when every frame is a candidate (snapshot <= ``candidates`` frames).

Mixed snapshots (some frames with sensor depth + pose) keep the buffer's behaviour (coverage
over the sensor frames, ``scored`` fill-in): sensor voxels are metric and in the robot's world
frame, predicted ones are in frame 0's camera frame at VGGT's normalised scale, so their keys
cannot be compared without an alignment (a similarity transform estimated from frames that
have both), which a single question's budget does not pay for.

Failure of the prediction (no heads loaded, any model error, geometry that yields no points
or a flat bounding box) is not an answering error: the buffer's strategy path answers, and
the :class:`~spatial_mllm_ros.sampling.Selection` says so in its strategy name
(:data:`FALLBACK_STRATEGY`).  Successful predicted selections are named
:data:`PREDICTED_STRATEGY`.  Predicted geometry is not cached: a question's candidate set
changes as frames arrive, and it costs one spatial-encoder pass (the benchmark
``benchmarks/bench_monocular.py`` gives its CPU time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.answering.errors import PredictionFailedError
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.geometry import (
    PAPER_CONF_PERCENTILE,
    PAPER_CONF_THRESHOLD,
    GeometryError,
    filter_predicted_points,
    paper_voxel_size,
    voxel_keys,
)
from spatial_mllm_ros.sampling.coverage import max_coverage
from spatial_mllm_ros.sampling.online import BufferSnapshot, Selection, SpatialFrameBuffer
from spatial_mllm_ros.sampling.strategies import uniform_indices, union_size

KeyArray = npt.NDArray[np.int64]

COVERAGE = "coverage"
PREDICTED_STRATEGY = "coverage(predicted)"
"""Strategy name of a selection made on predicted geometry."""
FALLBACK_STRATEGY = "coverage(fallback:scored)"
"""Strategy name when prediction failed: the buffer's ``coverage`` strategy ran on colour-only
frames, which (no voxel sets) picks every frame with the ``scored`` rule."""
DEFAULT_CANDIDATES = 32


class PredictedGeometry(Protocol):
    """Geometry of one frame as the spatial encoder predicts it.

    ``world_points``: (H, W, 3) points in the prediction's shared world frame (any unit);
    ``confidence``: (H, W) per-pixel confidence (VGGT: >= 1).
    """

    @property
    def world_points(self) -> npt.NDArray[np.floating]: ...

    @property
    def confidence(self) -> npt.NDArray[np.floating]: ...


class GeometryPredictor(Protocol):
    """Predicts the geometry of frames in one pass (one world frame and scale for all).

    :class:`~spatial_mllm_ros.model.engine.SpatialMLLMEngine` satisfies it structurally.
    """

    def predict_geometry(self, frames: Sequence[Frame]) -> Sequence[PredictedGeometry]:
        """One :class:`PredictedGeometry` per frame, in order."""
        ...


def geometry_predictor(answerer: object) -> GeometryPredictor | None:
    """``answerer`` as a :class:`GeometryPredictor`, or None when it has no such method."""
    if callable(getattr(answerer, "predict_geometry", None)):
        return answerer  # type: ignore[return-value]  # checked structurally above
    return None


def predicted_voxel_sets(
    geometries: Sequence[PredictedGeometry],
    conf_threshold: float = PAPER_CONF_THRESHOLD,
    conf_percentile: float = PAPER_CONF_PERCENTILE,
) -> tuple[list[KeyArray], float]:
    """Voxel sets of one prediction's frames with one scene-adaptive edge, as the paper.

    Args:
        geometries: per-frame predicted world points (H, W, 3) and confidence (H, W), all in
            one world frame and scale.
        conf_threshold: keep points with confidence above this (paper: 0.1) ...
        conf_percentile: ... and at or above this percentile of their frame (paper: 50).

    Returns:
        (sorted unique int64 voxel keys per frame, voxel edge in the prediction's unit =
        shortest side of the kept points' bounding box / 20).

    Raises:
        PredictionFailedError: no point survives the filter, or their bounding box is flat.
    """
    points = [
        filter_predicted_points(g.world_points, g.confidence, conf_threshold, conf_percentile)
        for g in geometries
    ]
    kept = [p for p in points if p.shape[0]]
    if not kept:
        raise PredictionFailedError("no predicted point passed the confidence filter")
    try:
        edge = paper_voxel_size(np.concatenate(kept, axis=0))
    except GeometryError as err:  # flat bounding box
        raise PredictionFailedError(str(err)) from err
    return [voxel_keys(p, edge) for p in points], edge


def greedy_with_uniform_fill(voxel_sets: Sequence[KeyArray], k: int) -> list[int]:
    """Greedy max coverage of ``k``, filled up to ``min(k, n)`` with uniform picks.

    Returns indices in selection order: greedy's, then the uniform picks of ``k`` over
    ``range(n)`` it lacks, in order.  The uniform pick replaces it when that covers strictly
    more voxels (the buffer's ``coverage`` guard).
    """
    n = len(voxel_sets)
    picked = max_coverage(voxel_sets, k)
    uniform = uniform_indices(n, k)
    chosen = set(picked)
    for i in uniform:
        if len(picked) >= min(k, n):
            break
        if i not in chosen:
            picked.append(i)
            chosen.add(i)
    if union_size(voxel_sets, uniform) > union_size(voxel_sets, picked):
        return uniform
    return picked


def select_monocular(
    snapshot: BufferSnapshot,
    k: int,
    predictor: GeometryPredictor,
    candidates: int = DEFAULT_CANDIDATES,
) -> Selection:
    """Choose ``k`` frames of a colour-only snapshot by coverage of predicted geometry.

    Args:
        snapshot: the buffer's frames (voxel sets are ignored; normally all None).
        k: frames to choose.
        predictor: predicts the candidates' geometry in one pass.
        candidates: frames to predict, evenly spaced over the snapshot (at least ``k``;
            paper: up to 128).

    Returns:
        A :class:`Selection` named :data:`PREDICTED_STRATEGY`, indices into ``snapshot``.

    Raises:
        PredictionFailedError: the prediction is unusable. Whatever the predictor raises
            propagates unchanged.
    """
    n = len(snapshot)
    cand = uniform_indices(n, max(candidates, k))
    frames = [snapshot.frames[i] for i in cand]
    geometries = predictor.predict_geometry(frames)
    if len(geometries) != len(frames):
        raise PredictionFailedError(
            f"predicted geometry of {len(geometries)} frames for {len(frames)}"
        )
    sets, _edge = predicted_voxel_sets(geometries)
    order = greedy_with_uniform_fill(sets, k)
    total = union_size(sets, range(len(sets)))

    def cov(ids: Sequence[int]) -> float:
        return union_size(sets, ids) / total if total else 0.0

    idx = tuple(sorted(cand[j] for j in order))
    return Selection(
        frames=tuple(snapshot.frames[i] for i in idx),
        indices=idx,
        selection_order=tuple(cand[j] for j in order),
        strategy=PREDICTED_STRATEGY,
        coverage=cov(order),
        uniform_coverage=cov(uniform_indices(len(sets), k)),
        frame_stamps_ns=tuple(snapshot.frames[i].stamp_ns for i in idx),
    )


def needs_prediction(snapshot: BufferSnapshot, k: int, strategy: str) -> bool:
    """True when the monocular path applies: ``coverage`` asked, more frames than ``k``, and
    no frame with sensor geometry (see the module docstring for mixed snapshots)."""
    return (
        strategy == COVERAGE
        and len(snapshot) > k
        and all(v is None for v in snapshot.voxel_sets)
    )


def select_frames(
    buffer: SpatialFrameBuffer,
    snapshot: BufferSnapshot,
    k: int,
    strategy: str,
    answerer: object,
    candidates: int = DEFAULT_CANDIDATES,
) -> Selection:
    """The question's frames: :func:`select_monocular` when it applies and succeeds, else
    ``buffer.select`` (named :data:`FALLBACK_STRATEGY` when prediction was tried and failed).

    Raises:
        SamplingError: from ``buffer.select`` (e.g. an unknown strategy).
    """
    predictor = geometry_predictor(answerer)
    if predictor is None or not needs_prediction(snapshot, k, strategy):
        return buffer.select(k, strategy, snapshot=snapshot)
    try:
        return select_monocular(snapshot, k, predictor, candidates)
    except Exception:  # the model is arbitrary code: any failure falls back
        selection = buffer.select(k, strategy, snapshot=snapshot)
        return dataclasses.replace(selection, strategy=FALLBACK_STRATEGY)
