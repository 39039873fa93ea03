"""The coverage plot of the evaluation report: one legend entry per series, and the gap
between a strategy and uniform sampling visible (a tiny model's run: 0.862 against 0.847)."""

from __future__ import annotations

from typing import Any

import pytest

from spatial_mllm_ros.evaluation.plots import coverage_figure
from spatial_mllm_ros.evaluation.report_data import CoveragePoint

QUESTIONS = [f"q{i}" for i in range(17)]
GAP = 0.0159


def _points(strategies: tuple[str, ...]) -> dict[str, list[CoveragePoint]]:
    """Per question: coverage selects 0.862, a uniform pick of as many frames 0.847 (the
    ``uniform`` strategy's own pick is that uniform pick)."""
    out: dict[str, list[CoveragePoint]] = {}
    for s in strategies:
        chosen = 0.847 if s == "uniform" else 0.847 + GAP
        out[s] = [CoveragePoint(q, chosen + 0.001 * (i % 3), 0.847 + 0.001 * (i % 3))
                  for i, q in enumerate(QUESTIONS)]
    return out


def _legend_labels(fig: Any) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() is not None
            for t in ax.get_legend().get_texts()]


@pytest.fixture
def close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


@pytest.mark.parametrize("strategies", [("coverage", "uniform"), ("coverage",),
                                        ("uniform", "coverage", "stride")])
def test_one_legend_entry_per_series(strategies: tuple[str, ...], close_figures) -> None:
    labels = _legend_labels(coverage_figure(QUESTIONS, _points(strategies)))
    assert len(labels) == len(set(labels)), labels
    for s in strategies:
        assert labels.count(s) == 1, labels  # each strategy's series by its own name
    # uniform sampling is one series, whether it is a strategy of the run or the baseline
    assert sum("uniform" in label for label in labels) == 1, labels


def test_the_gap_to_uniform_is_visible(close_figures) -> None:
    """Some axis shows the 0.016 gap over at least a tenth of its height; an axis that does
    not start at zero says where it starts."""
    fig = coverage_figure(QUESTIONS, _points(("coverage", "uniform")))
    spans = []
    for ax in fig.axes:
        lo, hi = ax.get_ylim()
        spans.append(hi - lo)
        if lo > 0:
            assert f"{lo:.3g}" in ax.get_ylabel(), ax.get_ylabel()
    assert any(GAP / span >= 0.1 for span in spans), spans
