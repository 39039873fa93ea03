"""Qwen2.5-VL's video patch grid: the constants and ``smart_resize``, pure Python.

The one home of these numbers for the whole package: :mod:`.budget` counts video tokens with
them, and the model's pre-processing resizes frames with them (it may import sampling; sampling
never imports the model, so they live here, below both).  ``smart_resize`` reproduces
transformers' ``Qwen2VLVideoProcessor`` resize (``test_smart_resize_matches_transformers``
checks it against transformers), without importing transformers.

Grid: a frame of H x W pixels is resized to H' x W', both multiples of
``FACTOR = PATCH_SIZE * MERGE_SIZE = 28`` and within ``[min_pixels, max_pixels]`` pixels;
``TEMPORAL_PATCH_SIZE = 2`` frames form one temporal patch of ``(H'/14) x (W'/14)`` patches,
which the merger fuses 2 x 2 into ``(H'/28) x (W'/28)`` LLM tokens.
"""

from __future__ import annotations

import math

from spatial_mllm_ros.sampling.errors import InvalidInputError

PATCH_SIZE = 14
"""Vision patch side (pixels)."""
MERGE_SIZE = 2
"""Spatial merge of the patch merger (2 x 2 patches -> one LLM token)."""
TEMPORAL_PATCH_SIZE = 2
"""Frames per temporal patch (an odd count is padded by repeating the last frame)."""
FACTOR = PATCH_SIZE * MERGE_SIZE  # 28
"""Both resized sides are multiples of this (pixels)."""
VIDEO_MIN_PIXELS = 128 * 28 * 28
"""Default lower bound of H' * W' for video frames."""
VIDEO_MAX_PIXELS = 768 * 28 * 28
"""Default upper bound of H' * W' for video frames."""
MAX_ASPECT_RATIO = 200
"""Longest / shortest side above which the processor refuses an image."""


def smart_resize(
    height: int,
    width: int,
    factor: int = FACTOR,
    min_pixels: int = VIDEO_MIN_PIXELS,
    max_pixels: int = VIDEO_MAX_PIXELS,
) -> tuple[int, int]:
    """Resized (height, width), both multiples of ``factor``, as the Qwen2-VL processors do.

    Each side is rounded to a multiple of ``factor``; when the area leaves
    ``[min_pixels, max_pixels]`` both sides are scaled by one factor (aspect kept) and rounded
    down (above the maximum) or up (below the minimum) to multiples of ``factor``.

    Raises:
        InvalidInputError: a side is not positive, or the aspect ratio exceeds 200.
    """
    if height <= 0 or width <= 0:
        raise InvalidInputError(f"image size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise InvalidInputError(f"absolute aspect ratio must be smaller than {MAX_ASPECT_RATIO}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar
