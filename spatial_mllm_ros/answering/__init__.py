"""Answering: one question in, one answer out, through sampler -> model -> parsed answer.

Pure (no rclpy): the ROS node and the offline evaluator both call this package, so that
answers on the robot and in evaluation come from the same code.
"""

from spatial_mllm_ros.answering.types import (
    Answerer,
    AnswerRecord,
    AnswerStatus,
    GenerationResult,
    QuestionRequest,
)

__all__ = ["AnswerRecord", "AnswerStatus", "Answerer", "GenerationResult", "QuestionRequest"]
