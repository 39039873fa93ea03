"""Contact sheets: the frames one answer used, side by side, each captioned with its buffer
index and its stamp in seconds from the bag's start."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from spatial_mllm_ros.core.frame import Frame

__all__ = ["CAPTION_PX", "frame_captions", "write_contact_sheet"]

#: Height of the caption strip under each tile, pixels.
CAPTION_PX = 16
_GAP_PX = 2


def frame_captions(
    frames: Sequence[Frame], candidates: Sequence[Frame], start_ns: int
) -> list[str]:
    """``"#i t.tts"`` per frame: ``i`` its index among ``candidates`` (the buffered frames
    the sampler chose from, time order), ``t`` its stamp in seconds after ``start_ns``."""
    index = {f.stamp_ns: i for i, f in enumerate(candidates)}
    return [
        f"#{index[f.stamp_ns]} {(f.stamp_ns - start_ns) / 1e9:.2f}s" if f.stamp_ns in index
        else f"{(f.stamp_ns - start_ns) / 1e9:.2f}s"
        for f in frames
    ]


def _caption(text: str, width: int) -> np.ndarray:
    """A white strip ``CAPTION_PX`` x ``width`` (RGB uint8) with ``text`` in black."""
    strip = np.full((CAPTION_PX, width, 3), 255, dtype=np.uint8)
    scale = 0.4
    (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if tw > width - 2:  # narrow tiles: shrink the text to fit
        scale *= (width - 2) / tw
    cv2.putText(strip, text, (1, CAPTION_PX - 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def write_contact_sheet(
    frames: Sequence[Frame], path: Path, height: int = 72, captions: Sequence[str] | None = None
) -> Path:
    """One row of the frames' RGB images scaled to ``height`` px with 2 px white gaps, as a
    PNG; with ``captions`` (one per frame) a caption strip of ``CAPTION_PX`` px under each.

    Raises:
        ValueError: ``captions`` does not have one entry per frame.
    """
    if captions is not None and len(captions) != len(frames):
        raise ValueError(f"{len(captions)} captions for {len(frames)} frames")
    rows = height + (CAPTION_PX if captions is not None else 0)
    tiles = []
    for i, f in enumerate(frames):
        h, w = f.rgb.shape[:2]
        tw = max(1, round(w * height / h))
        tile = cv2.resize(np.asarray(f.rgb), (tw, height), interpolation=cv2.INTER_AREA)
        if captions is not None:
            tile = np.concatenate([tile, _caption(captions[i], tw)], axis=0)
        tiles.append(tile)
        tiles.append(np.full((rows, _GAP_PX, 3), 255, dtype=np.uint8))
    sheet = np.concatenate(tiles[:-1], axis=1) if tiles else np.zeros((rows, 1, 3), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path
