"""Monocular frame selection benchmark (CPU): coverage sampling on predicted geometry.

1. Time to predict the geometry of 32 candidate frames in one spatial-encoder pass on the tiny
   checkpoint at the node's cpu_tiny size (``model.max_pixels`` 50176, ``num_threads`` 1),
   and the rest of the selection on predicted geometry (:mod:`spatial_mllm_ros.sampling.
   predicted`: the reference's global confidence filter, voxelization, greedy).
2. Coverage vs uniform on the real_rgbd_shelf frames (15, colour only): on the tiny model's
   predicted voxel sets (what the answer reports), and -- as a check of what the picks are
   worth -- the same picks scored on the voxels of the frames' *sensor* depth + pose, next to
   the sensor-greedy (oracle) picks. The tiny model has random weights: its geometry is
   meaningless, so the sensor-scored figures say nothing about the real model.

Run: ``python benchmarks/bench_monocular.py [--quick]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from spatial_mllm_ros.core.frame import Frame
    from spatial_mllm_ros.model.engine import SpatialMLLMEngine
    from spatial_mllm_ros.sampling.online import SpatialFrameBuffer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "real_rgbd_shelf"
CPU_TINY_MAX_PIXELS = 50176  # config/cpu_tiny.yaml model.max_pixels
CPU_TINY_THREADS = 1  # config/cpu_tiny.yaml model.num_threads


def load_frames() -> tuple[list[Frame], str]:
    from spatial_mllm_ros.core.frame import Frame

    if (DATA / "frame-000000.color.png").is_file():
        from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir

        return load_rgbd_dir(DATA), "real_rgbd_shelf"
    rng = np.random.default_rng(0)
    frames = [
        Frame(i * 10**9, "cam", rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
        for i in range(15)
    ]
    return frames, "synthetic noise"


def colour_only(frames: list[Frame]) -> list[Frame]:
    return [dataclasses.replace(f, depth_m=None, pose=None, world_frame_id="") for f in frames]


def buffer_of(frames: list[Frame]) -> SpatialFrameBuffer:
    from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer

    buf = SpatialFrameBuffer(
        BufferConfig(max_frames=256, colour_only_share=1.0, colour_min_interval_s=0.0)
    )
    for f in frames:
        buf.add(f)
    return buf


def bench_prediction(
    engine: SpatialMLLMEngine, frames: list[Frame], runs: int, n_candidates: int
) -> None:
    from spatial_mllm_ros.answering.monocular import select_frames
    from spatial_mllm_ros.sampling import max_coverage
    from spatial_mllm_ros.sampling.predicted import predicted_voxel_sets

    # 32 distinct candidates from the 15 frames: the repeats mirrored left-right.
    cands = []
    for i in range(n_candidates):
        f = frames[i % len(frames)]
        rgb = f.rgb if (i // len(frames)) % 2 == 0 else np.ascontiguousarray(f.rgb[:, ::-1])
        cands.append(dataclasses.replace(f, rgb=rgb, stamp_ns=i * 10**9))
    cands = colour_only(cands)
    engine.predict_geometry(cands[:2])  # warm-up
    predict, voxels, greedy = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        geoms = engine.predict_geometry(cands)
        t1 = time.perf_counter()
        vox = predicted_voxel_sets(geoms)
        t2 = time.perf_counter()
        max_coverage(vox.sets, 8)
        t3 = time.perf_counter()
        predict.append(t1 - t0)
        voxels.append(t2 - t1)
        greedy.append(t3 - t2)
    buf = buffer_of(cands)
    sel = select_frames(buf, buf.snapshot(), 8, "coverage", engine, n_candidates)
    h, w = geoms[0].confidence.shape
    p = statistics.median(predict)
    print(
        f"predict_geometry: {n_candidates} candidate frames 640x480 -> {w}x{h} "
        f"(max_pixels {CPU_TINY_MAX_PIXELS}, {CPU_TINY_THREADS} thread), tiny v1.1, "
        f"{runs} runs (median): {p:.2f} s = {p / n_candidates * 1e3:.0f} ms/frame"
    )
    print(
        f"  then confidence filter + voxel sets ({sum(s.size for s in vox.sets)} keys, edge "
        f"{vox.voxel_size:.3f}): {statistics.median(voxels) * 1e3:.0f} ms; greedy k=8: "
        f"{statistics.median(greedy) * 1e3:.1f} ms "
        f"({sel.strategy}: coverage {sel.coverage:.3f} vs uniform {sel.uniform_coverage:.3f})"
    )


def bench_coverage(engine: SpatialMLLMEngine, frames: list[Frame], source: str) -> None:
    from spatial_mllm_ros.answering.monocular import select_frames
    from spatial_mllm_ros.core.geometry import backproject_depth, paper_voxel_size, voxel_keys
    from spatial_mllm_ros.sampling import max_coverage
    from spatial_mllm_ros.sampling.strategies import uniform_indices, union_size

    buf = buffer_of(colour_only(frames))
    snap = buf.snapshot()
    n = len(snap)
    sensor = None
    pts = [
        backproject_depth(f.depth_m, f.intrinsics, f.pose, stride=4)
        for f in frames
        if f.depth_m is not None and f.intrinsics is not None and f.pose is not None
    ]
    if len(pts) == n:
        edge = paper_voxel_size(np.concatenate(pts))
        sensor = [voxel_keys(p, edge) for p in pts]
        total = union_size(sensor, range(n))
        print(f"coverage on {n} {source} frames (sensor voxels: paper edge {edge * 100:.1f} cm):")
    else:
        print(f"coverage on {n} {source} frames (no sensor geometry):")

    def sensor_cov(ids: list[int] | tuple[int, ...]) -> float:
        assert sensor is not None
        return union_size(sensor, ids) / total

    for k in (4, 8):
        sel = select_frames(buf, snap, k, "coverage", engine, 32)
        line = (
            f"  k={k}: predicted voxels: coverage {sel.coverage:.3f} vs uniform "
            f"{sel.uniform_coverage:.3f} ({sel.coverage / max(sel.uniform_coverage, 1e-9):.2f}x)"
        )
        if sensor is not None:
            uni = uniform_indices(n, k)
            oracle = max_coverage(sensor, k)
            line += (
                f"; on sensor voxels: picks {sensor_cov(sel.indices):.3f}, "
                f"uniform {sensor_cov(uni):.3f}, sensor-greedy {sensor_cov(oracle):.3f}"
            )
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one timed run")
    args = parser.parse_args()
    import torch

    from spatial_mllm_ros.model.engine import SpatialMLLMEngine
    from spatial_mllm_ros.model.tiny import write_checkpoint

    torch.set_num_threads(CPU_TINY_THREADS)
    frames, source = load_frames()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_checkpoint(Path(tmp) / "tiny", "v1.1")
        engine = SpatialMLLMEngine.from_pretrained(ckpt, max_pixels=CPU_TINY_MAX_PIXELS)
        bench_prediction(engine, frames, runs=1 if args.quick else 3, n_candidates=32)
        bench_coverage(engine, frames, source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
