"""An OK answer's notes: fewer frames than asked and why, and what its frames lacked
(issue 16 point 3, issue 17 point 8), through the pipeline with fake answerers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from testkit.fakes import GeometryAnswerer, ScriptedAnswerer
from testkit.frames import S, colour_buffer, colour_frame, depth_frame

from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus, QuestionRequest
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer
from spatial_mllm_ros.sampling.predicted import PREDICTED_STRATEGY, PredictedGeometry


def answer(buf: SpatialFrameBuffer, budget: int, strategy: str = "",
           model: object | None = None) -> AnswerRecord:
    config = PipelineConfig(frame_budget=budget, grounding=False)
    pipeline = AnsweringPipeline(model or ScriptedAnswerer("3"), config,  # type: ignore[arg-type]
                                 clock=lambda: 0.0)
    rec = pipeline.answer(QuestionRequest(1, "How many boxes are there?", strategy=strategy), buf)
    assert rec.status is AnswerStatus.OK, rec.error
    return rec


def walk_frame(i: int) -> Frame:
    """A posed RGB-D frame ``i`` metres along x: each sees its own patch of a wall."""
    f = depth_frame(i)
    pose = np.eye(4)
    pose[0, 3] = float(i)
    return replace(f, pose=pose)


def test_a_budget_above_the_buffer_says_how_many_it_holds() -> None:
    buf = colour_buffer([walk_frame(i) for i in range(5)])
    rec = answer(buf, 8)
    assert len(rec.frame_stamps_ns) == 5
    assert rec.notes == ["8 frames asked, 5 used: the buffer holds 5 frames"]
    assert 0.0 < rec.coverage <= 1.0


def test_the_budget_used_in_full_gives_no_note() -> None:
    rec = answer(colour_buffer([walk_frame(i) for i in range(5)]), 3, "uniform")
    assert len(rec.frame_stamps_ns) == 3 and rec.notes == []


def test_colour_only_frames_have_no_coverage_and_say_why() -> None:
    rec = answer(colour_buffer([colour_frame(i) for i in range(6)]), 3, "uniform")
    assert math.isnan(rec.coverage) and math.isnan(rec.uniform_coverage)  # was 0.0 and 0.0
    assert rec.notes == [
        "the frames had no depth, no pose and no camera intrinsics: coverage not measured"]
    assert rec.to_json()["coverage"] is None and rec.error == ""


def test_frames_with_pose_but_no_depth_name_only_the_depth() -> None:
    frames = [replace(walk_frame(i), depth_m=None) for i in range(4)]
    rec = answer(colour_buffer(frames), 2, "uniform")
    assert rec.notes == ["the frames had no depth: coverage not measured"]


def test_mixed_frames_say_how_many_add_nothing_to_coverage() -> None:
    frames = [walk_frame(0), colour_frame(1), walk_frame(2), colour_frame(3)]
    rec = answer(colour_buffer(frames), 4, "uniform")
    assert rec.coverage == 1.0
    assert rec.notes == [
        "2 of 4 frames had no depth, no pose and no camera intrinsics: they add nothing to the "
        "coverage"]


def test_predicted_geometry_greedy_stop_and_what_the_frames_lacked() -> None:
    # every frame sees the same cells: greedy takes one frame and stops, without fill
    cells = np.array([[[0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [20.0, 20.0, 20.0]]], np.float32)
    same = PredictedGeometry(cells, np.full((1, 3), 5.0, np.float32))
    rec = answer(colour_buffer([colour_frame(i) for i in range(5)]), 3,
                 model=GeometryAnswerer([same] * 5))
    assert rec.strategy == PREDICTED_STRATEGY and rec.frame_stamps_ns == [1 * S]
    assert rec.notes == [
        "3 frames asked, 1 used: greedy coverage stopped: no other frame adds voxels",
        "the frames had no depth, no pose and no camera intrinsics: coverage is of the "
        "geometry the model predicted"]


def test_a_colour_folder_at_30_hz_is_kept_whole_and_answered_from_the_budget() -> None:
    # issue 16 point 2: the node's buffer settings kept one frame of a 15-frame colour folder
    frames = [replace(colour_frame(i), stamp_ns=i * 33_333_333) for i in range(15)]
    buf = SpatialFrameBuffer(BufferConfig())
    assert all(buf.add(f).admitted for f in frames)
    rec = answer(buf, 8, "uniform")
    assert len(set(rec.frame_stamps_ns)) == 8 and rec.notes[0].endswith("coverage not measured")
