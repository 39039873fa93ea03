"""A cheap procedural RGB-D stream (~1 ms per frame), for tests and benchmarks.

A textured wall and a box in front of it seen by a camera sliding sideways, with correct
parallax, consistent depth, intrinsics and poses, and a band without depth (a sensor hole).
Unlike the rendered walkthroughs (:mod:`spatial_mllm_ros.synthetic.walkthrough`), generating it
does not compete with the node for CPU.
"""

from __future__ import annotations

import math

import numpy as np

from spatial_mllm_ros.core.frame import (
    DEFAULT_FRAME_ID,
    DEFAULT_WORLD_FRAME_ID,
    CameraIntrinsics,
    Frame,
)

__all__ = ["ping_pong", "procedural_frames"]


def procedural_frames(
    n_views: int = 30, width: int = 640, height: int = 480, wall_m: float = 2.5,
    box_m: float = 1.4, sweep_m: float = 0.6,
) -> list[Frame]:
    """``n_views`` frames of a camera sliding along world x in front of a textured wall.

    World frame: z up, the camera optical axis along world +y, 75-degree horizontal field of
    view.  The wall is at ``wall_m`` and the box face at ``box_m`` metres from the camera; the
    camera moves by ``sweep_m * sin(2 pi i / n_views)`` metres, so image content shifts by
    ``fx * dx / Z`` pixels between views (true parallax).  Rows 0..height/16 have no depth
    (a sensor hole).  Frames have stamp 0 (the publisher stamps them), (H, W, 3) uint8 RGB,
    (H, W) float32 depth in metres, intrinsics and a pose in ``map``.
    """
    f = width / (2.0 * math.tan(math.radians(75.0) / 2.0))
    intr = CameraIntrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height)
    margin = math.ceil(f * sweep_m / box_m) + 2
    cols = np.arange(width + 2 * margin)
    rows = np.arange(height)
    # textures in world units so that motion is consistent
    xw = (cols - margin - intr.cx)[None, :] * wall_m / f
    yw = (rows - intr.cy)[:, None] * wall_m / f
    checker = ((np.floor(xw / 0.25) + np.floor(yw / 0.25)) % 2).astype(np.float32)
    wall = np.empty((height, cols.size, 3), np.uint8)
    wall[..., 0] = (90 + 100 * checker).astype(np.uint8)
    wall[..., 1] = (120 + 60 * np.sin(xw * 4.0) ** 2).astype(np.uint8)
    wall[..., 2] = (160 - 80 * checker).astype(np.uint8)
    box = np.zeros((height, cols.size), bool)
    c0 = margin + width // 2 - width // 8
    box[height // 3: 2 * height // 3, c0: c0 + width // 4] = True
    frames: list[Frame] = []
    r_world_cam = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # optical -> z-up world
    for i in range(n_views):
        dx = sweep_m * math.sin(2 * math.pi * i / max(n_views, 1))
        shift_wall = round(f * dx / wall_m)
        shift_box = round(f * dx / box_m)
        rgb = wall[:, margin + shift_wall: margin + shift_wall + width].copy()
        depth = np.full((height, width), np.float32(wall_m), np.float32)
        bmask = np.roll(box, -shift_box, axis=1)[:, margin: margin + width]
        rgb[bmask] = (200, 60, 40)
        depth[bmask] = box_m
        depth[: height // 16] = 0.0
        pose = np.eye(4)
        pose[:3, :3] = r_world_cam
        pose[:3, 3] = (dx, 0.0, 1.2)
        frames.append(
            Frame(0, DEFAULT_FRAME_ID, rgb, depth, intr, pose, DEFAULT_WORLD_FRAME_ID, i)
        )
    return frames


def ping_pong(n: int, i: int) -> int:
    """Index into ``n`` views for slot ``i``, going back and forth (no jump at the loop
    point): 0, 1, ..., n-1, n-2, ..., 1, 0, 1, ..."""
    if n <= 1:
        return 0
    period = 2 * n - 2
    k = i % period
    return k if k < n else period - k
