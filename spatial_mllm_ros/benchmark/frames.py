"""Which frames of a scene the model sees, and at what size: the authors' two input paths.

**uniform** (an mp4; the authors' uniform numbers) -- ``qwen_vl_utils.fetch_video`` with
``nframes``: ``n = round(nframes / 2) * 2`` (Python rounding), it must lie in ``[2, total]``,
indices ``torch.linspace(0, total - 1, n).round()`` (float32, round half to even); the frames
are resized to ``smart_resize(h, w, 28, VIDEO_MIN_PIXELS, max(min(VIDEO_MAX_PIXELS,
VIDEO_TOTAL_PIXELS / n * 2), int(VIDEO_MIN_PIXELS * 1.05)))`` with torchvision's antialiased
bicubic on the uint8 tensor (rounded back to uint8, then ``.float()`` there: integral values).

**space_aware** (the authors' ``sa_sampling.py``, then their evaluation of its PNG frames) --
``min(128, total)`` candidates at ``linspace(0, total - 1)`` truncated, VGGT's point map on
them, the project's :mod:`spatial_mllm_ros.sampling.predicted` rule (confidence filter,
bbox / 20 voxels, greedy, no fill), the picks in time order; a list of frames is resized by
``qwen_vl_utils.fetch_image``: PIL bicubic to ``smart_resize(h, w, 28, 4 * 28 * 28,
16384 * 28 * 28)`` (the processor's own resize is then a no-op).  A folder of PNG frames
(already chosen) takes the same list path.

The model's size is the path's, clamped to the profile's ``model.*_pixels`` bounds (the
released profile's 0 = 768 * 28 * 28 holds the reference's 640x480 -> 644x476 unchanged); the
engine's own resize then leaves the frames as they are.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.benchmark.errors import VideoError
from spatial_mllm_ros.model.processing import resize_rgb, target_size
from spatial_mllm_ros.sampling.predicted import REFERENCE_CANDIDATES, candidate_indices

RGB = npt.NDArray[np.uint8]

FRAME_FACTOR = 2
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28
VIDEO_TOTAL_PIXELS = int(128000 * 28 * 28 * 0.9)
IMAGE_MIN_PIXELS = 4 * 28 * 28
IMAGE_MAX_PIXELS = 16384 * 28 * 28

__all__ = [
    "REFERENCE_CANDIDATES",
    "InputPath",
    "PixelBounds",
    "model_size",
    "qwen_nframes",
    "resize_frames",
    "space_aware_candidates",
    "uniform_video_indices",
]


class InputPath(enum.Enum):
    """The reference's two ways into the model (they resize differently)."""

    #: an mp4 through ``fetch_video``: torchvision antialiased bicubic.
    VIDEO = "video"
    #: a list of frames through ``fetch_image``: PIL bicubic.
    FRAME_LIST = "frame_list"


@dataclass(frozen=True)
class PixelBounds:
    """Pixels per frame allowed, ``lo <= W * H <= hi``."""

    lo: int
    hi: int


def qwen_nframes(nframes: int, total: int) -> int:
    """Frames ``fetch_video`` takes for ``nframes`` from a video of ``total`` frames.

    Raises:
        VideoError: the rounded count is outside ``[2, total]`` (the reference raises too).
    """
    n = round(nframes / FRAME_FACTOR) * FRAME_FACTOR
    if not FRAME_FACTOR <= n <= total:
        raise VideoError(
            f"{n} frames asked of a video of {total} (qwen_vl_utils needs 2 <= n <= frames)")
    return n


def uniform_video_indices(total: int, nframes: int) -> list[int]:
    """``qwen_vl_utils``' frame indices for ``nframes`` over a whole video of ``total`` frames."""
    import torch

    n = qwen_nframes(nframes, total)
    return [int(i) for i in torch.linspace(0, total - 1, n).round().long().tolist()]


def space_aware_candidates(total: int, k: int, candidates: int = REFERENCE_CANDIDATES) -> list[int]:
    """The frames whose geometry VGGT predicts: the reference's ``min(128, total)`` truncated
    ``linspace`` (at least ``k``)."""
    return candidate_indices(total, k, candidates)


def path_bounds(path: InputPath, nframes: int) -> PixelBounds:
    """The reference's pixel bounds of ``path`` for a clip of ``nframes`` frames."""
    if path is InputPath.FRAME_LIST:
        return PixelBounds(IMAGE_MIN_PIXELS, IMAGE_MAX_PIXELS)
    hi = max(min(VIDEO_MAX_PIXELS, VIDEO_TOTAL_PIXELS / nframes * FRAME_FACTOR),
             int(VIDEO_MIN_PIXELS * 1.05))
    return PixelBounds(VIDEO_MIN_PIXELS, int(hi))


def model_size(width: int, height: int, path: InputPath, nframes: int,
               engine: PixelBounds) -> tuple[int, int]:
    """(W, H) of the model's input for ``width`` x ``height`` frames: the reference's size for
    ``path``, within the engine's pixel bounds (so the engine keeps it)."""
    ref = path_bounds(path, nframes)
    hi = min(ref.hi, engine.hi)
    lo = min(max(ref.lo, engine.lo), hi)
    return target_size(width, height, min_pixels=lo, max_pixels=hi)


def _torchvision_resize(frames: Sequence[RGB], size: tuple[int, int]) -> list[RGB]:
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    w, h = size
    video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
    out = tvf.resize(video, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return list(out.permute(0, 2, 3, 1).contiguous().numpy())


def resize_frames(frames: Sequence[RGB], path: InputPath, engine: PixelBounds) -> list[RGB]:
    """``frames`` (H, W, 3) uint8 at the model's size, resized as the reference resizes
    ``path`` (all to the size of the first frame, as one clip has one grid)."""
    if not frames:
        return []
    height, width = frames[0].shape[:2]
    size = model_size(width, height, path, len(frames), engine)
    if path is InputPath.VIDEO:
        return _torchvision_resize(frames, size)
    return [resize_rgb(np.ascontiguousarray(f), size) for f in frames]
