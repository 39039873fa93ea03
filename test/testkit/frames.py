"""Small frames and buffers for the unit and tiny-model tests (no model, no ROS)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame
from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer

__all__ = ["S", "colour_buffer", "colour_frame", "depth_frame", "random_frames"]

#: nanoseconds per second
S = 1_000_000_000


def colour_frame(i: int, side: int = 8) -> Frame:
    """Colour-only frame number ``i``: stamp ``(i + 1)`` s, a ``side`` x ``side`` image whose
    every pixel is ``i % 256``."""
    rgb = np.full((side, side, 3), i % 256, np.uint8)
    return Frame(stamp_ns=(i + 1) * S, frame_id="cam", rgb=rgb)


def depth_frame(i: int, side: int = 8) -> Frame:
    """Posed RGB-D frame number ``i`` at stamp ``(i + 1)`` s: black image, 1 m depth
    everywhere, centred pinhole intrinsics, identity pose in ``map``."""
    c = side / 2
    return Frame(
        stamp_ns=(i + 1) * S,
        frame_id="cam",
        rgb=np.zeros((side, side, 3), np.uint8),
        depth_m=np.ones((side, side), np.float32),
        intrinsics=CameraIntrinsics(float(side), float(side), c, c, side, side),
        pose=np.eye(4),
        world_frame_id="map",
    )


def random_frames(n: int, depth: bool, width: int = 64, height: int = 48) -> list[Frame]:
    """``n`` frames of uniform noise 0.1 s apart (seeded by ``n``: the same ``n`` gives the
    same frames); with ``depth``, noise depth in [0.5, 4) m but no intrinsics or pose."""
    rng = np.random.default_rng(n)
    out = []
    for i in range(n):
        rgb = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
        d = rng.uniform(0.5, 4.0, size=(height, width)).astype(np.float32) if depth else None
        out.append(Frame(i * 10**8, "cam", rgb, d))
    return out


def colour_buffer(frames: Iterable[Frame], max_frames: int = 128) -> SpatialFrameBuffer:
    """A space-aware buffer holding every frame of ``frames``: colour-only frames may fill it
    and are not throttled.  Asserts that each frame was admitted."""
    buf = SpatialFrameBuffer(
        BufferConfig(max_frames=max_frames, colour_only_share=1.0, colour_min_interval_s=0.0)
    )
    for f in frames:
        outcome = buf.add(f)
        assert outcome.admitted, f"frame {f.stamp_ns} turned away: {outcome.reason}"
    return buf
