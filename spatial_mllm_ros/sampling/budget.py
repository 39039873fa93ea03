"""Adaptive frame budget driven by Qwen2.5-VL's video token cost.

Token cost (transformers ``Qwen2VLVideoProcessor``, used by Qwen2.5-VL; the grid constants and
``smart_resize`` live in :mod:`.qwen_grid` and are re-exported here):

1. every frame is resized by ``smart_resize(H, W, factor=patch_size * merge_size = 28,
   min_pixels, max_pixels)``: each side rounded to a multiple of 28, then scaled down (up) to
   stay within ``max_pixels`` (above ``min_pixels``) keeping the aspect ratio.  Video defaults
   are ``min_pixels = 128 * 28 * 28`` and ``max_pixels = 768 * 28 * 28``;
2. frames are padded (last frame repeated) to a multiple of ``temporal_patch_size = 2`` and
   cut into 2 x 14 x 14 patches, so ``grid_t = ceil(T / 2)``, ``grid_h = H' / 14``,
   ``grid_w = W' / 14``;
3. the merger fuses 2 x 2 spatial patches into one LLM token:
   ``tokens = grid_t * grid_h * grid_w / 4 = ceil(T / 2) * (H' / 28) * (W' / 28)``.

So a 640x480 stream costs (476/28) * (644/28) = 17 * 23 = 391 tokens per *pair* of frames.

Budget rule (seed document): 8 frames base, 16 for videos longer than 60 s, +4 when the motion
complexity exceeds 0.7; then capped so that the video tokens fit ``max_video_tokens``, and kept
even (an odd count would be padded by a repeated frame anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

from spatial_mllm_ros import params as P
from spatial_mllm_ros.sampling.qwen_grid import (
    FACTOR,
    MERGE_SIZE,
    PATCH_SIZE,
    TEMPORAL_PATCH_SIZE,
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
    smart_resize,
)

__all__ = [
    "FACTOR",
    "MERGE_SIZE",
    "PATCH_SIZE",
    "TEMPORAL_PATCH_SIZE",
    "VIDEO_MAX_PIXELS",
    "VIDEO_MIN_PIXELS",
    "BudgetConfig",
    "adaptive_frame_budget",
    "smart_resize",
    "tokens_per_temporal_patch",
    "video_tokens",
]


def tokens_per_temporal_patch(
    height: int,
    width: int,
    min_pixels: int = VIDEO_MIN_PIXELS,
    max_pixels: int = VIDEO_MAX_PIXELS,
) -> int:
    """LLM tokens of one temporal patch (2 frames) at this input resolution."""
    h, w = smart_resize(height, width, FACTOR, min_pixels, max_pixels)
    return (h // FACTOR) * (w // FACTOR)


def video_tokens(
    num_frames: int,
    height: int,
    width: int,
    min_pixels: int = VIDEO_MIN_PIXELS,
    max_pixels: int = VIDEO_MAX_PIXELS,
) -> int:
    """LLM tokens of a ``num_frames`` video: ``ceil(T / 2) * (H'/28) * (W'/28)``."""
    if num_frames <= 0:
        return 0
    grid_t = -(-num_frames // TEMPORAL_PATCH_SIZE)
    return grid_t * tokens_per_temporal_patch(height, width, min_pixels, max_pixels)


@dataclass(frozen=True)
class BudgetConfig:
    """Parameters of the adaptive budget (defaults from the seed document)."""

    base_frames: int = 8
    long_video_frames: int = 16
    long_video_s: float = 60.0
    motion_bonus_frames: int = 4
    motion_threshold: float = 0.7
    max_video_tokens: int = P.bound("sampling.max_video_tokens")
    min_frames: int = 2
    min_pixels: int = VIDEO_MIN_PIXELS
    max_pixels: int = VIDEO_MAX_PIXELS


def adaptive_frame_budget(
    duration_s: float,
    motion_complexity: float,
    height: int,
    width: int,
    config: BudgetConfig | None = None,
) -> int:
    """Number of frames to select for a video.

    Args:
        duration_s: length of the observed stream (seconds).
        motion_complexity: in [0, 1], e.g. :func:`.scoring.motion_complexity`.
        height, width: frame resolution in pixels (before the processor's resize).
        config: rule parameters.

    Returns:
        An even frame count >= ``config.min_frames`` (the floor wins over the token cap).
    """
    cfg = config or BudgetConfig()
    n = cfg.long_video_frames if duration_s > cfg.long_video_s else cfg.base_frames
    if motion_complexity > cfg.motion_threshold:
        n += cfg.motion_bonus_frames
    per_pair = tokens_per_temporal_patch(height, width, cfg.min_pixels, cfg.max_pixels)
    cap = (cfg.max_video_tokens // per_pair) * TEMPORAL_PATCH_SIZE
    n = min(n, cap)
    n -= n % TEMPORAL_PATCH_SIZE
    return max(n, cfg.min_frames)
