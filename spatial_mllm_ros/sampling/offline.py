"""The yardstick of the online buffer: the paper's offline selection over a whole stream.

Spatial-MLLM selects frames of a *recorded* video: it pre-samples ``min(128, N)`` frames at
``linspace(0, N - 1)`` (:func:`~.strategies.uniform_indices`) and runs greedy maximum coverage
over their voxel sets (:func:`~.coverage.max_coverage`; no fill, no uniform guard).  A live
node cannot see the whole stream; it selects from what :class:`~.online.SpatialFrameBuffer`
kept.  :func:`compare_online_offline` runs both on one stream and measures each pick on the
union of **all** the stream's voxels, with the buffer's voxelization (edge, depth stride,
depth cut) for both, so the two figures are comparable.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.geometry import frame_voxel_keys
from spatial_mllm_ros.sampling.coverage import coverage_fraction, max_coverage
from spatial_mllm_ros.sampling.errors import InvalidInputError
from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer
from spatial_mllm_ros.sampling.predicted import REFERENCE_CANDIDATES
from spatial_mllm_ros.sampling.strategies import uniform_indices

__all__ = ["OnlineOffline", "compare_online_offline", "offline_reference_pick"]

KeyArray = npt.NDArray[np.int64]


def offline_reference_pick(
    voxel_sets: Sequence[KeyArray], k: int, candidates: int = REFERENCE_CANDIDATES
) -> list[int]:
    """The paper's pick of up to ``k`` frames of a whole stream (indices in selection order):
    greedy max coverage over ``candidates`` uniformly pre-sampled frames."""
    pre = uniform_indices(len(voxel_sets), candidates)
    return [pre[j] for j in max_coverage([voxel_sets[i] for i in pre], k)]


@dataclass(frozen=True)
class OnlineOffline:
    """One stream's online and offline picks, measured on the union of all its voxels.

    Attributes:
        n_frames: frames in the stream.
        stream_voxels: distinct voxels of all frames together.
        online: stream indices of the buffer's ``coverage`` pick, ascending.
        offline: stream indices of :func:`offline_reference_pick`, in selection order.
        online_coverage: |union of the online pick's voxels| / ``stream_voxels``.
        offline_coverage: the same for the offline pick.
        admitted: frames the buffer admitted.
        held: frames the buffer held at the end.
        held_coverage: |union of the held frames' voxels| / ``stream_voxels``.
        add_seconds: wall time of each ``SpatialFrameBuffer.add``, in stream order.
    """

    n_frames: int
    stream_voxels: int
    online: tuple[int, ...]
    offline: tuple[int, ...]
    online_coverage: float
    offline_coverage: float
    admitted: int
    held: int
    held_coverage: float
    add_seconds: tuple[float, ...]


def compare_online_offline(
    frames: Sequence[Frame],
    config: BufferConfig | None = None,
    k: int = 16,
    candidates: int = REFERENCE_CANDIDATES,
) -> OnlineOffline:
    """Stream ``frames`` (geometric, distinct stamps) through a fresh buffer, pick ``k`` with
    ``coverage``, and compare with :func:`offline_reference_pick` over the whole stream.

    Raises:
        InvalidInputError: a frame has no depth/pose, or stamps repeat.
    """
    cfg = config or BufferConfig()
    sets: list[KeyArray] = []
    for f in frames:
        keys = frame_voxel_keys(f, cfg.voxel_size_m, cfg.depth_stride, cfg.max_depth_m)
        if keys is None:
            raise InvalidInputError(f"frame {f.stamp_ns} has no depth/pose")
        sets.append(keys)
    index = {f.stamp_ns: i for i, f in enumerate(frames)}
    if len(index) != len(frames):
        raise InvalidInputError("frame stamps must be distinct")
    buf = SpatialFrameBuffer(cfg)
    admitted = 0
    add_s: list[float] = []
    for f in frames:
        t0 = time.perf_counter()
        admitted += buf.add(f).admitted
        add_s.append(time.perf_counter() - t0)
    online = tuple(index[s] for s in buf.select(k, "coverage").frame_stamps_ns)
    offline = tuple(offline_reference_pick(sets, k, candidates))
    held = [index[f.stamp_ns] for f in buf.snapshot().frames]
    stream_voxels = int(np.unique(np.concatenate(sets)).size) if sets else 0
    return OnlineOffline(
        n_frames=len(frames),
        stream_voxels=stream_voxels,
        online=online,
        offline=offline,
        online_coverage=coverage_fraction(sets, online),
        offline_coverage=coverage_fraction(sets, offline),
        admitted=admitted,
        held=len(held),
        held_coverage=coverage_fraction(sets, held),
        add_seconds=tuple(add_s),
    )
