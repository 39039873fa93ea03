"""Shared helpers of the Spatial-MLLM model tests: cached tiny checkpoints and real frames."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir
from spatial_mllm_ros.model.tiny import write_checkpoint
from testkit.paths import LAYOUTS, SHELF

DATA = SHELF
LAYOUTS_DIR = LAYOUTS
SMALL_PIXELS = 128 * 28 * 28  # keeps the tiny runs fast

_ROOT = Path(tempfile.mkdtemp(prefix="spatial_mllm_tiny_"))
atexit.register(shutil.rmtree, _ROOT, True)


@functools.cache
def tiny_checkpoint(layout: str = "v1.1", shards: int = 1, with_heads: bool = True) -> Path:
    """A tiny checkpoint directory, generated once per argument set and test session."""
    name = f"{layout}-s{shards}-{'h' if with_heads else 'noh'}"
    return write_checkpoint(_ROOT / name, layout, shards=shards, with_heads=with_heads)


def fresh_copy(src: Path, name: str) -> Path:
    """A writable copy of a checkpoint directory, to damage in a test."""
    dst = _ROOT / "copies" / name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


def require_data() -> Path:
    if not (DATA / "frame-000000.color.png").is_file():
        pytest.skip(f"real_rgbd_shelf data not found at {DATA} (shared/ must sit beside the repo)")
    return DATA


def real_frames(count: int) -> list[Frame]:
    """``count`` frames of real_rgbd_shelf, evenly spread over the sequence."""
    return load_rgbd_dir(require_data(), max_frames=count)


def real_images(count: int) -> list[np.ndarray]:
    return [f.rgb for f in real_frames(count)]
