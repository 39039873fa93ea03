"""The PIL resizes that make the model's input frames (no torch), shared by the engine
(:mod:`spatial_mllm_ros.model.processing`) and the remote client
(:mod:`spatial_mllm_ros.answering.wire`), which sends frames already at the model's input size:
the same function on both sides, so a frame resized by the robot is left as it is by the
server and the model sees the same pixels either way.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

from spatial_mllm_ros.sampling.errors import InvalidInputError

__all__ = ["VGGT_WIDTH", "resize_rgb", "vggt_image"]

#: Width of the frames VGGT predicts geometry from (the reference sampler's 518 px).
VGGT_WIDTH = 518


def resize_rgb(frame: npt.NDArray[np.uint8], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """PIL bicubic resize of an (H, W, 3) uint8 frame to ``size`` = (W, H), as the reference;
    a frame already of that size is returned as it is."""
    w, h = size
    if frame.shape[1] == w and frame.shape[0] == h:
        return frame
    image = Image.fromarray(np.ascontiguousarray(frame))
    return np.asarray(image.resize((w, h), Image.Resampling.BICUBIC), dtype=np.uint8)


def vggt_image(frame: npt.NDArray[np.uint8], width: int) -> npt.NDArray[np.uint8]:
    """One (H, W, 3) uint8 frame as the reference space-aware sampler feeds VGGT, before its
    crop and padding: a portrait frame turned 90 degrees clockwise, then a PIL bicubic resize to
    ``width`` x ``round(h * width / w / 14) * 14``. Applied twice it changes nothing more.

    Raises:
        InvalidInputError: the frame is too flat (its height would round to 0).
    """
    image = Image.fromarray(np.ascontiguousarray(frame))
    if image.height > image.width:
        image = image.rotate(-90, expand=True)
    new_h = round(image.height * (width / image.width) / 14) * 14
    if new_h < 14:
        raise InvalidInputError(f"frame {image.width}x{image.height} is too flat for VGGT")
    if image.size == (width, new_h):
        return np.asarray(image, dtype=np.uint8)
    return np.asarray(image.resize((width, new_h), Image.Resampling.BICUBIC), dtype=np.uint8)
