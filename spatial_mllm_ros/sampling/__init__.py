"""Frame selection: greedy max voxel coverage, strategies, budget, online buffer, and the
reference's space-aware sampling on predicted geometry.

Modules: :mod:`.coverage` (lazy greedy), :mod:`.strategies` (named strategies),
:mod:`.scoring` (the seed's scored rule), :mod:`.selection` (snapshots, :class:`Selection`),
:mod:`.union` and :mod:`.online` (the rolling buffer), :mod:`.predicted` (colour-only cameras),
:mod:`.qwen_grid` and :mod:`.budget` (video token cost, adaptive frame budget).

Pure numpy; never imports rclpy, the model or the answering layer.
"""

from __future__ import annotations

from spatial_mllm_ros.sampling.budget import BudgetConfig, adaptive_frame_budget, video_tokens
from spatial_mllm_ros.sampling.coverage import max_coverage
from spatial_mllm_ros.sampling.errors import (
    InvalidInputError,
    SamplingError,
    UnknownStrategyError,
    UnusableGeometryError,
)
from spatial_mllm_ros.sampling.online import AdmitDecision, BufferConfig, SpatialFrameBuffer
from spatial_mllm_ros.sampling.predicted import PredictedGeometry, select_on_predicted
from spatial_mllm_ros.sampling.selection import BufferSnapshot, Selection
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
    "InvalidInputError",
    "PredictedGeometry",
    "SamplingError",
    "SamplingStrategy",
    "Selection",
    "SpatialFrameBuffer",
    "UnknownStrategyError",
    "UnusableGeometryError",
    "adaptive_frame_budget",
    "available_strategies",
    "get_strategy",
    "max_coverage",
    "register_strategy",
    "select_on_predicted",
    "video_tokens",
]
