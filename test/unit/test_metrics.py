"""VSI-Bench metrics on hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatial_mllm_ros.evaluation.errors import MetricsError
from spatial_mllm_ros.evaluation.metrics import (
    LINSPACE11_THRESHOLDS,
    PAPER_THRESHOLDS,
    VSIBENCH_THRESHOLDS,
    ScoreRecord,
    aggregate,
    mean_relative_accuracy,
    resolve_thresholds,
    score_one,
)


def test_threshold_sets() -> None:
    # The reference builds linspace(.5, .95, int((.95 - .5) / .05 + 2)); in binary floating point
    # (.95 - .5) / .05 + 2 = 10.999999999999998, so int() gives 10 points: 0.50, 0.55, ..., 0.95,
    # which is the paper's C = {0.5, 0.55, ..., 0.95}.
    assert int((0.95 - 0.5) / 0.05 + 2) == 10
    assert len(VSIBENCH_THRESHOLDS) == 10
    np.testing.assert_allclose(VSIBENCH_THRESHOLDS, [0.5 + 0.05 * k for k in range(10)])
    np.testing.assert_array_equal(VSIBENCH_THRESHOLDS, PAPER_THRESHOLDS)
    # The 11-point option: 0.5 + 0.045 k, k = 0..10.
    np.testing.assert_allclose(LINSPACE11_THRESHOLDS, [0.5 + 0.045 * k for k in range(11)])
    np.testing.assert_array_equal(resolve_thresholds(), VSIBENCH_THRESHOLDS)
    np.testing.assert_array_equal(resolve_thresholds("linspace11"), LINSPACE11_THRESHOLDS)


def test_mra_hand_computed_default_thresholds() -> None:
    # θ = .50 .. .95 (10 values); a question passes θ when rel_err <= 1 - θ.
    # 10 % error (11 vs 10): 1 - θ >= 0.1 for θ = .50 ... .90 -> 9 of 10 -> 0.9
    assert score_one("object_counting", "11", "10").score == pytest.approx(0.9)
    # 30 % error (13 vs 10): θ = .50 .55 .60 .65 .70 -> 5 of 10 -> 0.5
    assert score_one("object_abs_distance", "13", "10").score == pytest.approx(0.5)
    # 30 % below (7 vs 10) is the same
    assert score_one("object_abs_distance", "7", "10").score == pytest.approx(0.5)
    # exact -> 10/10; 50 % (15 vs 10) -> only θ = .50 -> 0.1; 60 % -> 0
    assert score_one("object_size_estimation", "2.5", "2.5").score == 1.0
    assert score_one("object_size_estimation", "15", "10").score == pytest.approx(0.1)
    assert score_one("object_size_estimation", "16", "10").score == 0.0
    # 5 % (21 vs 20): all 10 pass (1 - .95 = 0.050000000000000044 >= 0.05 in floating point)
    assert score_one("room_size_estimation", "21", "20").score == pytest.approx(1.0)


def test_mra_follows_reference_floating_point_at_boundaries() -> None:
    # 20 % error (12 vs 10): in exact arithmetic θ = .50 ... .80 pass (7 of 10), but the
    # reference computes 1 - 0.8 = 0.19999999999999996 < 0.2, so θ = .80 fails: 6 of 10.
    assert score_one("object_counting", "12", "10").score == pytest.approx(0.6)


def test_mra_hand_computed_eleven_thresholds() -> None:
    # θ = .500 .545 .590 .635 .680 .725 .770 .815 .860 .905 .950;
    # 1 - θ = .500 .455 .410 .365 .320 .275 .230 .185 .140 .095 .050
    # 10 %: passes while 1 - θ >= .1 -> first 9 -> 9/11; 30 %: first 5 (.32 >= .3) -> 5/11
    assert score_one("object_counting", "11", "10", "linspace11").score == pytest.approx(9 / 11)
    assert score_one("object_counting", "13", "10", "linspace11").score == pytest.approx(5 / 11)
    # 20 %: .23 >= .2 but .185 < .2 -> first 7 -> 7/11
    assert mean_relative_accuracy(12.0, 10.0, LINSPACE11_THRESHOLDS) == pytest.approx(7 / 11)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
    st.floats(min_value=1e-3, max_value=1e3),
)
def test_mra_matches_reference_formula(pred: float, target: float) -> None:
    # The published formula, restated: mean(|p - t| / t <= 1 - linspace(.5, .95, 10)).
    theta = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))
    expected = float(np.mean(abs(pred - target) / target <= 1 - theta))
    assert score_one("object_counting", repr(pred), repr(target)).score == expected


def test_prediction_token_and_unparseable() -> None:
    r = score_one("object_abs_distance", "3.3 meters.", "3")
    # token "3.3"; |3.3 - 3| / 3 = 0.0999.. -> θ = .50 ... .90 -> 0.9
    assert r.prediction == "3.3" and r.score == pytest.approx(0.9) and not r.unparseable
    assert r.predicted_value == pytest.approx(3.3)
    for text in ["about 3 meters", "three", "", " 3", "nan", "inf"]:
        bad = score_one("object_counting", text, "3")
        assert bad.score == 0.0 and bad.unparseable, text
        assert math.isnan(bad.predicted_value)
    assert score_one("object_counting", "3.", "3").score == 1.0  # trailing "." removed


def test_multiple_choice_exact_match_case_insensitive() -> None:
    assert score_one("object_rel_distance", "b", "B").score == 1.0
    assert score_one("object_rel_distance", "B. chair", "b").score == 1.0
    assert score_one("route_planning", "C", "B").score == 0.0
    # The reference token of "(B)" is "(B)": no match, and counted as unparseable.
    r = score_one("obj_appearance_order", "(B)", "B")
    assert r.score == 0.0 and r.unparseable
    assert not score_one("obj_appearance_order", "C", "B").unparseable
    assert r.metric == "accuracy"


def test_bad_inputs_raise() -> None:
    with pytest.raises(MetricsError):
        score_one("object_colour", "3", "3")
    with pytest.raises(MetricsError):
        score_one("object_counting", "3", "0")
    with pytest.raises(MetricsError):
        score_one("object_counting", "3", "three")
    with pytest.raises(MetricsError):
        score_one("route_planning", "A", None)
    with pytest.raises(MetricsError):
        resolve_thresholds("decile")
    with pytest.raises(MetricsError):
        resolve_thresholds([0.5, 1.0])


def test_aggregate_hand_computed() -> None:
    records = [
        # object_counting: MRA 0.9 (10 % error) and 0.5 (30 %) -> mean 0.7 -> 70
        score_one("object_counting", "11", "10"),
        score_one("object_counting", "13", "10"),
        # directions: easy (1 + 0) / 2 = 0.5; medium 1 / 1 = 1; hard (0 + 0 + 1) / 3 = 1/3
        score_one("object_rel_direction_easy", "A", "A"),
        score_one("object_rel_direction_easy", "B", "A"),
        score_one("object_rel_direction_medium", "c.", "C"),
        score_one("object_rel_direction_hard", "A", "B"),
        score_one("object_rel_direction_hard", "I think B", "B"),
        score_one("object_rel_direction_hard", "B", "B"),
        # route_planning: 1 of 2 -> 50
        score_one("route_planning", "A", "A"),
        score_one("route_planning", "D", "A"),
        # open: recorded, not scored
        score_one("open", "a red mug", None),
    ]
    m = aggregate(records)
    # object_rel_direction = (0.5 + 1 + 1/3) / 3 = 11/18 (mean of the difficulty means,
    # not the pooled 3/6)
    assert m.scores == pytest.approx(
        {"object_counting": 70.0, "object_rel_direction": 100 * 11 / 18, "route_planning": 50.0}
    )
    assert list(m.scores) == ["object_counting", "object_rel_direction", "route_planning"]
    # overall = (70 + 61.111.. + 50) / 3 = 60.370..
    assert m.overall == pytest.approx((70.0 + 100 * 11 / 18 + 50.0) / 3)
    assert m.counts == {"object_counting": 2, "object_rel_direction": 6, "route_planning": 2}
    # "I think B" -> token "I" is a single letter (parseable, wrong); nothing unparseable here
    assert m.unparseable == {"object_counting": 0, "object_rel_direction": 0, "route_planning": 0}
    assert m.sub_scores["object_rel_direction_hard"] == pytest.approx(100 / 3)
    assert m.sub_counts["object_rel_direction_easy"] == 2
    assert m.n_scored == 10 and m.n_unscored == 1
    assert len(m.thresholds) == 10
    out = m.vsibench_output()
    assert out["object_counting_MRA:.5:.95:.05"] == pytest.approx(0.7)
    assert out["object_rel_direction_accuracy"] == pytest.approx(11 / 18)
    assert out["overall"] == pytest.approx(m.overall / 100)


def test_aggregate_counts_unparseable_per_type() -> None:
    m = aggregate(
        [
            score_one("object_size_estimation", "big", "1.2"),  # 0, unparseable
            score_one("object_size_estimation", "1.2", "1.2"),  # 1
            score_one("object_rel_distance", "", "A"),  # 0, unparseable
        ]
    )
    # size: (0 + 1) / 2 = 50; rel distance 0; overall (50 + 0) / 2 = 25
    assert m.scores == {"object_size_estimation": 50.0, "object_rel_distance": 0.0}
    assert m.overall == 25.0
    assert m.unparseable == {"object_size_estimation": 1, "object_rel_distance": 1}


def test_plain_direction_type_joins_the_average() -> None:
    # plain object_rel_direction: 1/1 = 1; easy: 0/1 = 0 -> (1 + 0) / 2 = 50
    m = aggregate(
        [
            score_one("object_rel_direction", "A", "A"),
            score_one("object_rel_direction_easy", "B", "A"),
        ]
    )
    assert m.scores == {"object_rel_direction": 50.0}


def test_empty_and_json() -> None:
    m = aggregate([score_one("open", "x", None)])
    assert m.scores == {} and math.isnan(m.overall)
    d = json.loads(m.to_json())
    assert d["overall"] is None and d["n_unscored"] == 1
    full = aggregate([score_one("object_counting", "4", "4")])
    assert json.loads(full.to_json())["scores"] == {"object_counting": 100.0}


def test_record_round_trip() -> None:
    for r in [
        score_one("object_counting", "11", 10, question_id="q1"),
        score_one("object_counting", "many", "10", question_id=3),
        score_one("route_planning", "B", "B"),
        score_one("open", "x", None),
    ]:
        d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
        back = ScoreRecord.from_dict(d)
        assert back.to_dict() == r.to_dict()
    with pytest.raises(MetricsError):
        ScoreRecord.from_dict({"question_type": "x"})


def test_spatial_mllm_families_score_with_their_own_rule() -> None:
    # lmms-eval takes the first space-separated token; Spatial-MLLM compares the whole
    # cleaned answer (so "B. chair" does not score there) and removes thousands commas.
    assert score_one("object_rel_distance", "B. chair", "B").score == 1.0
    assert score_one("object_rel_distance", "B. chair", "B",
                     template="spatial-mllm-v1.1").score == 0.0
    assert score_one("object_rel_distance", "<answer>B</answer>", "B",
                     template="spatial-mllm-v1.0").score == 1.0
    assert score_one("object_counting", "1,000", "1000",
                     template="spatial-mllm-v1.1").score == 1.0
    assert score_one("object_counting", "1,000", "1000").score == 0.0
