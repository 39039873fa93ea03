"""Scores and metrics as the authors' ``src/evaluation/vsibench/`` computes them.

Per question (``vsi_reward``): both the model's output and the ground truth go through the
prompt family's ``clean_text`` (:func:`~spatial_mllm_ros.vsibench.parsing.prediction_token`:
last ``<answer>`` block, newlines to spaces, whitespace collapsed, stripped, trailing ``.``
removed, lower case); a multiple-choice type scores 1.0 when the two are equal; a numeric type
reads both with ``float()`` after removing commas (0.0 when either fails) and scores the mean
relative accuracy in float32 as torch computes it there: ``|p - t| / (|t| + 1e-8) < 1 - θ``
for θ in ``torch.arange(0.5, 0.975, 0.05)`` -- 10 thresholds 0.50 ... 0.95, a strict ``<``
(the lmms-eval rule of :mod:`spatial_mllm_ros.evaluation.metrics` has ``<=`` in float64: a
prediction exactly on a threshold may score differently there).

Aggregation (``calculate_metrics``): the mean reward per question type; ``all.macro`` = the
mean of the per-type scores with the three ``object_rel_direction_*`` difficulties first
averaged into one -- the paper's "Avg." -- which is :func:`~spatial_mllm_ros.evaluation.metrics.
aggregate`'s ``overall`` over the same per-type means; micro = over questions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spatial_mllm_ros.benchmark.dataset import (
    MULTIPLE_CHOICE_TYPES,
    NUMERIC_TYPES,
    REL_DIRECTION_TYPES,
)
from spatial_mllm_ros.benchmark.errors import QuestionInputError
from spatial_mllm_ros.evaluation.metrics import MetricName, Metrics, ScoreRecord, aggregate
from spatial_mllm_ros.vsibench.parsing import prediction_token

__all__ = [
    "Reward",
    "calculate_metrics",
    "mean_relative_accuracy_f32",
    "normalize_number",
    "reward",
    "summary",
]


@dataclass(frozen=True)
class Reward:
    """One answer scored: the cleaned texts and the reward in [0, 1]."""

    cleaned_prediction: str
    cleaned_ground_truth: str
    value: float


def normalize_number(text: str) -> float | None:
    """``float(text)`` without commas; None when that fails."""
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def mean_relative_accuracy_f32(prediction: float, target: float) -> float:
    """The authors' ``mean_relative_accuracy`` (float32 torch, strict ``<``)."""
    import torch

    p = torch.as_tensor(prediction, dtype=torch.float32)
    t = torch.as_tensor(target, dtype=torch.float32)
    relative = torch.abs(p - t) / (torch.abs(t) + 1e-8)
    thresholds = torch.arange(0.5, 0.95 + 0.05 / 2, 0.05, dtype=torch.float32)
    return float((relative < (1 - thresholds)).float().mean().item())


def reward(model_output: str, ground_truth: str, question_type: str, template: str) -> Reward:
    """Score one answer as ``vsi_reward`` (after ``clean_text`` of both sides).

    Raises:
        QuestionInputError: a question type the authors' evaluation does not score.
    """
    pred = prediction_token(model_output, template)
    gt = prediction_token(ground_truth, template)
    if question_type in MULTIPLE_CHOICE_TYPES:
        return Reward(pred, gt, 1.0 if pred.strip() == gt.strip() else 0.0)
    if question_type not in NUMERIC_TYPES:
        raise QuestionInputError(f"unsupported question type {question_type!r}")
    gt_value, pred_value = normalize_number(gt), normalize_number(pred)
    if gt_value is None or pred_value is None:
        return Reward(pred, gt, 0.0)
    return Reward(pred, gt, mean_relative_accuracy_f32(pred_value, gt_value))


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def calculate_metrics(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The authors' ``calculate_metrics`` of results in their form (``reward``,
    ``sample.question_type``): per-type score and count, accuracy / MRA / all, micro and
    macro, on their 0..1 scale."""
    if not results:
        zero = {"micro": 0.0, "macro": 0.0}
        return {"per_question_type": {}, "acc": dict(zero), "mra": dict(zero),
                "all": dict(zero)}
    by_type: dict[str, list[float]] = {}
    for r in results:
        by_type.setdefault(str(r["sample"]["question_type"]), []).append(float(r["reward"]))
    per_type = {t: {"score": _mean(v), "count": len(v)} for t, v in sorted(by_type.items())}
    rewards = [float(r["reward"]) for r in results]
    numeric = [x for t, v in by_type.items() if t in NUMERIC_TYPES for x in v]
    choice = [x for t, v in by_type.items() if t not in NUMERIC_TYPES for x in v]
    direction = [per_type[t]["score"] for t in REL_DIRECTION_TYPES if t in per_type]
    merged = [_mean(direction)] if direction else []
    acc_scores = merged + [s["score"] for t, s in per_type.items()
                           if t not in NUMERIC_TYPES and t not in REL_DIRECTION_TYPES]
    mra_scores = [s["score"] for t, s in per_type.items() if t in NUMERIC_TYPES]
    all_scores = merged + [s["score"] for t, s in per_type.items()
                           if t not in REL_DIRECTION_TYPES]
    return {
        "per_question_type": per_type,
        "acc": {"micro": _mean(choice), "macro": _mean(acc_scores)},
        "mra": {"micro": _mean(numeric), "macro": _mean(mra_scores)},
        "all": {"micro": _mean(rewards), "macro": _mean(all_scores)},
    }


def _score_record(result: Mapping[str, Any]) -> ScoreRecord:
    qtype = str(result["question_type"])
    metric: MetricName = "mra" if qtype in NUMERIC_TYPES else "accuracy"
    return ScoreRecord(qtype, str(result["prediction"]), str(result["ground_truth"]),
                       float(result["score"]), metric, False, math.nan, result["id"])


def summary(results: Sequence[Mapping[str, Any]]) -> Metrics:
    """Paper-table metrics (x100) of ``results.jsonl`` lines: ``overall`` (= the authors'
    ``all.macro``) and one score per reported type."""
    return aggregate(_score_record(r) for r in results)
