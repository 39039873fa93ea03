"""Glue between the answerer and selection on predicted geometry (colour-only cameras).

The rule is :mod:`spatial_mllm_ros.sampling.predicted` (the reference's space-aware sampling);
this module only decides whether it applies, asks the answerer's ``predict_geometry`` for the
candidate frames (one call, so they share one world frame and scale) and hands the result to
:func:`~spatial_mllm_ros.sampling.predicted.select_on_predicted`.

Failure of the prediction (no heads loaded, any model error, geometry that yields no voxels) is
not an answering error: the buffer's strategy answers, and the selection says so in its strategy
name (:data:`FALLBACK_STRATEGY`).  Predicted geometry is not cached: a question's candidate set
changes as frames arrive, and it costs one spatial-encoder pass (the benchmark
``benchmarks/bench_monocular.py`` gives its CPU time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.sampling.online import SpatialFrameBuffer
from spatial_mllm_ros.sampling.predicted import (
    DEFAULT_CANDIDATES,
    FALLBACK_STRATEGY,
    PREDICTED_STRATEGY,
    PredictedGeometry,
    candidate_indices,
    needs_prediction,
    select_on_predicted,
)
from spatial_mllm_ros.sampling.selection import BufferSnapshot, Selection

__all__ = [
    "DEFAULT_CANDIDATES",
    "FALLBACK_STRATEGY",
    "PREDICTED_STRATEGY",
    "GeometryPredictor",
    "geometry_predictor",
    "select_frames",
]


@runtime_checkable
class GeometryPredictor(Protocol):
    """Predicts the geometry of frames in one pass (one world frame and scale for all).

    :class:`~spatial_mllm_ros.model.engine.SpatialMLLMEngine` and
    :class:`~spatial_mllm_ros.answering.process.ProcessAnswerer` satisfy it structurally.
    """

    def predict_geometry(self, frames: Sequence[Frame]) -> Sequence[PredictedGeometry]:
        """One :class:`PredictedGeometry` per frame, in order."""
        ...


def geometry_predictor(answerer: object) -> GeometryPredictor | None:
    """``answerer`` as a :class:`GeometryPredictor`, or None when it has no such method."""
    return answerer if isinstance(answerer, GeometryPredictor) else None


def select_frames(
    buffer: SpatialFrameBuffer,
    snapshot: BufferSnapshot,
    k: int,
    strategy: str,
    answerer: object,
    candidates: int = DEFAULT_CANDIDATES,
) -> Selection:
    """The question's frames: selection on predicted geometry when it applies and succeeds,
    else ``buffer.select`` (named :data:`FALLBACK_STRATEGY` when prediction was tried and
    failed).

    Args:
        buffer: the frame buffer (its strategies answer when prediction does not apply).
        snapshot: the frames to choose from.
        k: frame budget.
        strategy: the question's strategy name.
        answerer: the model; used only when it has ``predict_geometry``.
        candidates: frames whose geometry is predicted (at least ``k``; reference: 128).

    Raises:
        SamplingError: from ``buffer.select`` (e.g. an unknown strategy).
    """
    predictor = geometry_predictor(answerer)
    if predictor is None or not needs_prediction(snapshot, k, strategy):
        return buffer.select(k, strategy, snapshot=snapshot)
    try:
        picks = candidate_indices(len(snapshot), k, candidates)
        geometries = predictor.predict_geometry([snapshot.frames[i] for i in picks])
        return select_on_predicted(snapshot, picks, geometries, k)
    except Exception:  # the model is arbitrary code: any failure falls back
        selection = buffer.select(k, strategy, snapshot=snapshot)
        return dataclasses.replace(selection, strategy=FALLBACK_STRATEGY)
