"""Metrics, plots and the human report of an evaluation directory.

From ``DIR/results.jsonl`` (:mod:`.results`) and ``DIR/run.json`` :func:`write_report` writes:

* ``DIR/metrics.json`` -- ``model``: the checkpoint and whether it has random weights
  (:func:`~.model_info.model_info`: a generated tiny checkpoint, whose answers are
  meaningless; report.md then says so first); per strategy the VSI-Bench metrics
  (:class:`~.metrics.Metrics`, x100: per-type scores, overall, counts, unparseable counts,
  the three direction difficulties), answer statuses, mean coverage of the selected frames
  and of uniform picks, mean latency per stage plus ``other``
  (:func:`~.report_data.latency_table`); a ``comparison`` table (type -> strategy -> score)
  and the reference's output keys (``vsibench_output``) for comparison with lmms-eval logs.
  Scores are recomputed from the stored answer texts with the chosen MRA thresholds, so the
  report's threshold set is independent of the run's.
* ``DIR/scores.png``, ``DIR/latency.png``, ``DIR/coverage.png`` (:mod:`.plots`).
* ``DIR/report.md`` with the tables, the plots and the per-answer contact sheets in
  ``DIR/thumbs/`` (each frame captioned with its buffer index and stamp).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.jsonsafe import finite_or_none, json_safe
from spatial_mllm_ros.evaluation.metrics import (
    REPORT_TYPES,
    Metrics,
    ThresholdsLike,
    resolve_thresholds,
    score_one,
)
from spatial_mllm_ros.evaluation.model_info import ModelInfo, model_info
from spatial_mllm_ros.evaluation.plots import plot_coverage, plot_latency, plot_scores
from spatial_mllm_ros.evaluation.report_data import (
    LATENCY_STAGES,
    OTHER,
    coverage_points,
    metrics_by_strategy,
    record_of,
    score_bars,
    strategy_stats,
)
from spatial_mllm_ros.evaluation.results import RESULTS_FILE, load_results
from spatial_mllm_ros.evaluation.run_plan import RUN_FILE, RunSummary

__all__ = ["ReportFiles", "write_report"]

OTHER_EXPLAINED = (
    f"`{OTHER}` is each answer's total minus its named stages, so the stages and `{OTHER}` "
    "add up to the total: time spent outside the model's own stages -- validating the "
    "question and building the prompt, taking the buffer snapshot, parsing the answer and "
    "its boxes -- and, inside the model call, preparing its inputs (resizing the frames, "
    "tokenising) and decoding the text. `queue_wait` is about 0 offline: each question is "
    "answered as soon as the bag reaches its cutoff."
)


@dataclass(frozen=True)
class ReportFiles:
    """Paths written by :func:`write_report`."""

    metrics: Path
    report: Path
    plots: tuple[Path, ...]


def _plots(out: Path, metrics: Mapping[str, Metrics], results: Sequence[Mapping[str, Any]],
           stats: Mapping[str, Mapping[str, Any]]) -> tuple[Path, ...]:
    questions, points = coverage_points(results)
    return (
        plot_scores(score_bars(metrics), out / "scores.png"),
        plot_latency({s: st["latency_s"] for s, st in stats.items()}, out / "latency.png"),
        plot_coverage(questions, points, out / "coverage.png"),
    )


def run_model(out: Path) -> ModelInfo | None:
    """The model of the run in ``out`` (its ``run.json``), or None when none is recorded."""
    try:
        settings = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))["settings"]
        return model_info(str(settings["model"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _model_lines(model: ModelInfo | None) -> list[str]:
    """The report's first paragraph when the model's answers are meaningless."""
    if model is None or not model.random_weights:
        return []
    return [f"> **Meaningless answers:** {model.note} (checkpoint `{model.checkpoint}`; "
            f"recognised by its {model.evidence}.)", ""]


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if finite_or_none(x) is None else f"{x:.{digits}f}"


def _tables(metrics: Mapping[str, Metrics], stats: Mapping[str, Mapping[str, Any]],
            comparison: Mapping[str, Mapping[str, float | None]]) -> list[str]:
    strategies = list(metrics)
    lines = ["| type | " + " | ".join(strategies) + " |",
             "| --- |" + " --- |" * len(strategies)]
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
    for st in (*LATENCY_STAGES, OTHER, "total"):
        lines.append(f"| latency {st} (s) | " + " | ".join(
            _fmt(stats[s]["latency_s"].get(st), 4) for s in strategies) + " |")
    return [*lines, "", OTHER_EXPLAINED]


def _sheets(results: Sequence[Mapping[str, Any]], theta: ThresholdsLike,
            max_sheets: int) -> list[str]:
    sheets = [r for r in results if r.get("thumbnail")][:max_sheets]
    if not sheets:
        return []
    lines = ["", "## Frames used per answer", "",
             "Each frame is captioned `#index seconds`: its index among the buffered frames "
             "the sampler chose from, and its stamp in seconds after the bag's start.", "",
             "| question | strategy | answer | truth | score | frames |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in sheets:
        answer = str(record_of(r).get("answer") or "")
        sc = score_one(str(r["question_type"]), answer, r["ground_truth"], theta)
        ans = answer.replace("|", "/").replace("\n", " ")[:40]
        lines.append(
            f"| {r['id']} | {r['strategy']} | {ans} | {r['ground_truth']} | "
            f"{_fmt(None if math.isnan(sc.score) else 100 * sc.score, 0)} | "
            f"![]({r['thumbnail']}) |"
        )
    return lines


def _comparison(metrics: Mapping[str, Metrics]) -> dict[str, dict[str, float | None]]:
    """Score (x100, None when not finite) by reported type, then strategy; the types in
    :data:`REPORT_TYPES` order (only those some strategy scored), then ``overall``."""
    comparison = {
        t: {s: finite_or_none(m.scores.get(t)) for s, m in metrics.items()}
        for t in [*REPORT_TYPES, "overall"]
        if t == "overall" or any(t in m.scores for m in metrics.values())
    }
    for s, m in metrics.items():
        comparison["overall"][s] = finite_or_none(m.overall)
    return comparison


def _metrics_doc(model: ModelInfo | None, thresholds: ThresholdsLike,
                 theta: npt.NDArray[np.float64], metrics: Mapping[str, Metrics],
                 stats: Mapping[str, Mapping[str, Any]],
                 comparison: Mapping[str, Mapping[str, float | None]],
                 summary: RunSummary | None, vision: str) -> dict[str, Any]:
    """The content of ``metrics.json`` (see the module docstring)."""
    return {
        "model": model.to_dict() if model is not None else None,
        "thresholds": thresholds if isinstance(thresholds, str) else [float(x) for x in theta],
        "strategies": {
            s: {**m.to_dict(), **stats[s], "vsibench_output": m.vsibench_output()}
            for s, m in metrics.items()
        },
        "comparison": comparison,
        "run": summary.to_dict() if summary is not None else None,
        "vision_backend": vision or None,
    }


def _scope_line(results: Sequence[Mapping[str, Any]], strategies: Sequence[str],
                thresholds: ThresholdsLike, theta: npt.NDArray[np.float64]) -> str:
    """The report's line on what was scored: questions, strategies, MRA thresholds."""
    return (
        f"{len({str(r['id']) for r in results})} questions, strategies: "
        f"{', '.join(strategies)}; MRA thresholds: "
        f"{thresholds if isinstance(thresholds, str) else 'custom'} ({len(theta)} values). "
        "Scores x100, as in VSI-Bench's tables."
    )


def _run_lines(vision: str, summary: RunSummary | None, plots: Sequence[Path]) -> list[str]:
    """The report's lines after the tables: the vision encoders, this invocation, the
    plots."""
    lines: list[str] = []
    if vision:  # what ran the vision encoders (the engine's VisionUsage.line), "" = unknown
        lines += ["", f"Vision encoders: {vision}."]
    if summary is not None:
        lines += [
            "",
            f"This invocation: {summary.pairs_answered} answers computed, "
            f"{summary.pairs_resumed} resumed from results.jsonl, {summary.bag_messages} bag "
            f"messages; {summary.time_split()}.",
        ]
        lines += [f"- warning: {w}" for w in summary.warnings]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    return lines


def write_report(
    out_dir: str | Path,
    thresholds: ThresholdsLike = "vsibench",
    summary: RunSummary | None = None,
    title: str = "Offline evaluation",
    max_sheets: int = 60,
    vision: str = "",
) -> ReportFiles:
    """Write metrics.json, the plots and report.md for ``out_dir`` (see module docstring).

    Raises:
        ResultsFileError: malformed results; MetricsError: unknown threshold set.
    """
    out = Path(out_dir)
    theta = resolve_thresholds(thresholds)
    results = load_results(out / RESULTS_FILE)
    metrics = metrics_by_strategy(results, theta)
    stats = {s: strategy_stats([r for r in results if r["strategy"] == s]) for s in metrics}
    comparison = _comparison(metrics)
    model = run_model(out)
    doc = _metrics_doc(model, thresholds, theta, metrics, stats, comparison, summary, vision)
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(json_safe(doc), indent=2, allow_nan=False),
                            encoding="utf-8")
    plots = _plots(out, metrics, results, stats) if results else ()
    lines = [
        f"# {title}", "", *_model_lines(model),
        *([] if results else ["No results yet."]),
        _scope_line(results, list(metrics), thresholds, theta),
        "",
        *_tables(metrics, stats, comparison),
        *_run_lines(vision, summary, plots),
        *_sheets(results, theta, max_sheets),
    ]
    report_path = out / "report.md"
    report_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ReportFiles(metrics_path, report_path, plots)
