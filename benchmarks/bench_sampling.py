"""Benchmarks of space-aware frame sampling (issue 3).

(a) max_coverage vs the plain set-based greedy: 128 frames x ~20k voxels, K=16 (equal results?)
(b) SpatialFrameBuffer.add cost per frame at 640x480 depth, default stride (median ms, 1 core),
    while the buffer fills and once it is full (every add then evicts or competes)
(c) synthetic walkthroughs: coverage of K=16 coverage-selected frames vs uniform, per scene
(d) buffer bytes on a long stream (10,000 frames; re-used renders with moving poses)

Run from the repo root: ``python benchmarks/bench_sampling.py [--quick]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402

from spatial_mllm_ros.core.geometry import frame_voxel_keys  # noqa: E402
from spatial_mllm_ros.sampling import BufferConfig, SpatialFrameBuffer, max_coverage  # noqa: E402
from spatial_mllm_ros.sampling.coverage import (  # noqa: E402
    coverage_fraction,
    greedy_on_python_sets,
    greedy_set_cover_reference,
)
from spatial_mllm_ros.sampling.strategies import uniform_indices  # noqa: E402
from spatial_mllm_ros.synthetic import make_walkthrough  # noqa: E402


def bench_max_coverage(n_frames: int, n_voxels: int, k: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    # frames along a path: each sees ~n_voxels keys of a window that slides through the scene
    window = 3 * n_voxels
    step = window // 12
    sets = [
        np.unique(rng.integers(i * step, i * step + window, size=int(n_voxels * 1.2)))
        for i in range(n_frames)
    ]
    mean_size = np.mean([s.size for s in sets])
    t0 = time.perf_counter()
    ref = greedy_set_cover_reference(sets, k)  # includes building the Python sets
    t_ref = time.perf_counter() - t0
    py_sets = [set(s.tolist()) for s in sets]
    t0 = time.perf_counter()
    greedy_on_python_sets(py_sets, k)  # set-based greedy on pre-built sets (no conversion)
    t_ref_sets = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        got = max_coverage(sets, k)
        times.append(time.perf_counter() - t0)
    t_fast = float(np.median(times))
    assert got == ref, "max_coverage differs from the set-based greedy"
    print(f"(a) {n_frames} frames x {mean_size:.0f} voxels, K={k}: results equal: {got == ref}")
    print(
        f"    set-based greedy (from arrays): {t_ref * 1e3:.1f} ms; "
        f"on pre-built sets: {t_ref_sets * 1e3:.1f} ms; max_coverage: {t_fast * 1e3:.2f} ms"
    )
    print(
        f"    max_coverage: {t_ref / t_fast:.1f}x faster than set-based greedy "
        f"({t_ref_sets / t_fast:.1f}x vs pre-built sets)"
    )


def bench_add_cost(n_render: int, n_adds: int) -> None:
    """Median/p95 of ``add`` over the first ``n_adds`` adds, then over ``n_adds`` adds once the
    buffer is full (every add then evicts or competes; the coverage shares are computed)."""
    scene = make_walkthrough(21, n_frames=n_render, fps=5.0, width=640, height=480)
    buf = SpatialFrameBuffer(BufferConfig())
    cfg = buf.config
    times: list[float] = []
    full_times: list[float] = []
    t_keys = []
    i = 0
    while len(full_times) < n_adds and i < 20 * n_adds + cfg.max_frames:
        f = scene.frames[i % n_render]
        pose = f.pose.copy()
        pose[:3, 3] += np.array([0.013 * (i // n_render), 0.0, 0.0])
        g = replace(f, stamp_ns=i * 10**8, pose=pose, seq=i)
        full = len(buf) >= cfg.max_frames
        t0 = time.perf_counter()
        buf.add(g)
        dt = time.perf_counter() - t0
        if i < n_adds:
            times.append(dt)
            t0 = time.perf_counter()
            frame_voxel_keys(g, cfg.voxel_size_m, cfg.depth_stride, cfg.max_depth_m)
            t_keys.append(time.perf_counter() - t0)
        if full:
            full_times.append(dt)
        i += 1
    print(
        f"(b) SpatialFrameBuffer.add at 640x480, stride {cfg.depth_stride}, voxel "
        f"{cfg.voxel_size_m} m: median {np.median(times) * 1e3:.3f} ms, p95 "
        f"{np.percentile(times, 95) * 1e3:.3f} ms over the first {n_adds} adds "
        f"(voxelization alone {np.median(t_keys) * 1e3:.3f} ms)"
    )
    if full_times:
        print(
            f"    on the full buffer ({cfg.max_frames} frames, {buf.union_voxels} voxels): "
            f"median {np.median(full_times) * 1e3:.3f} ms, p95 "
            f"{np.percentile(full_times, 95) * 1e3:.3f} ms over {len(full_times)} adds"
        )


def bench_walkthroughs(seeds: list[int], n_frames: int, k: int) -> None:
    print(f"(c) coverage of K={k} frames on a {n_frames}-frame buffer (320x240, stride 4, 0.1 m):")
    for seed in seeds:
        scene = make_walkthrough(seed, n_frames=n_frames, fps=5.0, width=320, height=240)
        buf = SpatialFrameBuffer(BufferConfig(depth_stride=4, min_new_voxels=0))
        for f in scene.frames:
            buf.add(f)
        sel = buf.select(k)
        snap = buf.snapshot()
        raw = coverage_fraction(
            [s for s in snap.voxel_sets if s is not None],
            max_coverage(snap.voxel_sets, k),  # type: ignore[arg-type]
        )
        uni = coverage_fraction(snap.voxel_sets, uniform_indices(len(snap), k))  # type: ignore[arg-type]
        assert sel.coverage >= sel.uniform_coverage
        room = scene.layout.room
        print(
            f"    scene seed {seed} ({room.width_m:.1f}x{room.length_m:.1f} m, "
            f"{len(scene.layout.objects)} objects, {len(snap)} frames): coverage "
            f"{sel.coverage:.3f} vs uniform {sel.uniform_coverage:.3f} "
            f"(+{(sel.coverage - sel.uniform_coverage) * 100:.1f} pts; raw greedy {raw:.3f}, "
            f"uniform {uni:.3f})"
        )


def bench_long_stream(n_frames: int, max_bytes: int) -> None:
    base = make_walkthrough(33, n_frames=8, fps=5.0, width=640, height=480).frames
    cfg = BufferConfig(max_bytes=max_bytes)
    buf = SpatialFrameBuffer(cfg)
    peak = 0
    admitted = 0
    t0 = time.perf_counter()
    for i in range(n_frames):
        f = base[i % len(base)]
        pose = f.pose.copy()
        pose[:3, 3] += np.array([0.05 * (i // len(base)), 0.02 * (i % 7), 0.0])
        admitted += buf.add(replace(f, stamp_ns=i * 10**8, pose=pose, seq=i)).admitted
        peak = max(peak, buf.nbytes)
        assert buf.nbytes <= cfg.max_bytes and len(buf) <= cfg.max_frames
    dt = time.perf_counter() - t0
    print(
        f"(d) {n_frames} frames (640x480): admitted {admitted}, peak {peak / 2**20:.1f} MiB "
        f"<= bound {max_bytes / 2**20:.0f} MiB: {peak <= max_bytes}; final {len(buf)} frames, "
        f"{buf.union_voxels} voxels; {dt / n_frames * 1e3:.2f} ms/frame incl. eviction"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short run")
    args = ap.parse_args()
    q = args.quick
    bench_max_coverage(128, 20_000, 16, repeats=3 if q else 7)
    bench_add_cost(n_render=4 if q else 12, n_adds=100 if q else 400)
    bench_walkthroughs([0, 1] if q else [0, 1, 2, 3, 4], n_frames=40 if q else 64, k=16)
    bench_long_stream(1_000 if q else 10_000, max_bytes=64 * 2**20)


if __name__ == "__main__":
    main()
