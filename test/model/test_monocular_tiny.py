"""Monocular cameras: frame selection on geometry the tiny model's VGGT heads predict."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from _spatial_mllm_tiny import require_data, tiny_checkpoint

from spatial_mllm_ros.answering.monocular import (
    FALLBACK_STRATEGY,
    PREDICTED_STRATEGY,
    GeometryPredictor,
    select_frames,
)
from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import AnswerStatus, QuestionRequest
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.geometry import filter_predicted_points, paper_voxel_size, voxel_keys
from spatial_mllm_ros.model.engine import SpatialMLLMEngine
from spatial_mllm_ros.sampling import max_coverage
from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer
from spatial_mllm_ros.sampling.strategies import uniform_indices, union_size
from spatial_mllm_ros.synthetic import load_rgbd_dir

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


def buffer_of(frames: list[Frame]) -> SpatialFrameBuffer:
    buf = SpatialFrameBuffer(BufferConfig(color_only_share=1.0, color_min_interval_s=0.0))
    for f in frames:
        assert buf.add(f).admitted
    return buf


def pipeline(engine: SpatialMLLMEngine) -> AnsweringPipeline:
    config = PipelineConfig(
        frame_budget=K, grounding=False, max_new_tokens=2, monocular_candidates=CANDIDATES
    )
    return AnsweringPipeline(engine, config)


def test_selection_comes_from_predicted_geometry(colour_frames: list[Frame]) -> None:
    engine = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"), max_pixels=PIXELS)
    predictor: GeometryPredictor = engine  # structural: mypy checks the engine fits
    buf = buffer_of(colour_frames)
    snap = buf.snapshot()
    assert len(snap) == len(colour_frames) > CANDIDATES
    assert all(v is None for v in snap.voxel_sets)

    # Independently: the paper's recipe on the engine's own prediction of the candidates.
    cand = uniform_indices(len(snap), CANDIDATES)
    geoms = predictor.predict_geometry([snap.frames[i] for i in cand])
    points = [filter_predicted_points(g.world_points, g.confidence) for g in geoms]
    edge = paper_voxel_size(np.concatenate(points))
    sets = [voxel_keys(p, edge) for p in points]
    greedy = [cand[j] for j in max_coverage(sets, K)]
    assert greedy, "the tiny model's prediction must give some voxels"

    sel = select_frames(buf, snap, K, "coverage", engine, CANDIDATES)
    assert sel.strategy == PREDICTED_STRATEGY
    assert len(sel.indices) == K and set(sel.indices) <= set(cand)
    assert list(sel.selection_order[: len(greedy)]) == greedy
    assert sel.coverage == pytest.approx(
        union_size(sets, [cand.index(i) for i in sel.indices]) / union_size(sets, range(len(sets)))
    )
    if len(greedy) < K:  # greedy stopped early: everything was covered
        assert sel.coverage == pytest.approx(1.0)
    assert sel.coverage >= sel.uniform_coverage

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
    buf = buffer_of(colour_frames)
    rec = pipeline(engine).answer(question(), buf)
    assert rec.status is AnswerStatus.OK and rec.error == ""
    assert rec.strategy == FALLBACK_STRATEGY
    assert rec.frame_stamps_ns == list(buf.select(K, "coverage").frame_stamps_ns)
