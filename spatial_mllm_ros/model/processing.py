"""Frames -> model inputs: Qwen2.5-VL video input and the spatial encoder's tensor, one resolution.

Every frame is resized with PIL's bicubic filter -- the resize the reference pipeline applies
to a list of frames (``qwen_vl_utils.fetch_image``, then the Qwen2-VL image processor's PIL
resize) -- to ONE size ``(W, H)`` chosen by Qwen2.5-VL's
``smart_resize`` from the first frame: both sides multiples of 28 (patch 14 x merge 2), aspect
ratio kept as far as possible, ``min_pixels <= W*H <= max_pixels``.  Frames of another size or
orientation are resized to the same ``(W, H)`` (stretched), because one clip has one patch grid.
The clip is padded to an even length (temporal_patch_size 2) by repeating its last frame.  The
same resized uint8 frames feed the Qwen processor (``do_resize=False``) and, scaled to [0, 1],
the VGGT aggregator, so the merged spatial tokens match the video tokens one to one.

Video timing: the temporal M-RoPE position of frame pair ``t`` is
``t * second_per_grid_ts * tokens_per_second``. The released checkpoints were evaluated with
transformers 4.51's default ``fps=2.0``, i.e. ``second_per_grid_ts = temporal_patch_size / 2.0
= 1.0`` and positions 0, 2, 4, ... (``tokens_per_second`` = 2). :func:`build_inputs` fixes it
from ``video_fps`` for every clip, whatever rate the frames were captured or selected at: the
selected frames are not evenly spaced in time, and the model knows only the evaluation's
spacing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from spatial_mllm_ros.model.errors import InputError
from spatial_mllm_ros.sampling.errors import InvalidInputError
from spatial_mllm_ros.sampling.qwen_grid import FACTOR, smart_resize
from spatial_mllm_ros.sampling.qwen_grid import VIDEO_MAX_PIXELS as DEFAULT_MAX_PIXELS
from spatial_mllm_ros.sampling.qwen_grid import VIDEO_MIN_PIXELS as DEFAULT_MIN_PIXELS
from spatial_mllm_ros.sampling.resize import VGGT_WIDTH, resize_rgb, vggt_image


@dataclass(frozen=True)
class PreparedClip:
    """Resized clip shared by both encoders.

    Attributes:
        frames: (S, H, W, 3) uint8 RGB, S even.
        original_size: (W, H) of the first input frame, pixels.
        resized_size: (W, H) the model sees, multiples of 28.
        num_padded: frames appended to make S even.
    """

    frames: npt.NDArray[np.uint8]
    original_size: tuple[int, int]
    resized_size: tuple[int, int]
    num_padded: int

    def video_tensor(self) -> torch.Tensor:
        """(S, 3, H, W) uint8 for the Qwen video processor."""
        return torch.from_numpy(np.ascontiguousarray(self.frames)).permute(0, 3, 1, 2).contiguous()

    def spatial_tensor(self) -> torch.Tensor:
        """(1, S, 3, H, W) float32 in [0, 1] for the VGGT aggregator."""
        return (self.video_tensor().float() / 255.0).unsqueeze(0)


def target_size(
    width: int,
    height: int,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[int, int]:
    """(W, H), multiples of 28, for a ``width`` x ``height`` frame within the pixel budget
    (Qwen2.5-VL's ``smart_resize``, :mod:`spatial_mllm_ros.sampling.qwen_grid`)."""
    try:
        h, w = smart_resize(height, width, FACTOR, min_pixels, max_pixels)
    except InvalidInputError as err:
        raise InputError(f"frame size {width}x{height}: {err}") from err
    return int(w), int(h)


def _as_rgb(frame: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    arr = np.asarray(frame)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InputError(f"expected an (H, W, 3) RGB frame, got shape {arr.shape}")
    arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr.astype(np.float64)), 0, 255).round().astype(np.uint8)
    return arr


def prepare_clip(
    frames: Sequence[npt.ArrayLike],
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    temporal_patch_size: int = 2,
    size: tuple[int, int] | None = None,
) -> PreparedClip:
    """Resize frames (numpy RGB, any size) to one model size and pad to a multiple of 2 frames.

    ``size``: the (W, H) model size when the caller already knows it (frames a robot resized
    to :func:`target_size` of its camera before sending them: ``smart_resize`` of an already
    resized frame is not always the same size); None = :func:`target_size` of the first frame.
    """
    if len(frames) == 0:
        raise InputError("no frames given")
    rgb = [_as_rgb(f) for f in frames]
    original = (int(rgb[0].shape[1]), int(rgb[0].shape[0]))
    size = size or target_size(*original, min_pixels=min_pixels, max_pixels=max_pixels)
    resized = [resize_rgb(f, size) for f in rgb]
    pad = (-len(resized)) % temporal_patch_size
    resized.extend([resized[-1]] * pad)
    return PreparedClip(np.stack(resized), original, size, pad)


def chat_text(processor: Any, prompt: str) -> str:
    """The Qwen2.5-VL chat prompt for one video followed by ``prompt``."""
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return str(text)


SAMPLING_WIDTH = VGGT_WIDTH
"""Width of the frames VGGT sees when it predicts geometry for space-aware sampling."""


def sampling_tensor(
    frames: Sequence[npt.ArrayLike], width: int = SAMPLING_WIDTH
) -> torch.Tensor:
    """(1, S, 3, H, W) float32 in [0, 1]: frames prepared for VGGT's geometry prediction as the
    reference space-aware sampling prepares them (``load_and_preprocess_images`` in Spatial-MLLM's
    ``src/sampling/sa_sampling.py``).

    Each frame: a portrait frame is turned 90 degrees clockwise; PIL bicubic resize to
    ``width`` x ``round(h * width / w / 14) * 14``; a height above ``width`` is centre-cropped
    to ``width``. Frames that end with different heights are padded (centred, value 1.0) to the
    largest, as the reference does.
    """
    if len(frames) == 0:
        raise InputError("no frames given")
    tensors: list[torch.Tensor] = []
    for frame in frames:
        try:
            resized = vggt_image(_as_rgb(frame), width)
        except InvalidInputError as err:
            raise InputError(str(err)) from err
        new_h = resized.shape[0]
        t = torch.from_numpy(resized.copy()).permute(2, 0, 1).float() / 255.0
        if new_h > width:
            top = (new_h - width) // 2
            t = t[:, top : top + width, :]
        tensors.append(t)
    height = max(t.shape[1] for t in tensors)
    padded = []
    for t in tensors:
        extra = height - t.shape[1]
        top = extra // 2
        padded.append(torch.nn.functional.pad(t, (0, 0, top, extra - top), value=1.0))
    return torch.stack(padded).unsqueeze(0)


DEFAULT_VIDEO_FPS = 2.0
"""The frame rate the released checkpoints' evaluation gave the processor (transformers 4.51's
default): ``second_per_grid_ts`` = 2 / 2.0 = 1.0."""


def second_per_grid(video_fps: float, temporal_patch_size: int = 2) -> float:
    """Seconds per temporal grid step the model is told: ``temporal_patch_size / video_fps``."""
    if not video_fps > 0:
        raise InputError(f"video_fps must be > 0, got {video_fps}")
    return temporal_patch_size / video_fps


def build_inputs(
    processor: Any, clip: PreparedClip, prompt: str, video_fps: float = DEFAULT_VIDEO_FPS
) -> dict[str, Any]:
    """Processor outputs (input_ids, attention_mask, pixel_values_videos, video_grid_thw,
    second_per_grid_ts, ...) plus ``video_tchw`` for the spatial encoder.

    ``second_per_grid_ts`` is set to :func:`second_per_grid` of ``video_fps`` (see the module
    docstring): without it transformers 5 assumes 24 fps and squeezes the temporal positions.
    """
    batch = processor(
        text=[chat_text(processor, prompt)],
        videos=[clip.video_tensor()],
        return_tensors="pt",
        videos_kwargs={
            "do_resize": False,
            "do_sample_frames": False,
            "cap_pixels_per_frame": False,
        },
    )
    inputs = dict(batch)
    tps = int(processor.video_processor.temporal_patch_size)
    inputs["second_per_grid_ts"] = torch.tensor(
        [second_per_grid(video_fps, tps)], dtype=torch.float32
    )
    inputs["video_tchw"] = clip.spatial_tensor()
    return inputs
