"""Offline evaluation: VSI-Bench metrics and the questions file (pure Python, no rclpy)."""

from __future__ import annotations

from spatial_mllm_ros.evaluation.errors import EvaluationError, MetricsError, QuestionsFileError
from spatial_mllm_ros.evaluation.metrics import (
    LINSPACE11_THRESHOLDS,
    PAPER_THRESHOLDS,
    VSIBENCH_THRESHOLDS,
    Metrics,
    ScoreRecord,
    aggregate,
    mean_relative_accuracy,
    score_one,
)
from spatial_mllm_ros.evaluation.questions import (
    Question,
    load_questions,
    parse_question_line,
    write_questions,
)

__all__ = [
    "LINSPACE11_THRESHOLDS",
    "PAPER_THRESHOLDS",
    "VSIBENCH_THRESHOLDS",
    "EvaluationError",
    "Metrics",
    "MetricsError",
    "Question",
    "QuestionsFileError",
    "ScoreRecord",
    "aggregate",
    "load_questions",
    "mean_relative_accuracy",
    "parse_question_line",
    "score_one",
    "write_questions",
]
