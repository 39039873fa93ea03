"""Online selection from the buffer vs the paper's offline selection (issue 11, point 7).

Per synthetic walkthrough of 1000 frames (80x60 depth at stride 1: the same 80x60 point grid
as 640x480 at the node's default stride 8), every frame is streamed through a
``SpatialFrameBuffer`` with the ``cpu_tiny`` profile's buffer settings (stride 1 instead of 8,
for the small images), then ``select(16, "coverage")`` -- the online pick.  The offline pick is
the paper's: greedy max coverage over 128 frames pre-sampled uniformly from the whole stream
(``np.linspace(0, N - 1, 128, dtype=int)``).  Both use the buffer's voxelization (0.1 m edge,
10 m depth cut) and are measured on the union of ALL frames' voxels:
coverage = |union of the picked frames' voxels| / |union of all frames' voxels|.

Run from the repo root: ``python benchmarks/bench_online_offline.py [--quick]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402

from spatial_mllm_ros.sampling.offline import compare_online_offline  # noqa: E402
from spatial_mllm_ros.settings import Settings  # noqa: E402
from spatial_mllm_ros.synthetic import make_walkthrough  # noqa: E402

K = 16
N_FRAMES = 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer walkthroughs")
    args = ap.parse_args()
    walks = [(0, 1.0), (1, 1.0), (2, 1.0), (0, 2.0)]
    if not args.quick:
        walks += [(3, 1.0), (4, 1.0), (5, 1.0), (6, 1.0), (1, 2.0), (5, 2.0), (3, 3.0)]
    cfg = replace(Settings.from_profile("cpu_tiny").buffer, depth_stride=1)
    print(
        f"online K={K} pick from a SpatialFrameBuffer (max_frames {cfg.max_frames}, "
        f"min_new_voxels {cfg.min_new_voxels}, voxel {cfg.voxel_size_m} m) vs offline greedy "
        f"over 128 uniform frames, on {N_FRAMES}-frame walkthroughs (80x60, stride 1); "
        "coverage of the union of all frames:"
    )
    print(
        "  seed laps  room m     stream vox  admitted held  held cov | offline  online  "
        "online/offline  add ms median/p95"
    )
    ratios = []
    for seed, laps in walks:
        t0 = time.perf_counter()
        scene = make_walkthrough(seed, n_frames=N_FRAMES, fps=5.0, width=80, height=60, laps=laps)
        t_render = time.perf_counter() - t0
        r = compare_online_offline(scene.frames, cfg, k=K)
        ratio = r.online_coverage / r.offline_coverage
        ratios.append(ratio)
        room = scene.layout.room
        add_ms = np.asarray(r.add_seconds) * 1e3
        print(
            f"  {seed:4d} {laps:4.1f}  {room.width_m:4.1f}x{room.length_m:<4.1f} "
            f"{r.stream_voxels:10d}  {r.admitted:8d} {r.held:4d}  {r.held_coverage:8.3f} | "
            f"{r.offline_coverage:7.4f} {r.online_coverage:7.4f}  {ratio:14.4f}  "
            f"{np.median(add_ms):6.2f} / {np.percentile(add_ms, 95):5.2f}"
            f"   (render {t_render:.1f} s)"
        )
    worst = min(ratios)
    print(
        f"  online >= offline on {sum(x >= 1.0 for x in ratios)}/{len(ratios)} walkthroughs; "
        f"online/offline ratio min {worst:.4f}, mean {np.mean(ratios):.4f}"
    )


if __name__ == "__main__":
    main()
