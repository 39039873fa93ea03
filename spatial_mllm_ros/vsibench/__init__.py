"""Prompts, answer parsing and object boxes for spatial questions (pure Python, no rclpy).

- :mod:`.prompts`: VSI-Bench prompt forms, question types, a heuristic type classifier and
  question validation.
- :mod:`.parsing`: turning a generated answer into a number or an option letter.
- :mod:`.boxes`: Qwen2.5-VL box outputs (JSON ``bbox_2d`` and box special tokens) mapped back
  to the original frame, and their 3D position from depth.
"""

from __future__ import annotations

from spatial_mllm_ros.vsibench.boxes import Box2D, box_position, parse_boxes
from spatial_mllm_ros.vsibench.errors import (
    AnswersError,
    BoxError,
    InvalidQuestionError,
    UnknownQuestionTypeError,
)
from spatial_mllm_ros.vsibench.parsing import ParsedAnswer, parse_answer, vsi_prediction_token
from spatial_mllm_ros.vsibench.prompts import (
    MULTIPLE_CHOICE_TYPES,
    NUMERIC_TYPES,
    OPEN_TYPE,
    QUESTION_TYPES,
    build_prompt,
    infer_question_type,
    validate_question,
)

__all__ = [
    "MULTIPLE_CHOICE_TYPES",
    "NUMERIC_TYPES",
    "OPEN_TYPE",
    "QUESTION_TYPES",
    "AnswersError",
    "Box2D",
    "BoxError",
    "InvalidQuestionError",
    "ParsedAnswer",
    "UnknownQuestionTypeError",
    "box_position",
    "build_prompt",
    "infer_question_type",
    "parse_answer",
    "parse_boxes",
    "validate_question",
    "vsi_prediction_token",
]
