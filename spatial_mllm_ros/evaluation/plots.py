"""The evaluation report's three plots, drawn from :mod:`.report_data` (matplotlib, Agg).

* ``scores.png`` -- per-type and overall scores (x100) per strategy on a fixed 0..100 axis;
  every bar carries its value, a score of 0 is drawn as a thick line on the zero level and
  a missing score is marked "n/a".
* ``latency.png`` -- mean seconds per answer per strategy, stacked by stage plus ``other``
  (the rest of the total), the total written on top; negligible parts are not drawn.
* ``coverage.png`` -- per question, the voxel coverage of the frames each strategy selected
  (one series per strategy; uniform picks of as many frames as black ticks when ``uniform``
  is not a strategy), on an axis fitted to the data, and below it each strategy's coverage
  minus the uniform pick's (the gap that a 0..1 axis would hide).

Legends sit outside the axes, so they never cover a bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.evaluation.report_data import (
    LATENCY_STAGES,
    OTHER,
    CoveragePoint,
    ScoreBars,
)

__all__ = [
    "UNIFORM_BASELINE",
    "CoverageSeries",
    "coverage_differences",
    "coverage_figure",
    "coverage_series",
    "plot_coverage",
    "plot_latency",
    "plot_scores",
]

_DPI = 80
_MAX_TICK_LABELS = 40
#: Smallest latency part drawn, as a share of the largest total.
_MIN_PART = 0.005


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _legend_outside(ax: Any) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)


def plot_scores(bars: ScoreBars, path: Path) -> Path:
    """Grouped bars of ``bars`` (one group per label, one bar per strategy)."""
    plt = _pyplot()
    strategies = list(bars.values)
    n = len(bars.labels)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * n), 3.6))
    width = 0.8 / max(1, len(strategies))
    x = np.arange(n)
    for i, s in enumerate(strategies):
        colour = f"C{i}"
        xs = x + (i - (len(strategies) - 1) / 2) * width
        vals = bars.values[s]
        ax.bar(xs, [v or 0.0 for v in vals], width, color=colour, label=s)
        for xi, v in zip(xs, vals, strict=True):
            if v is None:
                ax.text(xi, 1.5, "n/a", ha="center", va="bottom", fontsize=6, color="0.4",
                        rotation=90)
                continue
            if v == 0.0:  # a zero-height bar: its zero level, in the bar's colour
                ax.hlines(0.0, xi - width / 2, xi + width / 2, colors=colour, linewidth=3,
                          clip_on=False, zorder=3)
            ax.text(xi, v + 1.0, f"{v:.0f}", ha="center", va="bottom", fontsize=6)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([t.replace("_", "\n") for t in bars.labels], fontsize=7)
    ax.set_ylabel("score (x100)")
    ax.set_ylim(0, 105)
    ax.set_title("VSI-Bench scores per type")
    _legend_outside(ax)
    return _save(fig, path)


def plot_latency(tables: Mapping[str, Mapping[str, float | None]], path: Path) -> Path:
    """Stacked bars per strategy of :data:`LATENCY_STAGES` and ``other``, totals written on
    top. Parts under :data:`_MIN_PART` of the largest total for every strategy (such as the
    offline ``queue_wait``) are left out of the bars and the legend; report.md lists them."""
    plt = _pyplot()
    strategies = list(tables)
    largest = max((tables[s].get("total") or 0.0 for s in strategies), default=0.0)
    parts = [p for p in (*LATENCY_STAGES, OTHER)
             if any((tables[s].get(p) or 0.0) > _MIN_PART * largest for s in strategies)]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(strategies) + 2.0), 3.4))
    x = np.arange(len(strategies))
    bottom = np.zeros(len(strategies))
    every = (*LATENCY_STAGES, OTHER)
    for p in parts:
        # a tiny negative "other" (clock rounding) is drawn as nothing
        h = np.array([max(0.0, tables[s].get(p) or 0.0) for s in strategies])
        ax.bar(x, h, 0.6, bottom=bottom, label=p, color=f"C{every.index(p)}",
               hatch="//" if p == OTHER else None, edgecolor="white")
        bottom += h
    for xi, s in zip(x, strategies, strict=True):
        total = tables[s].get("total")
        label = "no timings" if total is None else f"{total:.3f} s"
        ax.text(xi, (total or 0.0), label, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels(strategies)
    ax.set_ylim(0, max(1e-3, float(bottom.max(initial=0.0))) * 1.15)
    ax.set_ylabel("mean seconds per answer")
    ax.set_title("latency per stage (total on top)")
    if parts:
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize=7, frameon=False)  # top of the stack first
    return _save(fig, path)


def plot_coverage(
    questions: Sequence[str | int], points: Mapping[str, Sequence[CoveragePoint]], path: Path
) -> Path:
    """:func:`coverage_figure` saved to ``path``."""
    return _save(coverage_figure(questions, points), path)


@dataclass(frozen=True)
class CoverageSeries:
    """One series of the coverage plot.

    Attributes:
        label: its legend entry (a strategy's name, or :data:`UNIFORM_BASELINE`); "" for a
            series without one (the differences, coloured as their strategy).
        colour: matplotlib colour.
        x: (N,) float, positions: question index plus the strategy's sideways dodge.
        y: (N,) float, coverage 0..1 (or a difference of two coverages).
        baseline: the uniform pick of as many frames as a strategy chose (drawn as ticks).
    """

    label: str
    colour: str
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    baseline: bool = False


#: The uniform pick of as many frames as a strategy chose, drawn when ``uniform`` is not one
#: of the run's strategies (when it is, that strategy's series is the uniform pick).
UNIFORM_BASELINE = "uniform pick, same number of frames"


def _series(label: str, colour: str, dodge: float, values: Sequence[float | None],
            baseline: bool = False) -> CoverageSeries:
    idx = [i for i, v in enumerate(values) if v is not None]
    return CoverageSeries(label, colour, np.array(idx, dtype=np.float64) + dodge,
                          np.array([values[i] for i in idx], dtype=np.float64), baseline)


def _dodges(strategies: Sequence[str]) -> dict[str, float]:
    n = len(strategies)
    return {s: (i - (n - 1) / 2) * 0.6 / max(1, n) for i, s in enumerate(strategies)}


def _joined(label: str, colour: str, parts: Sequence[CoverageSeries],
            baseline: bool) -> CoverageSeries:
    return CoverageSeries(label, colour, np.concatenate([p.x for p in parts]),
                          np.concatenate([p.y for p in parts]), baseline)


def coverage_series(points: Mapping[str, Sequence[CoveragePoint]]) -> list[CoverageSeries]:
    """One series per strategy (the coverage of the frames it selected, labelled by its
    name), plus :data:`UNIFORM_BASELINE` (ticks beside each strategy's dots) only when no
    strategy is ``uniform``: one legend entry per series, and uniform sampling one of them."""
    dodge = _dodges(list(points))
    out = [_series(s, f"C{i}", dodge[s], [p.coverage for p in pts])
           for i, (s, pts) in enumerate(points.items())]
    if "uniform" not in points:
        ticks = [_series("", "black", dodge[s], [p.uniform_coverage for p in pts])
                 for s, pts in points.items()]
        if any(t.y.size for t in ticks):
            out.append(_joined(UNIFORM_BASELINE, "black", ticks, baseline=True))
    return out


def coverage_differences(
    points: Mapping[str, Sequence[CoveragePoint]],
) -> list[CoverageSeries]:
    """Per strategy other than ``uniform``, its coverage minus the uniform pick's of as many
    frames on the same buffer, per question (where both are known); [] when none."""
    dodge = _dodges(list(points))
    out = []
    for i, (s, pts) in enumerate(points.items()):
        if s == "uniform":
            continue
        diff = [None if p.coverage is None or p.uniform_coverage is None
                else p.coverage - p.uniform_coverage for p in pts]
        series = _series("", f"C{i}", dodge[s], diff)
        if series.y.size:
            out.append(series)
    return out


def _fitted(values: npt.NDArray[np.float64]) -> tuple[float, float]:
    """A coverage axis around ``values``: from 0 when they come near it, else zoomed, with
    room above and below; within 0..1.02."""
    if values.size == 0:
        return 0.0, 1.02
    lo, hi = float(values.min()), float(values.max())
    pad = max(0.01, 0.15 * (hi - lo))
    start = lo - pad
    if start < 0.25 * hi:  # near zero anyway: show zero
        start = 0.0
    return max(0.0, start), min(1.02, hi + pad)


def coverage_figure(
    questions: Sequence[str | int], points: Mapping[str, Sequence[CoveragePoint]]
) -> Any:
    """The coverage plot (a matplotlib Figure) of :func:`coverage_series`.

    Top: per question, each series' voxel coverage, on an axis fitted to the data (its label
    says where it starts when that is not 0). Below, when a strategy is not ``uniform``
    itself (:func:`coverage_differences`): its coverage minus the uniform pick's, around a
    zero line -- the gap that a 0..1 axis hides.
    """
    plt = _pyplot()
    series = coverage_series(points)
    diffs = coverage_differences(points)
    n = len(questions)
    rows = 2 if diffs else 1
    fig, axes = plt.subplots(rows, 1, sharex=True, squeeze=False,
                             figsize=(min(16.0, max(5.0, 0.3 * n + 2.0)), 2.4 + 1.6 * rows),
                             gridspec_kw={"height_ratios": [3, 2][:rows]})
    top = axes[0][0]
    for s in series:
        if s.baseline:
            top.scatter(s.x, s.y, marker="_", s=60, linewidths=1.2, color=s.colour,
                        label=s.label, zorder=2)
        else:
            top.scatter(s.x, s.y, s=16, color=s.colour, label=s.label, zorder=3)
    lo, hi = _fitted(np.concatenate([s.y for s in series]) if series else np.zeros(0))
    top.set_ylim(lo, hi)
    top.set_ylabel("voxel coverage" if lo == 0 else
                   f"voxel coverage\n(axis starts at {lo:.3g})", fontsize=8)
    top.set_title("coverage of the frames used, per question")
    top.grid(axis="y", linewidth=0.3)
    _legend_outside(top)
    bottom = axes[-1][0]
    if diffs:
        for d in diffs:
            bottom.scatter(d.x, d.y, s=16, color=d.colour, zorder=3)
        bottom.axhline(0.0, color="black", linewidth=0.8)
        mean = float(np.mean(np.concatenate([d.y for d in diffs])))
        bottom.set_ylabel(f"minus uniform pick,\nsame frames count\n(mean {mean:+.3g})",
                          fontsize=8)
        bottom.grid(axis="y", linewidth=0.3)
    bottom.set_xlim(-0.6, max(0, n - 1) + 0.6)
    if n <= _MAX_TICK_LABELS:
        bottom.set_xticks(np.arange(n))
        bottom.set_xticklabels([str(q) for q in questions], rotation=90, fontsize=6)
    bottom.set_xlabel(f"question ({n}, in answer order)")
    return fig
