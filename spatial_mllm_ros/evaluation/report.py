"""Metrics, plots and the human report of an evaluation directory.

From ``DIR/results.jsonl`` (see :mod:`.runner`) :func:`write_report` writes:

* ``DIR/metrics.json`` -- per strategy the VSI-Bench metrics (:class:`~.metrics.Metrics`,
  x100: per-type scores, overall, counts, unparseable counts, the three direction
  difficulties), answer statuses, mean coverage of the selected frames and of uniform picks,
  mean latency per stage; a ``comparison`` table (type -> strategy -> score) and the
  reference's output keys (``vsibench_output``) for comparison with lmms-eval logs.
  Scores are recomputed from the stored answer texts with the chosen MRA thresholds, so the
  report's threshold set is independent of the run's.
* ``DIR/scores.png`` (per-type scores per strategy), ``DIR/latency.png`` (mean seconds per
  stage per strategy), ``DIR/coverage.png`` (coverage of the selected frames vs uniform
  sampling of the same number of frames on the same buffer, per answer).
* ``DIR/report.md`` linking the plots and the per-answer contact sheets in ``DIR/thumbs/``.

Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.evaluation.metrics import (
    REPORT_TYPES,
    Metrics,
    ThresholdsLike,
    aggregate,
    resolve_thresholds,
    score_one,
)
from spatial_mllm_ros.evaluation.runner import RESULTS_FILE, RunSummary, load_results

__all__ = [
    "LATENCY_STAGES",
    "ReportFiles",
    "metrics_by_strategy",
    "write_contact_sheet",
    "write_report",
]

LATENCY_STAGES: tuple[str, ...] = (
    "sampling", "vision_2d", "spatial", "connector", "prefill", "decode",
)


def write_contact_sheet(frames: Sequence[Frame], path: Path, height: int = 72) -> Path:
    """One row of the frames' RGB images scaled to ``height`` px, 2 px white gaps, as PNG."""
    tiles = []
    for f in frames:
        h, w = f.rgb.shape[:2]
        tw = max(1, round(w * height / h))
        tiles.append(cv2.resize(np.asarray(f.rgb), (tw, height), interpolation=cv2.INTER_AREA))
        tiles.append(np.full((height, 2, 3), 255, dtype=np.uint8))
    sheet = np.concatenate(tiles[:-1], axis=1) if tiles else np.zeros((height, 1, 3), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path


def _strategies(results: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: list[str] = []
    for r in results:
        if r["strategy"] not in seen:
            seen.append(str(r["strategy"]))
    return seen


def metrics_by_strategy(
    results: Sequence[Mapping[str, Any]], thresholds: ThresholdsLike = "vsibench"
) -> dict[str, Metrics]:
    """VSI-Bench metrics per strategy, rescored from the stored answers."""
    out: dict[str, Metrics] = {}
    for s in _strategies(results):
        records = [
            score_one(str(r["question_type"]), str(r.get("answer") or ""), r["ground_truth"],
                      thresholds, question_id=r["id"])
            for r in results if r["strategy"] == s
        ]
        out[s] = aggregate(records, thresholds=thresholds)
    return out


def _mean(values: Sequence[float]) -> float | None:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else None


def _strategy_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    stages = {
        st: _mean([float(r["timings_s"].get(st, 0.0)) for r in rows if r.get("timings_s")])
        for st in (*LATENCY_STAGES, "total")
    }
    return {
        "answers": len(rows),
        "statuses": statuses,
        "mean_coverage": _mean([r["coverage"] for r in rows if r.get("coverage") is not None]),
        "mean_uniform_coverage": _mean(
            [r["uniform_coverage"] for r in rows if r.get("uniform_coverage") is not None]
        ),
        "mean_frames_used": _mean([float(len(r.get("frame_stamps_ns") or [])) for r in rows]),
        "latency_s": stages,
    }


@dataclass(frozen=True)
class ReportFiles:
    """Paths written by :func:`write_report`."""

    metrics: Path
    report: Path
    plots: tuple[Path, ...]


def _plots(out: Path, metrics: Mapping[str, Metrics], results: Sequence[Mapping[str, Any]],
           stats: Mapping[str, Mapping[str, Any]]) -> tuple[Path, ...]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = list(metrics)
    paths: list[Path] = []
    # per-type scores
    types = [t for t in REPORT_TYPES if any(t in m.scores for m in metrics.values())]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * (len(types) + 1)), 3.6))
    labels = [*types, "overall"]
    width = 0.8 / max(1, len(strategies))
    for i, s in enumerate(strategies):
        m = metrics[s]
        vals = [m.scores.get(t, 0.0) for t in types] + [0.0 if math.isnan(m.overall) else m.overall]
        ax.bar(np.arange(len(labels)) + i * width, vals, width, label=s)
    ax.set_xticks(np.arange(len(labels)) + width * (len(strategies) - 1) / 2)
    ax.set_xticklabels([t.replace("_", "\n") for t in labels], fontsize=7)
    ax.set_ylabel("score (x100)")
    ax.set_ylim(0, 100)
    ax.set_title("VSI-Bench scores per type")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "scores.png")
    fig.savefig(paths[-1], dpi=80)
    plt.close(fig)
    # latency per stage
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    bottom = np.zeros(len(strategies))
    for st in LATENCY_STAGES:
        stage = np.array([stats[s]["latency_s"].get(st) or 0.0 for s in strategies])
        ax.bar(strategies, stage, bottom=bottom, label=st)
        bottom += stage
    ax.set_ylabel("mean seconds per answer")
    ax.set_title("latency per stage")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "latency.png")
    fig.savefig(paths[-1], dpi=80)
    plt.close(fig)
    # coverage vs uniform
    fig, ax = plt.subplots(figsize=(4.0, 4.0))
    for s in strategies:
        pts = [(r["uniform_coverage"], r["coverage"]) for r in results
               if r["strategy"] == s and r.get("coverage") is not None
               and r.get("uniform_coverage") is not None]
        if pts:
            arr = np.asarray(pts, dtype=np.float64)
            ax.scatter(arr[:, 0], arr[:, 1], s=14, label=s, alpha=0.7)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("uniform sampling coverage")
    ax.set_ylabel("selected frames' coverage")
    ax.set_title("voxel coverage of the frames used")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "coverage.png")
    fig.savefig(paths[-1], dpi=80)
    plt.close(fig)
    return tuple(paths)


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def write_report(
    out_dir: str | Path,
    thresholds: ThresholdsLike = "vsibench",
    summary: RunSummary | None = None,
    title: str = "Offline evaluation",
    max_sheets: int = 60,
) -> ReportFiles:
    """Write metrics.json, the plots and report.md for ``out_dir`` (see module docstring).

    Raises:
        ResultsFileError: malformed results; MetricsError: unknown threshold set.
    """
    out = Path(out_dir)
    theta = resolve_thresholds(thresholds)
    results = load_results(out / RESULTS_FILE)
    metrics = metrics_by_strategy(results, theta)
    stats = {s: _strategy_stats([r for r in results if r["strategy"] == s]) for s in metrics}
    comparison = {
        t: {s: m.scores.get(t) for s, m in metrics.items()}
        for t in [*REPORT_TYPES, "overall"]
        if t == "overall" or any(t in m.scores for m in metrics.values())
    }
    for s, m in metrics.items():
        comparison["overall"][s] = None if math.isnan(m.overall) else m.overall
    doc = {
        "thresholds": thresholds if isinstance(thresholds, str) else [float(x) for x in theta],
        "strategies": {
            s: {**m.to_dict(), **stats[s], "vsibench_output": m.vsibench_output()}
            for s, m in metrics.items()
        },
        "comparison": comparison,
        "run": summary.to_dict() if summary is not None else None,
    }
    metrics_path = out / "metrics.json"
    metrics_path.write_text(
        json.dumps(doc, indent=2, default=lambda o: None, allow_nan=False), encoding="utf-8"
    )
    plots = _plots(out, metrics, results, stats) if results else ()

    lines = [f"# {title}", ""]
    if not results:
        lines += ["No results yet."]
    strategies = list(metrics)
    lines += [
        f"{len({str(r['id']) for r in results})} questions, strategies: {', '.join(strategies)}; "
        f"MRA thresholds: {thresholds if isinstance(thresholds, str) else 'custom'} "
        f"({len(theta)} values). Scores x100, as in VSI-Bench's tables.",
        "",
        "| type | " + " | ".join(strategies) + " |",
        "| --- |" + " --- |" * len(strategies),
    ]
    for t, row in comparison.items():
        n = max((metrics[s].counts.get(t, 0) for s in strategies), default=0)
        label = f"{t} (n={n})" if t != "overall" else "**overall**"
        lines.append(f"| {label} | " + " | ".join(_fmt(row.get(s)) for s in strategies) + " |")
    lines += ["", "| | " + " | ".join(strategies) + " |", "| --- |" + " --- |" * len(strategies)]
    lines.append("| unparseable answers | " + " | ".join(
        str(sum(metrics[s].unparseable.values())) for s in strategies) + " |")
    lines.append("| statuses | " + " | ".join(
        ", ".join(f"{k} {v}" for k, v in stats[s]["statuses"].items()) for s in strategies) + " |")
    lines.append("| mean coverage (selected) | " + " | ".join(
        _fmt(stats[s]["mean_coverage"], 3) for s in strategies) + " |")
    lines.append("| mean coverage (uniform, same k) | " + " | ".join(
        _fmt(stats[s]["mean_uniform_coverage"], 3) for s in strategies) + " |")
    for st in (*LATENCY_STAGES, "total"):
        lines.append(f"| latency {st} (s) | " + " | ".join(
            _fmt(stats[s]["latency_s"].get(st), 4) for s in strategies) + " |")
    if summary is not None:
        share = summary.outside_model_share
        lines += [
            "",
            f"This invocation: {summary.pairs_answered} answers computed, "
            f"{summary.pairs_resumed} resumed from results.jsonl, {summary.bag_messages} bag "
            f"messages, {summary.seconds_total:.2f} s wall, {summary.seconds_model:.2f} s in the "
            f"model ({_fmt(100 * share if not math.isnan(share) else None)} % outside it).",
        ]
        for w in summary.warnings:
            lines.append(f"- warning: {w}")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    sheets = [r for r in results if r.get("thumbnail")][:max_sheets]
    if sheets:
        lines += ["", "## Frames used per answer", "",
                  "| question | strategy | answer | truth | score | frames |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in sheets:
            sc = score_one(str(r["question_type"]), str(r.get("answer") or ""),
                           r["ground_truth"], theta)
            ans = str(r.get("answer") or "").replace("|", "/").replace("\n", " ")[:40]
            lines.append(
                f"| {r['id']} | {r['strategy']} | {ans} | {r['ground_truth']} | "
                f"{_fmt(None if math.isnan(sc.score) else 100 * sc.score, 0)} | "
                f"![]({r['thumbnail']}) |"
            )
    report_path = out / "report.md"
    report_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ReportFiles(metrics_path, report_path, plots)
