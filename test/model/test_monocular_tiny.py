"""Monocular cameras: frame selection on geometry the tiny model's VGGT heads predict."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from testkit.frames import colour_buffer
from testkit.tiny import require_data, tiny_checkpoint

from spatial_mllm_ros.answering.monocular import GeometryPredictor, select_frames
from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import AnswerStatus, QuestionRequest
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.geometry import voxel_keys
from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir
from spatial_mllm_ros.model.engine import SpatialMLLMEngine
from spatial_mllm_ros.sampling.coverage import greedy_set_cover_reference
from spatial_mllm_ros.sampling.predicted import (
    FALLBACK_STRATEGY,
    PREDICTED_STRATEGY,
    candidate_indices,
)
from spatial_mllm_ros.sampling.strategies import union_size

PIXELS = 32 * 28 * 28  # small frames keep the spatial encoder pass short
K, CANDIDATES = 4, 8


def question() -> QuestionRequest:
    return QuestionRequest(
        query_id=3, question="How many boxes are there?", received_s=time.monotonic()
    )


@pytest.fixture(scope="module")
def colour_frames() -> list[Frame]:
    """The shelf frames as a monocular camera gives them: no depth, no pose."""
    frames = load_rgbd_dir(require_data())
    return [dataclasses.replace(f, depth_m=None, pose=None, world_frame_id="") for f in frames]


def pipeline(engine: SpatialMLLMEngine) -> AnsweringPipeline:
    config = PipelineConfig(
        frame_budget=K, grounding=False, max_new_tokens=2, monocular_candidates=CANDIDATES
    )
    return AnsweringPipeline(engine, config)


def test_selection_comes_from_predicted_geometry(colour_frames: list[Frame]) -> None:
    engine = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"), max_pixels=PIXELS)
    predictor: GeometryPredictor = engine  # structural: mypy checks the engine fits
    buf = colour_buffer(colour_frames)
    snap = buf.snapshot()
    assert len(snap) == len(colour_frames) > CANDIDATES
    assert all(v is None for v in snap.voxel_sets)

    # Independently: the reference's recipe on the engine's own prediction of the candidates
    # (global confidence median and > 0.1, grid at the kept points' bbox minimum, edge =
    # shortest side / 20, plain set-based greedy).
    cand = candidate_indices(len(snap), K, CANDIDATES)
    geoms = predictor.predict_geometry([snap.frames[i] for i in cand])
    cut = np.percentile(np.concatenate([g.confidence.ravel() for g in geoms]), 50)
    points = [
        g.world_points[(g.confidence >= cut) & (g.confidence > np.float32(0.1))].astype(float)
        for g in geoms
    ]
    every = np.concatenate(points)
    low = every.min(axis=0)
    edge = float(np.min(every.max(axis=0) - low)) / 20
    sets = [voxel_keys(p, edge, low) for p in points]
    greedy = [cand[j] for j in greedy_set_cover_reference(sets, K)]
    assert greedy, "the tiny model's prediction must give some voxels"

    sel = select_frames(buf, snap, K, "coverage", engine, CANDIDATES)
    assert sel.strategy == PREDICTED_STRATEGY
    assert list(sel.selection_order) == greedy  # no fill, no uniform guard
    assert sel.indices == tuple(sorted(greedy))
    assert sel.coverage == pytest.approx(
        union_size(sets, [cand.index(i) for i in sel.indices]) / union_size(sets, range(len(sets)))
    )

    rec = pipeline(engine).answer(question(), buf)
    assert rec.status is AnswerStatus.OK and rec.error == ""
    assert rec.strategy == PREDICTED_STRATEGY
    assert rec.frame_stamps_ns == list(sel.frame_stamps_ns)
    assert rec.coverage == pytest.approx(sel.coverage)
    assert rec.timings_s["sampling"] > 0


def test_checkpoint_without_heads_falls_back_and_answers(colour_frames: list[Frame]) -> None:
    engine = SpatialMLLMEngine.from_pretrained(
        tiny_checkpoint("v1.1", with_heads=False), max_pixels=PIXELS
    )
    buf = colour_buffer(colour_frames)
    rec = pipeline(engine).answer(question(), buf)
    assert rec.status is AnswerStatus.OK and rec.error == ""
    assert rec.strategy == FALLBACK_STRATEGY
    assert rec.frame_stamps_ns == list(buf.select(K, "coverage").frame_stamps_ns)
