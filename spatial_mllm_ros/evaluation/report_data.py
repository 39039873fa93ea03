"""The numbers behind the evaluation report's tables and plots, from result lines
(:mod:`.results`); pure, so they can be tested without drawing anything.

* :func:`metrics_by_strategy` -- VSI-Bench metrics per strategy, rescored from the answers.
* :func:`latency_table` -- mean seconds per stage plus :data:`OTHER`, which add up to the
  mean total.
* :func:`score_bars` -- per-type scores per strategy, None where a strategy has no score.
* :func:`coverage_points` -- one (selected, uniform) coverage pair per question per strategy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spatial_mllm_ros.answering.types import STAGES
from spatial_mllm_ros.core.jsonsafe import finite_or_none
from spatial_mllm_ros.evaluation.metrics import (
    REPORT_TYPES,
    Metrics,
    ThresholdsLike,
    aggregate,
    score_one,
)

__all__ = [
    "LATENCY_STAGES",
    "OTHER",
    "CoveragePoint",
    "ScoreBars",
    "coverage_points",
    "latency_table",
    "metrics_by_strategy",
    "record_of",
    "score_bars",
    "strategies_of",
    "strategy_stats",
]

#: The pipeline's named stages, in order (``total`` excluded).
LATENCY_STAGES: tuple[str, ...] = tuple(s for s in STAGES if s != "total")
#: Part of the total not attributed to a named stage: the pipeline's own work (question
#: checks, prompt building, buffer snapshot, answer and box parsing) and the model's
#: unstaged work (frame resizing, tokenisation, moving tensors, decoding the text).
OTHER = "other"


def record_of(line: Mapping[str, Any]) -> Mapping[str, Any]:
    """The answer record (``AnswerRecord.to_json()``) of a result line."""
    rec: Mapping[str, Any] = line["record"]
    return rec


def strategies_of(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Strategies in order of first appearance."""
    seen: list[str] = []
    for r in results:
        if str(r["strategy"]) not in seen:
            seen.append(str(r["strategy"]))
    return seen


def metrics_by_strategy(
    results: Sequence[Mapping[str, Any]], thresholds: ThresholdsLike = "vsibench"
) -> dict[str, Metrics]:
    """VSI-Bench metrics per strategy, rescored from the stored answers."""
    out: dict[str, Metrics] = {}
    for s in strategies_of(results):
        records = [
            score_one(str(r["question_type"]), str(record_of(r).get("answer") or ""),
                      r["ground_truth"], thresholds, question_id=r["id"],
                      template=str(r["prompt_template"]))
            for r in results if r["strategy"] == s
        ]
        out[s] = aggregate(records, thresholds=thresholds)
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    v = [x for x in (finite_or_none(y) for y in values) if x is not None]
    return float(np.mean(v)) if v else None


def latency_table(rows: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Mean seconds per answer of each of :data:`LATENCY_STAGES`, :data:`OTHER` and
    ``total``, over the answers of ``rows`` that were timed (a total > 0: an answer refused
    before sampling has none); a missing stage counts 0.

    ``other`` is each answer's total minus the sum of its stages, averaged, so the parts
    add up to ``total`` exactly (up to float rounding). All None when no answer was timed.
    """
    timed = [record_of(r).get("timings_s") or {} for r in rows]
    timed = [t for t in timed if (finite_or_none(t.get("total")) or 0.0) > 0.0]
    table: dict[str, float | None] = {
        st: _mean([float(t.get(st) or 0.0) for t in timed]) for st in LATENCY_STAGES
    }
    table[OTHER] = _mean([
        float(t["total"]) - sum(float(t.get(st) or 0.0) for st in LATENCY_STAGES) for t in timed
    ])
    table["total"] = _mean([float(t["total"]) for t in timed])
    return table


def strategy_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Answer statuses, mean coverages, frames used and the latency table of one strategy."""
    statuses: dict[str, int] = {}
    for r in rows:
        status = str(record_of(r)["status"])
        statuses[status] = statuses.get(status, 0) + 1
    recs = [record_of(r) for r in rows]
    return {
        "answers": len(rows),
        "statuses": statuses,
        "mean_coverage": _mean([r.get("coverage") for r in recs]),
        "mean_uniform_coverage": _mean([r.get("uniform_coverage") for r in recs]),
        "mean_frames_used": _mean([float(len(r.get("frame_stamps_ns") or [])) for r in recs]),
        "latency_s": latency_table(rows),
    }


@dataclass(frozen=True)
class ScoreBars:
    """Bars of the scores plot.

    Attributes:
        labels: reported types present in any strategy, then ``overall``.
        values: strategy -> one score (x100) per label; None where that strategy has none.
    """

    labels: tuple[str, ...]
    values: dict[str, list[float | None]]


def score_bars(metrics: Mapping[str, Metrics]) -> ScoreBars:
    """Per-type and overall scores per strategy; a score of 0 stays 0, a missing one None."""
    types = [t for t in REPORT_TYPES if any(t in m.scores for m in metrics.values())]
    values = {
        s: [finite_or_none(m.scores.get(t)) for t in types] + [finite_or_none(m.overall)]
        for s, m in metrics.items()
    }
    return ScoreBars((*types, "overall"), values)


@dataclass(frozen=True)
class CoveragePoint:
    """One answer's coverage of the scene's voxels.

    Attributes:
        question_id: the question (as in the results).
        coverage: of the selected frames, 0..1; None when the answer selected none.
        uniform_coverage: of uniformly spaced frames, same count, same buffer; or None.
    """

    question_id: str | int
    coverage: float | None
    uniform_coverage: float | None


def coverage_points(
    results: Sequence[Mapping[str, Any]],
) -> tuple[list[str | int], dict[str, list[CoveragePoint]]]:
    """The questions in order of first appearance, and per strategy one point per question
    (in that order; coverages None where that strategy has no answer or no coverage)."""
    order: list[str | int] = []
    seen: set[str] = set()
    by_key: dict[tuple[str, str], Mapping[str, Any]] = {}
    for r in results:
        if str(r["id"]) not in seen:
            seen.add(str(r["id"]))
            order.append(r["id"])
        by_key[(str(r["id"]), str(r["strategy"]))] = record_of(r)
    points: dict[str, list[CoveragePoint]] = {}
    for s in strategies_of(results):
        row = []
        for qid in order:
            rec = by_key.get((str(qid), s), {})
            row.append(CoveragePoint(qid, finite_or_none(rec.get("coverage")),
                                     finite_or_none(rec.get("uniform_coverage"))))
        points[s] = row
    return order, points
