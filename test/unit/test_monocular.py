"""Selection on predicted geometry (colour-only cameras), with a fake predictor (no model).

The expected behaviour is the reference's space-aware sampling (``src/sampling/sa_sampling.py``
of diankun-wu/Spatial-MLLM): truncated-linspace pre-sampling, a global confidence median, a
grid anchored at the kept points' bounding-box minimum with edge = shortest side / 20, greedy
with ties to the lowest index, stop without fill when nothing is new, sorted output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest
from testkit.fakes import GeometryAnswerer, ScriptedAnswerer
from testkit.frames import S, colour_buffer, colour_frame, depth_frame

from spatial_mllm_ros.answering.monocular import select_frames
from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import AnswerStatus, QuestionRequest
from spatial_mllm_ros.sampling.errors import UnusableGeometryError
from spatial_mllm_ros.sampling.predicted import (
    FALLBACK_STRATEGY,
    PREDICTED_STRATEGY,
    REFERENCE_CANDIDATES,
    PredictedGeometry,
    candidate_indices,
    predicted_voxel_sets,
    select_on_predicted,
)
from spatial_mllm_ros.sampling.selection import BufferSnapshot, Selection

HIGH, LOW = 5.0, 0.05  # confidences: kept / dropped by the reference's filter


def geometry(
    points: Sequence[tuple[float, float, float]], conf: Sequence[float]
) -> PredictedGeometry:
    """A (1, N) "image" of the given points and confidences."""
    return PredictedGeometry(
        np.array(points, dtype=np.float32).reshape(1, -1, 3),
        np.array(conf, dtype=np.float32).reshape(1, -1),
    )


def row_frame(cells: Sequence[int]) -> PredictedGeometry:
    """A frame seeing cells ``cells`` of a row along x (edge 1 when the bbox is [0, 20]^3),
    two anchor points that fix the union's bounding box, and as many far-away points of low
    confidence that the filter must drop (else the bbox, and the edge, would change)."""
    good = [(c + 0.5, 0.5, 0.5) for c in cells] + [(0.0, 0.0, 0.0), (20.0, 20.0, 20.0)]
    junk = [(500.0 + i, -300.0, 90.0) for i in range(len(good))]
    pts = np.array(good + junk, dtype=np.float32).reshape(2, -1, 3)
    conf = np.array([HIGH] * len(good) + [LOW] * len(junk), dtype=np.float32).reshape(2, -1)
    return PredictedGeometry(pts, conf)


# Greedy: f1 (10 cells), then f2 (+6: 10..15), then f3 (+4: 16..19) covers all 20 cells;
# uniform over 6 frames with k=3 is [0, 2, 5] (truncated linspace 0, 2.5, 5): cells 0..3,
# 8..15, 16, 17 and the far anchor, 15 of 21 voxels.
ROW_SCENE = [
    row_frame(range(0, 4)),
    row_frame(range(0, 10)),
    row_frame(range(8, 16)),
    row_frame(range(14, 20)),
    row_frame([3, 4]),
    row_frame([16, 17]),
]


def select(
    snap: BufferSnapshot, k: int, model: GeometryAnswerer, candidates: int = 32
) -> Selection:
    """The prediction path without the fallback: predict the candidates, select on them."""
    picks = candidate_indices(len(snap), k, candidates)
    geometries = model.predict_geometry([snap.frames[i] for i in picks])
    return select_on_predicted(snap, picks, geometries, k)


def test_predicted_voxel_sets_filter_and_edge() -> None:
    vox = predicted_voxel_sets(ROW_SCENE)
    assert vox.voxel_size == pytest.approx(1.0)  # bbox [0, 20]^3 of the kept points / 20
    np.testing.assert_array_equal(vox.origin, [0.0, 0.0, 0.0])
    # 10 row cells (cell 0 holds the (0,0,0) anchor too) + the (20,20,20) anchor
    assert [s.size for s in vox.sets] == [5, 11, 10, 8, 4, 4]


def test_confidence_median_is_global_over_all_candidates() -> None:
    # Frame 0 is confident everywhere (2.0) but less than frame 1 (10.0): per frame, each
    # median would keep everything; the reference's median over both is 6, so frame 0 is dropped.
    a = geometry([(0.0, 0.0, 0.0), (1.0, 1.0, 1.0)], [2.0, 2.0])
    b = geometry([(4.0, 4.0, 4.0), (24.0, 24.0, 24.0)], [10.0, 10.0])
    vox = predicted_voxel_sets([a, b])
    assert vox.conf_cut == pytest.approx(6.0)
    assert vox.sets[0].size == 0 and vox.sets[1].size == 2
    assert vox.voxel_size == pytest.approx(1.0)  # the bbox of frame 1's points only
    np.testing.assert_array_equal(vox.origin, [4.0, 4.0, 4.0])


def test_confidence_must_also_exceed_the_absolute_threshold() -> None:
    # the median is 0.1, which every point reaches; "> 0.1" still drops the three at (9, 9, 9)
    pts = [(9.0, 9.0, 9.0)] * 3 + [(0.0, 0.0, 0.0), (20.0, 20.0, 20.0)]
    vox = predicted_voxel_sets([geometry(pts, [0.1, 0.1, 0.1, 0.5, 0.5])])
    assert vox.conf_cut == np.float32(0.1) and vox.sets[0].size == 2  # float32(0.1) > 0.1 fails
    with pytest.raises(UnusableGeometryError, match="confidence"):
        predicted_voxel_sets([geometry(pts, [0.1] * 5)])


def test_grid_is_anchored_at_the_bounding_box_minimum() -> None:
    # bbox [0.25, 20.25]^3 -> edge 1; the reference's cells are floor((p - 0.25) / 1), so
    # x = 0.5 and x = 1.125 share cell 0 with the near corner (a grid at 0 would split them).
    pts = [(0.25, 0.25, 0.25), (20.25, 20.25, 20.25), (0.5, 0.5, 0.5), (1.125, 0.5, 0.5)]
    vox = predicted_voxel_sets([geometry(pts, [1.0] * 4)])
    assert vox.voxel_size == pytest.approx(1.0)
    np.testing.assert_allclose(vox.origin, [0.25, 0.25, 0.25])
    assert vox.sets[0].size == 2


def test_greedy_choice_on_hand_made_clouds() -> None:
    snap = colour_buffer([colour_frame(i) for i in range(6)]).snapshot()
    model = GeometryAnswerer(ROW_SCENE)
    sel = select(snap, 3, model)
    assert model.predicted == [[(i + 1) * S for i in range(6)]]  # one batch of all frames
    assert sel.selection_order == (1, 2, 3)
    assert sel.indices == (1, 2, 3)
    assert sel.frame_stamps_ns == (2 * S, 3 * S, 4 * S)
    assert sel.strategy == PREDICTED_STRATEGY
    assert sel.coverage == pytest.approx(1.0)
    assert sel.uniform_coverage == pytest.approx(15 / 21)  # frames 0, 2, 5


def test_ties_go_to_the_lowest_index_and_greedy_stops_without_fill() -> None:
    # f3 is largest (4 cells); then f0, f1, f2 all add 3 cells: the lowest index, f0, wins;
    # then f1 (+3); f2 duplicates f0 and adds nothing, so k=4 stops at 3 frames, sorted.
    scene = [row_frame([1, 2, 3]), row_frame([5, 6, 7]), row_frame([1, 2, 3]),
             row_frame([9, 10, 11, 12])]
    snap = colour_buffer([colour_frame(i) for i in range(5)]).snapshot()
    sel = select_on_predicted(snap, [0, 1, 2, 3], scene, 4)
    assert sel.selection_order == (3, 0, 1)
    assert sel.indices == (0, 1, 3)
    assert sel.frame_stamps_ns == (1 * S, 2 * S, 4 * S)
    assert sel.coverage == pytest.approx(1.0)


def test_early_stop_returns_fewer_frames_than_the_budget() -> None:
    same = [row_frame(range(0, 6))] * 5
    snap = colour_buffer([colour_frame(i) for i in range(5)]).snapshot()
    sel = select(snap, 3, GeometryAnswerer(same))
    # greedy takes frame 0 and stops (nothing left to cover); no fill, as the reference
    assert sel.selection_order == (0,) and sel.indices == (0,)
    assert sel.coverage == sel.uniform_coverage == pytest.approx(1.0)


def test_no_uniform_guard_on_predicted_geometry() -> None:
    # greedy: frame 1 (cells 0,1,4,5,10: ties frame 2 on 6 voxels, lower index), then frame 0
    # (+2) -> 8 voxels; the uniform pick 0, 2 would cover cells 0..7 + the anchor: 9. The
    # reference returns greedy's picks all the same.
    scene = [row_frame(range(0, 4)), row_frame([0, 1, 4, 5, 10]), row_frame(range(4, 8))]
    snap = colour_buffer([colour_frame(i) for i in range(3)]).snapshot()
    sel = select(snap, 2, GeometryAnswerer(scene))
    assert sel.selection_order == (1, 0) and sel.indices == (0, 1)
    assert sel.coverage == pytest.approx(8 / 10)
    assert sel.uniform_coverage == pytest.approx(9 / 10)


def test_candidates_are_evenly_spaced_and_predicted_in_one_call() -> None:
    scene = [row_frame([i]) for i in range(10)]
    snap = colour_buffer([colour_frame(i) for i in range(10)]).snapshot()
    model = GeometryAnswerer(scene)
    sel = select(snap, 2, model, candidates=4)
    assert model.predicted == [[1 * S, 4 * S, 7 * S, 10 * S]]  # indices 0, 3, 6, 9
    assert set(sel.indices) <= {0, 3, 6, 9} and len(sel.indices) == 2


def test_pre_sampling_of_300_frames_is_the_reference_128() -> None:
    # reference: linspace(0, 299, 128) truncated, i.e. floor(i * 299 / 127)
    want = [i * 299 // 127 for i in range(128)]
    assert candidate_indices(300, 16, REFERENCE_CANDIDATES) == want
    assert want[2] == 4  # 4.71: truncated, not rounded
    buf = colour_buffer([colour_frame(i) for i in range(300)], max_frames=300)
    model = GeometryAnswerer([row_frame([i % 20]) for i in range(300)])
    sel = select_frames(buf, buf.snapshot(), 16, "coverage", model, REFERENCE_CANDIDATES)
    assert model.predicted == [[(i + 1) * S for i in want]]
    assert sel.strategy == PREDICTED_STRATEGY and set(sel.indices) <= set(want)


def test_candidates_never_fewer_than_k() -> None:
    scene = [row_frame([i + 1]) for i in range(10)]  # each adds one cell (cell 0 is an anchor's)
    snap = colour_buffer([colour_frame(i) for i in range(10)]).snapshot()
    model = GeometryAnswerer(scene)
    sel = select(snap, 5, model, candidates=2)
    assert len(model.predicted[0]) == 5 and len(sel.indices) == 5


def test_unusable_prediction_raises() -> None:
    snap = colour_buffer([colour_frame(i) for i in range(4)]).snapshot()
    low = PredictedGeometry(np.zeros((2, 2, 3), np.float32), np.full((2, 2), LOW, np.float32))
    with pytest.raises(UnusableGeometryError, match="confidence"):
        select(snap, 2, GeometryAnswerer([low] * 4))
    flat = dataclasses.replace(
        row_frame([1, 2]), world_points=np.zeros((2, 4, 3), np.float32)  # all at the origin
    )
    with pytest.raises(UnusableGeometryError):
        select(snap, 2, GeometryAnswerer([flat] * 4))
    with pytest.raises(UnusableGeometryError, match="3 frames for 4"):
        select_on_predicted(snap, [0, 1, 2, 3], ROW_SCENE[:3], 2)


def ask(strategy: str = "") -> QuestionRequest:
    return QuestionRequest(query_id=1, question="How many boxes are there?", strategy=strategy)


def pipeline(model: object) -> AnsweringPipeline:
    config = PipelineConfig(frame_budget=3, grounding=False)
    return AnsweringPipeline(model, config, clock=lambda: 0.0)  # type: ignore[arg-type]


def test_pipeline_selects_on_predicted_geometry() -> None:
    model = GeometryAnswerer(ROW_SCENE)
    rec = pipeline(model).answer(ask(), colour_buffer([colour_frame(i) for i in range(6)]))
    assert rec.status is AnswerStatus.OK and rec.error == ""
    assert rec.strategy == PREDICTED_STRATEGY
    assert rec.frame_stamps_ns == [2 * S, 3 * S, 4 * S]
    assert model.answered == [[2 * S, 3 * S, 4 * S]]
    assert rec.coverage == pytest.approx(1.0)
    assert rec.uniform_coverage == pytest.approx(15 / 21)
    assert "sampling" in rec.timings_s


LOW_GEOMETRY = PredictedGeometry(np.zeros((2, 2, 3), np.float32), np.full((2, 2), LOW, np.float32))
LOW_SCENE = [LOW_GEOMETRY] * 6


@pytest.mark.parametrize(
    "model", [GeometryAnswerer(ROW_SCENE, fail=True), GeometryAnswerer(LOW_SCENE)],
    ids=["model_error", "unusable_geometry"],
)
def test_pipeline_falls_back_when_prediction_fails(model: GeometryAnswerer) -> None:
    buf = colour_buffer([colour_frame(i) for i in range(6)])
    rec = pipeline(model).answer(ask(), buf)
    assert model.predicted  # it was tried
    assert rec.status is AnswerStatus.OK and rec.error == ""
    assert rec.strategy == FALLBACK_STRATEGY
    plain = buf.select(3, "coverage")
    assert rec.frame_stamps_ns == list(plain.frame_stamps_ns)


def test_mixed_snapshot_keeps_the_buffer_strategy() -> None:
    frames = [colour_frame(i) for i in range(6)]
    frames[2] = depth_frame(2)
    buf = colour_buffer(frames)
    model = GeometryAnswerer(ROW_SCENE)
    sel = select_frames(buf, buf.snapshot(), 3, "coverage", model)
    assert model.predicted == []
    assert sel.strategy == "coverage" and 2 in sel.indices


@pytest.mark.parametrize(
    ("strategy", "n_frames", "k"), [("uniform", 6, 3), ("scored", 6, 3), ("coverage", 3, 3)]
)
def test_no_prediction_when_not_needed(strategy: str, n_frames: int, k: int) -> None:
    buf = colour_buffer([colour_frame(i) for i in range(n_frames)])
    model = GeometryAnswerer(ROW_SCENE)
    sel = select_frames(buf, buf.snapshot(), k, strategy, model)
    assert model.predicted == []
    assert sel.strategy == strategy and len(sel.indices) == min(k, n_frames)


def test_answerer_without_geometry_keeps_the_buffer_strategy() -> None:
    buf = colour_buffer([colour_frame(i) for i in range(6)])
    rec = pipeline(ScriptedAnswerer("3")).answer(ask(), buf)
    assert rec.status is AnswerStatus.OK and rec.strategy == "coverage"
