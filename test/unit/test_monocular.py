"""Monocular frame selection on predicted geometry, with a fake predictor (no model)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pytest

from spatial_mllm_ros.answering.errors import PredictionFailedError
from spatial_mllm_ros.answering.monocular import (
    FALLBACK_STRATEGY,
    PREDICTED_STRATEGY,
    predicted_voxel_sets,
    select_frames,
    select_monocular,
)
from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import AnswerStatus, GenerationResult, QuestionRequest
from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame
from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer

S = 1_000_000_000
HIGH, LOW = 5.0, 0.05  # confidences: kept / dropped by the paper's filter


class Geo(NamedTuple):
    world_points: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]


def row_frame(cells: Sequence[int]) -> Geo:
    """A frame seeing cells ``cells`` of a row along x (edge 1 when the bbox is [0, 20]^3),
    two anchor points that fix the union's bounding box, and as many far-away points of low
    confidence that the filter must drop (else the bbox, and the edge, would change)."""
    good = [(c + 0.5, 0.5, 0.5) for c in cells] + [(0.0, 0.0, 0.0), (20.0, 20.0, 20.0)]
    junk = [(500.0 + i, -300.0, 90.0) for i in range(len(good))]
    pts = np.array(good + junk, dtype=np.float32).reshape(2, -1, 3)
    conf = np.array([HIGH] * len(good) + [LOW] * len(junk), dtype=np.float32).reshape(2, -1)
    return Geo(pts, conf)


# Greedy: f1 (10 cells), then f2 (+6: 10..15), then f3 (+4: 16..19) covers all 20 cells;
# uniform over 6 frames with k=3 is [0, 3, 5]: cells 0..3 and 14..19, 10 of 20.
ROW_SCENE = [
    row_frame(range(0, 4)),
    row_frame(range(0, 10)),
    row_frame(range(8, 16)),
    row_frame(range(14, 20)),
    row_frame([3, 4]),
    row_frame([16, 17]),
]


def colour_frame(i: int) -> Frame:
    return Frame(stamp_ns=(i + 1) * S, frame_id="cam", rgb=np.full((8, 8, 3), i, np.uint8))


def depth_frame(i: int) -> Frame:
    k = CameraIntrinsics(8.0, 8.0, 4.0, 4.0, 8, 8)
    return Frame(
        stamp_ns=(i + 1) * S,
        frame_id="cam",
        rgb=np.zeros((8, 8, 3), np.uint8),
        depth_m=np.ones((8, 8), np.float32),
        intrinsics=k,
        pose=np.eye(4),
        world_frame_id="map",
    )


class FakeModel:
    """An answerer that also predicts geometry: per frame, the scene entry of its stamp."""

    def __init__(self, scene: Sequence[Geo], fail: bool = False) -> None:
        self.scene = scene
        self.fail = fail
        self.predicted: list[list[int]] = []  # stamps of each predict_geometry call
        self.answered: list[list[int]] = []

    def predict_geometry(self, frames: Sequence[Frame]) -> list[Geo]:
        self.predicted.append([f.stamp_ns for f in frames])
        if self.fail:
            raise RuntimeError("the VGGT heads are not loaded (simulated)")
        return [self.scene[f.stamp_ns // S - 1] for f in frames]

    def answer(
        self, frames: Sequence[Frame], prompt: str, max_new_tokens: int = 64
    ) -> GenerationResult:
        self.answered.append([f.stamp_ns for f in frames])
        return GenerationResult("3", {"decode": 0.01}, 1, (8, 8))


def buffer_of(frames: Sequence[Frame]) -> SpatialFrameBuffer:
    buf = SpatialFrameBuffer(
        BufferConfig(max_frames=64, color_only_share=1.0, color_min_interval_s=0.0)
    )
    for f in frames:
        assert buf.add(f).admitted
    return buf


def test_predicted_voxel_sets_filter_and_edge() -> None:
    sets, edge = predicted_voxel_sets(ROW_SCENE)
    assert edge == pytest.approx(1.0)  # bbox [0, 20]^3 of the kept points / 20: junk dropped
    # 10 row cells (cell 0 holds the (0,0,0) anchor too) + the (20,20,20) anchor
    assert [s.size for s in sets] == [5, 11, 10, 8, 4, 4]


def test_greedy_choice_on_hand_made_clouds() -> None:
    snap = buffer_of([colour_frame(i) for i in range(6)]).snapshot()
    model = FakeModel(ROW_SCENE)
    sel = select_monocular(snap, 3, model, candidates=32)
    assert model.predicted == [[(i + 1) * S for i in range(6)]]  # one batch of all frames
    assert sel.selection_order == (1, 2, 3)
    assert sel.indices == (1, 2, 3)
    assert sel.frame_stamps_ns == (2 * S, 3 * S, 4 * S)
    assert sel.strategy == PREDICTED_STRATEGY
    assert sel.coverage == pytest.approx(1.0)
    assert sel.uniform_coverage == pytest.approx(11 / 21)  # frames 0, 3, 5


def test_early_stop_is_filled_with_uniform_picks() -> None:
    same = [row_frame(range(0, 6))] * 5
    snap = buffer_of([colour_frame(i) for i in range(5)]).snapshot()
    sel = select_monocular(snap, 3, FakeModel(same))
    # greedy takes frame 0 and stops (nothing left to cover); uniform of 3 over 5 = 0, 2, 4
    assert sel.selection_order == (0, 2, 4)
    assert sel.coverage == sel.uniform_coverage == pytest.approx(1.0)


def test_uniform_guard_when_greedy_covers_less() -> None:
    # greedy: frame 1 (cells 0,1,4,5,10: ties frame 2 on 6 voxels, lower index), then frame 0
    # (+2) -> 8 voxels; the uniform pick 0, 2 covers cells 0..7 + the anchor: 9.
    scene = [row_frame(range(0, 4)), row_frame([0, 1, 4, 5, 10]), row_frame(range(4, 8))]
    snap = buffer_of([colour_frame(i) for i in range(3)]).snapshot()
    sel = select_monocular(snap, 2, FakeModel(scene))
    assert sel.selection_order == (0, 2)
    assert sel.coverage == sel.uniform_coverage == pytest.approx(9 / 10)


def test_candidates_are_evenly_spaced_and_predicted_in_one_call() -> None:
    scene = [row_frame([i]) for i in range(10)]
    snap = buffer_of([colour_frame(i) for i in range(10)]).snapshot()
    model = FakeModel(scene)
    sel = select_monocular(snap, 2, model, candidates=4)
    assert model.predicted == [[1 * S, 4 * S, 7 * S, 10 * S]]  # indices 0, 3, 6, 9
    assert set(sel.indices) <= {0, 3, 6, 9} and len(sel.indices) == 2


def test_candidates_never_fewer_than_k() -> None:
    scene = [row_frame([i]) for i in range(10)]
    snap = buffer_of([colour_frame(i) for i in range(10)]).snapshot()
    model = FakeModel(scene)
    sel = select_monocular(snap, 5, model, candidates=2)
    assert len(model.predicted[0]) == 5 and len(sel.indices) == 5


def test_unusable_prediction_raises() -> None:
    snap = buffer_of([colour_frame(i) for i in range(4)]).snapshot()
    low = Geo(np.zeros((2, 2, 3), np.float32), np.full((2, 2), LOW, np.float32))
    with pytest.raises(PredictionFailedError, match="confidence"):
        select_monocular(snap, 2, FakeModel([low] * 4))
    flat = row_frame([1, 2])._replace(
        world_points=np.zeros((2, 4, 3), np.float32)  # every point at the origin
    )
    with pytest.raises(PredictionFailedError):
        select_monocular(snap, 2, FakeModel([flat] * 4))


def ask(strategy: str = "") -> QuestionRequest:
    return QuestionRequest(query_id=1, question="How many boxes are there?", strategy=strategy)


def pipeline(model: object) -> AnsweringPipeline:
    config = PipelineConfig(frame_budget=3, grounding=False)
    return AnsweringPipeline(model, config, clock=lambda: 0.0)  # type: ignore[arg-type]


def test_pipeline_selects_on_predicted_geometry() -> None:
    model = FakeModel(ROW_SCENE)
    rec = pipeline(model).answer(ask(), buffer_of([colour_frame(i) for i in range(6)]))
    assert rec.status is AnswerStatus.OK and rec.error == ""
    assert rec.strategy == PREDICTED_STRATEGY
    assert rec.frame_stamps_ns == [2 * S, 3 * S, 4 * S]
    assert model.answered == [[2 * S, 3 * S, 4 * S]]
    assert rec.coverage == pytest.approx(1.0)
    assert rec.uniform_coverage == pytest.approx(11 / 21)
    assert "sampling" in rec.timings_s


def test_pipeline_falls_back_when_prediction_fails() -> None:
    model = FakeModel(ROW_SCENE, fail=True)
    buf = buffer_of([colour_frame(i) for i in range(6)])
    rec = pipeline(model).answer(ask(), buf)
    assert model.predicted  # it was tried
    assert rec.status is AnswerStatus.OK and rec.error == ""
    assert rec.strategy == FALLBACK_STRATEGY
    plain = buf.select(3, "coverage")
    assert rec.frame_stamps_ns == list(plain.frame_stamps_ns)


def test_mixed_snapshot_keeps_the_buffer_strategy() -> None:
    frames = [colour_frame(i) for i in range(6)]
    frames[2] = depth_frame(2)
    buf = buffer_of(frames)
    model = FakeModel(ROW_SCENE)
    sel = select_frames(buf, buf.snapshot(), 3, "coverage", model)
    assert model.predicted == []
    assert sel.strategy == "coverage" and 2 in sel.indices


@pytest.mark.parametrize(
    ("strategy", "n_frames", "k"), [("uniform", 6, 3), ("scored", 6, 3), ("coverage", 3, 3)]
)
def test_no_prediction_when_not_needed(strategy: str, n_frames: int, k: int) -> None:
    buf = buffer_of([colour_frame(i) for i in range(n_frames)])
    model = FakeModel(ROW_SCENE)
    sel = select_frames(buf, buf.snapshot(), k, strategy, model)
    assert model.predicted == []
    assert sel.strategy == strategy and len(sel.indices) == min(k, n_frames)


def test_answerer_without_geometry_keeps_the_buffer_strategy() -> None:
    class TextOnly:
        def answer(
            self, frames: Sequence[Frame], prompt: str, max_new_tokens: int = 64
        ) -> GenerationResult:
            return GenerationResult("3", {}, 1, (8, 8))

    buf = buffer_of([colour_frame(i) for i in range(6)])
    rec = pipeline(TextOnly()).answer(ask(), buf)
    assert rec.status is AnswerStatus.OK and rec.strategy == "coverage"
