"""Space-aware frame sampling: greedy max voxel coverage, strategies, budget, online buffer.

Pure numpy; never imports rclpy.
"""

from __future__ import annotations

from spatial_mllm_ros.sampling.budget import BudgetConfig, adaptive_frame_budget, video_tokens
from spatial_mllm_ros.sampling.coverage import max_coverage
from spatial_mllm_ros.sampling.errors import (
    FrameNotInBufferError,
    InvalidInputError,
    SamplingError,
    UnknownStrategyError,
)
from spatial_mllm_ros.sampling.online import (
    AdmitDecision,
    BufferConfig,
    BufferSnapshot,
    Selection,
    SpatialFrameBuffer,
)
from spatial_mllm_ros.sampling.strategies import (
    Candidates,
    SamplingStrategy,
    available_strategies,
    get_strategy,
    register_strategy,
)

__all__ = [
    "AdmitDecision",
    "BudgetConfig",
    "BufferConfig",
    "BufferSnapshot",
    "Candidates",
    "FrameNotInBufferError",
    "InvalidInputError",
    "SamplingError",
    "SamplingStrategy",
    "Selection",
    "SpatialFrameBuffer",
    "UnknownStrategyError",
    "adaptive_frame_budget",
    "available_strategies",
    "get_strategy",
    "max_coverage",
    "register_strategy",
    "video_tokens",
]
