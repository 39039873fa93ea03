"""A scene's frames: an mp4 decoded with PyAV, or a folder of PNG frames.

Decoder: the authors' environment decodes with ``decord`` (its README installs it;
``qwen_vl_utils`` prefers it to torchvision's PyAV reader, and their ``sa_sampling.py`` reads
videos with ``decord.VideoReader``).  Here PyAV (FFmpeg's libavcodec, as decord) decodes every
frame in presentation order and converts it to RGB with ``to_ndarray(format="rgb24")``
(FFmpeg's swscale, BT.601 unless the stream says otherwise); the frame count is the number of
video packets, as decord's index counts them.  The README records what was measured against
decord.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from spatial_mllm_ros.benchmark.errors import VideoError

RGB = npt.NDArray[np.uint8]

__all__ = ["count_frames", "read_frames", "read_png_folder"]


def count_frames(path: Path) -> int:
    """Frames of the first video stream of ``path`` (its non-empty packets).

    Raises:
        VideoError: not a readable video, or no video stream / no frame.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path} has no video stream")
            stream = container.streams.video[0]
            count = sum(1 for packet in container.demux(stream) if packet.size > 0)
    except (av.FFmpegError, OSError) as err:
        raise VideoError(f"cannot read the video {path}: {err}") from err
    if count == 0:
        raise VideoError(f"{path} has no video frame")
    return count


def read_frames(path: Path, indices: Sequence[int]) -> list[RGB]:
    """The frames at ``indices`` (0-based, presentation order; repeats allowed) as (H, W, 3)
    uint8 RGB, decoded in one pass that stops after the last index.

    Raises:
        VideoError: unreadable or corrupt video, or fewer frames than an index needs.
    """
    import av

    wanted = set(indices)
    if not wanted:
        return []
    last = max(wanted)
    found: dict[int, RGB] = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    found[i] = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
                if i >= last:
                    break
    except (av.FFmpegError, OSError, IndexError) as err:
        raise VideoError(f"cannot decode the video {path}: {err}") from err
    missing = sorted(wanted - found.keys())
    if missing:
        raise VideoError(
            f"{path}: decoded {len(found)} of the frames asked; frame {missing[0]} is missing "
            f"(a truncated or corrupt video)")
    return [found[i] for i in indices]


def _png_rgb(path: Path) -> RGB:
    """One PNG as RGB, as ``qwen_vl_utils.fetch_image`` reads it (RGBA over white)."""
    with Image.open(path) as image:
        if image.mode == "RGBA":
            white = Image.new("RGB", image.size, (255, 255, 255))
            white.paste(image, mask=image.split()[3])
            return np.asarray(white, dtype=np.uint8)
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_png_folder(folder: Path) -> tuple[list[str], list[RGB]]:
    """The ``*.png`` frames of ``folder`` in sorted path order (the reference's ``sorted(glob)``):
    their names and (H, W, 3) uint8 RGB images.

    Raises:
        VideoError: no PNG, or one that cannot be read.
    """
    paths = sorted(folder.glob("*.png"), key=str)
    if not paths:
        raise VideoError(f"{folder} holds no *.png frame")
    images: list[RGB] = []
    for path in paths:
        try:
            images.append(_png_rgb(path))
        except (OSError, ValueError) as err:
            raise VideoError(f"cannot read the frame {path}: {err}") from err
    return [p.name for p in paths], images
