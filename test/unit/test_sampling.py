"""max_coverage against the set-based greedy, strategies, scoring and the frame budget."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from testkit.frames import random_frames

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.geometry import frame_voxel_keys
from spatial_mllm_ros.sampling import (
    BudgetConfig,
    Candidates,
    UnknownStrategyError,
    adaptive_frame_budget,
    available_strategies,
    get_strategy,
    max_coverage,
    video_tokens,
)
from spatial_mllm_ros.sampling.budget import smart_resize, tokens_per_temporal_patch
from spatial_mllm_ros.sampling.coverage import coverage_fraction, greedy_set_cover_reference
from spatial_mllm_ros.sampling.errors import InvalidInputError
from spatial_mllm_ros.sampling.scoring import frame_scores, select_by_score
from spatial_mllm_ros.sampling.strategies import CoverageStrategy, uniform_indices
from spatial_mllm_ros.synthetic import make_walkthrough

voxel_set = st.lists(st.integers(min_value=-5, max_value=40), max_size=25).map(
    lambda xs: np.array(xs, dtype=np.int64)
)


@settings(max_examples=400, deadline=None)
@given(sets=st.lists(voxel_set, max_size=12), k=st.integers(min_value=-1, max_value=16))
def test_max_coverage_equals_set_based_greedy(sets: list[np.ndarray], k: int) -> None:
    assert max_coverage(sets, k) == greedy_set_cover_reference(sets, k)


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 6), min_size=1, max_size=10),
    k=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_max_coverage_ties_many_equal_sets(sizes: list[int], k: int, seed: int) -> None:
    # many sets of equal size drawn from a tiny universe: ties are everywhere
    rng = np.random.default_rng(seed)
    sets = [np.sort(rng.choice(8, size=s, replace=False)).astype(np.int64) for s in sizes]
    assert max_coverage(sets, k) == greedy_set_cover_reference(sets, k)


def test_max_coverage_basic_cases() -> None:
    a = np.array([1, 2], np.int64)
    b = np.array([3, 4], np.int64)
    assert max_coverage([a, b], 1) == [0]  # tie -> lowest index
    assert max_coverage([a, a.copy(), b], 5) == [0, 2]  # stops when nothing new
    assert max_coverage([np.empty(0, np.int64)] * 3, 2) == []
    assert max_coverage([], 3) == []
    assert max_coverage([a, b], 0) == []
    big = np.array([1, 2, 3, 4], np.int64)
    assert max_coverage([a, big, b], 3) == [1]
    with pytest.raises(InvalidInputError):
        max_coverage([np.zeros((2, 2), np.int64)], 1)


def test_max_coverage_large_random_instance_matches_reference() -> None:
    rng = np.random.default_rng(1)
    sets = []
    for i in range(40):
        centre = i * 300
        sets.append(np.unique(rng.integers(centre - 2000, centre + 2000, size=1500)))
    for k in (1, 5, 16, 40):
        assert max_coverage(sets, k) == greedy_set_cover_reference(sets, k)


# ------------------------------------------------------------------ strategies
def test_registry_lists_strategies_and_rejects_unknown_names() -> None:
    assert {"coverage", "scored", "uniform"} <= set(available_strategies())
    with pytest.raises(UnknownStrategyError) as info:
        get_strategy("nope")
    assert "coverage" in str(info.value) and "uniform" in str(info.value)


def test_uniform_indices_are_distinct_sorted_and_span_the_range() -> None:
    for n in range(1, 40):
        for k in range(1, 45):
            idx = uniform_indices(n, k)
            assert len(idx) == min(n, k) == len(set(idx))
            assert idx == sorted(idx)
            if 1 < k <= n:
                assert idx[0] == 0 and idx[-1] == n - 1


def test_uniform_indices_truncate_like_the_reference() -> None:
    # the reference's linspace(0, n - 1, k) cast to int: floor(i * (n - 1) / (k - 1))
    assert uniform_indices(6, 3) == [0, 2, 5]  # 0, 2.5, 5: truncated, not rounded
    assert uniform_indices(128, 16) == [i * 127 // 15 for i in range(16)]
    assert uniform_indices(10, 1) == [0]
    assert uniform_indices(4, 9) == [0, 1, 2, 3]


def test_scored_strategy_works_on_colour_only_frames() -> None:
    frames = random_frames(12, depth=False)
    cand = Candidates(frames, [None] * 12)
    idx = get_strategy("scored").select(cand, 5)
    assert len(idx) == len(set(idx)) == 5
    scores = frame_scores(frames)
    assert np.all(np.isfinite(scores)) and scores.shape == (12,)


def test_scored_decay_spreads_equal_scores() -> None:
    idx = select_by_score(np.ones(20), 4)
    assert len(set(idx)) == 4
    gaps = np.diff(sorted(idx))
    assert gaps.min() >= 3  # not clumped


def test_scored_prefers_textured_frames() -> None:
    frames = random_frames(6, depth=True)
    flat = Frame(
        7 * 10**8, "cam", np.full((48, 64, 3), 128, np.uint8), np.full((48, 64), 2.0, np.float32)
    )
    scores = frame_scores([*frames, flat])
    assert scores[-1] < scores[:-1].min()


def test_coverage_fills_with_colour_only_frames() -> None:
    frames = random_frames(6, depth=False)
    sets = [np.arange(10, dtype=np.int64), None, None, np.arange(5, 15, dtype=np.int64), None, None]
    idx = get_strategy("coverage").select(Candidates(frames, sets), 4)
    assert idx[:2] == [0, 3]
    assert len(set(idx)) == 4


def test_coverage_without_fill_keeps_only_greedy_picks() -> None:
    frames = random_frames(4, depth=False)
    sets = [np.array([1, 2], np.int64), None, np.array([1, 2], np.int64), None]
    reference = CoverageStrategy(guard_uniform=False, fill=False)
    assert reference.select(Candidates(frames, sets), 3) == [0]  # frame 2 adds nothing
    assert len(CoverageStrategy().select(Candidates(frames, sets), 3)) == 3


def test_coverage_guard_never_loses_to_uniform() -> None:
    # greedy takes the big middle set and then covers 5; uniform (0, 2) covers all 6
    sets = [np.array([1, 2, 5]), np.array([1, 2, 3, 4]), np.array([3, 4, 6])]
    sets = [s.astype(np.int64) for s in sets]
    frames = random_frames(3, depth=False)
    assert max_coverage(sets, 2) == [1, 0]
    guarded = CoverageStrategy(guard_uniform=True).select(Candidates(frames, sets), 2)
    assert coverage_fraction(sets, guarded) == 1.0
    raw = CoverageStrategy(guard_uniform=False).select(Candidates(frames, sets), 2)
    assert coverage_fraction(sets, raw) < 1.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_greedy_coverage_not_below_uniform_on_walkthroughs(seed: int) -> None:
    scene = make_walkthrough(seed, n_frames=48, width=80, height=60)
    sets = [frame_voxel_keys(f, 0.1, stride=2) for f in scene.frames]
    k = 16
    greedy = max_coverage(sets, k)  # the paper's rule, no guard
    assert coverage_fraction(sets, greedy) >= coverage_fraction(sets, uniform_indices(len(sets), k))


# ---------------------------------------------------------------------- budget
def test_smart_resize_matches_transformers() -> None:
    qwen = pytest.importorskip(
        "transformers.models.qwen2_vl.video_processing_qwen2_vl",
        reason="transformers' Qwen2-VL video processor is not importable",
    )
    for h, w in [(480, 640), (720, 1280), (120, 160), (1080, 1920), (28, 2000), (333, 517)]:
        ref = qwen.smart_resize(h, w, factor=28, min_pixels=128 * 28 * 28, max_pixels=768 * 28 * 28)
        assert smart_resize(h, w) == tuple(ref)


def test_video_tokens_follow_the_temporal_merge() -> None:
    per_pair = tokens_per_temporal_patch(480, 640)
    h, w = smart_resize(480, 640)
    assert per_pair * 4 == (h // 14) * (w // 14)  # 2x2 spatial merge of 14-px patches
    assert video_tokens(16, 480, 640) == 8 * per_pair
    assert video_tokens(15, 480, 640) == 8 * per_pair  # padded to an even count
    assert video_tokens(0, 480, 640) == 0


def test_adaptive_budget_rules() -> None:
    big = BudgetConfig(max_video_tokens=10**6)
    assert adaptive_frame_budget(30.0, 0.1, 480, 640, big) == 8
    assert adaptive_frame_budget(90.0, 0.1, 480, 640, big) == 16
    assert adaptive_frame_budget(30.0, 0.9, 480, 640, big) == 12
    assert adaptive_frame_budget(90.0, 0.9, 480, 640, big) == 20
    per_pair = tokens_per_temporal_patch(480, 640)
    tight = BudgetConfig(max_video_tokens=3 * per_pair + 1)
    n = adaptive_frame_budget(90.0, 0.9, 480, 640, tight)
    assert n % 2 == 0 and video_tokens(n, 480, 640) <= tight.max_video_tokens
    assert video_tokens(n + 2, 480, 640) > tight.max_video_tokens
    assert adaptive_frame_budget(90.0, 0.9, 480, 640, BudgetConfig(max_video_tokens=1)) == 2
