"""The evaluation report's three plots, drawn from :mod:`.report_data` (matplotlib, Agg).

* ``scores.png`` -- per-type and overall scores (x100) per strategy on a fixed 0..100 axis;
  every bar carries its value, a score of 0 is drawn as a thick line on the zero level and
  a missing score is marked "n/a".
* ``latency.png`` -- mean seconds per answer per strategy, stacked by stage plus ``other``
  (the rest of the total), the total written on top; negligible parts are not drawn.
* ``coverage.png`` -- per question, the voxel coverage of the frames each strategy selected
  (dots) and of uniform picks of as many frames on the same buffer (black ticks), 0..1.

Legends sit outside the axes, so they never cover a bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spatial_mllm_ros.evaluation.report_data import (
    LATENCY_STAGES,
    OTHER,
    CoveragePoint,
    ScoreBars,
)

__all__ = ["plot_coverage", "plot_latency", "plot_scores"]

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
    """One dot per question per strategy (dodged sideways), with the uniform pick's
    coverage of the same answer as a black tick at the same place."""
    plt = _pyplot()
    strategies = list(points)
    n = len(questions)
    fig, ax = plt.subplots(figsize=(min(16.0, max(5.0, 0.3 * n + 2.0)), 3.6))
    width = 0.6 / max(1, len(strategies))
    x = np.arange(n)
    uniform_labelled = False
    for i, s in enumerate(strategies):
        xs = x + (i - (len(strategies) - 1) / 2) * width
        sel = [(xi, p.coverage) for xi, p in zip(xs, points[s], strict=True)
               if p.coverage is not None]
        uni = [(xi, p.uniform_coverage) for xi, p in zip(xs, points[s], strict=True)
               if p.uniform_coverage is not None]
        if uni:
            ax.scatter([u[0] for u in uni], [u[1] for u in uni], marker="_", s=60, c="black",
                       linewidths=1.2, zorder=2,
                       label=None if uniform_labelled else "uniform, same number of frames")
            uniform_labelled = True
        if sel:
            ax.scatter([p[0] for p in sel], [p[1] for p in sel], s=16, color=f"C{i}",
                       label=f"{s}: frames it selected", zorder=3)
    ax.set_xlim(-0.6, max(0, n - 1) + 0.6)
    ax.set_ylim(0, 1.02)
    if n <= _MAX_TICK_LABELS:
        ax.set_xticks(x)
        ax.set_xticklabels([str(q) for q in questions], rotation=90, fontsize=6)
    ax.set_xlabel(f"question ({n}, in answer order)")
    ax.set_ylabel("voxel coverage")
    ax.set_title("coverage of the frames used, per question")
    ax.grid(axis="y", linewidth=0.3)
    _legend_outside(ax)
    return _save(fig, path)
