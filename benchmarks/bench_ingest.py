"""Ingestion cost: conversion + pairing per 640x480 RGB-D frame, and a DDS run.

    python benchmarks/bench_ingest.py [--quick] [--no-dds]

1. In-process, one core (sched_setaffinity), no DDS: ~300 frames of colour rgb8 + depth
   16UC1 + CameraInfo + PoseStamped messages (rclpy message objects when importable, else
   duck-typed stand-ins) through Ingestor.ingest into a store that keeps nothing (the node's
   space-aware buffer costs its own: bench_sampling.py, (b)); median and p95 ms per frame
   (target: < 2 ms median).  Also 32FC1 depth and bgr8 colour variants.
2. Real processes over DDS (needs the colcon build): the node and the stream publisher at
   30 Hz, default sensor-data QoS (best effort) and reliable; received/published ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from spatial_mllm_ros.core.encode import MessageEncoder, namespace_factory  # noqa: E402
from spatial_mllm_ros.core.frame import Frame  # noqa: E402
from spatial_mllm_ros.core.ingest import Ingestor  # noqa: E402
from spatial_mllm_ros.synthetic.procedural import procedural_frames  # noqa: E402


@dataclass(frozen=True)
class _Dropped:
    admitted: bool = False
    reason: str = "dropped"
    evicted_count: int = 0


class _KeepNothing:
    """A ``core.buffer.FrameStore`` that drops every frame: what is timed is the ingestor."""

    nbytes = 0

    def add(self, frame: Frame) -> _Dropped:
        return _Dropped()

    def __len__(self) -> int:
        return 0


def _messages(frames: list[Any], colour_enc: str, depth_enc: str) -> tuple[list[tuple], str]:
    """Per frame (colour, depth, camera info, pose) messages from the one encoder: rclpy
    messages when importable, else duck-typed namespace objects."""
    try:
        from spatial_mllm_ros.ros.conversions import ENCODER as enc

        kind = "rclpy messages"
    except ImportError:
        enc, kind = MessageEncoder(namespace_factory()), "duck-typed messages"
    out = []
    for i, f in enumerate(frames):
        t = (i + 1) * 33_333_333
        out.append((enc.colour_image(f.rgb, t, "cam", colour_enc),
                    enc.depth_image(f.depth_m, t, "cam", depth_enc),
                    enc.camera_info(f.intrinsics, t, "cam"),
                    enc.pose_stamped(f.pose, t, "map")))
    return out, kind


def bench_inprocess(n: int, colour_enc: str, depth_enc: str) -> tuple[str, list[float]]:
    views = procedural_frames(16)
    frames = [views[i % len(views)] for i in range(n)]
    msgs, kind = _messages(frames, colour_enc, depth_enc)
    ing = Ingestor(_KeepNothing())
    times = []
    for i, (col, dep, info, pose) in enumerate(msgs):
        now = (i + 1) * 33_333_333
        t0 = time.perf_counter_ns()
        ing.ingest("colour", col, now)
        ing.ingest("depth", dep, now)
        ing.ingest("camera_info", info, now)
        ing.ingest("pose", pose, now)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    c = ing.counters()
    assert c["frames.complete"] >= n - 1, c  # the last frame may still wait for a later pose
    return kind, times


def report(label: str, times: list[float]) -> float:
    med = statistics.median(times)
    p95 = float(np.percentile(times, 95))
    print(f"  {label:28s} median {med:6.3f} ms   p95 {p95:6.3f} ms   "
          f"({2.0 / med:4.1f}x under the 2 ms target)" if med < 2 else
          f"  {label:28s} median {med:6.3f} ms   p95 {p95:6.3f} ms   (OVER the 2 ms target)")
    return med


def bench_dds(seconds: float, reliability: str) -> None:
    import subprocess

    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(202 + os.getpid() % 30)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.update(env)
    from spatial_mllm_ros.demo import REPO, run_stream, start_node_with_profile, stop
    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor

    node = start_node_with_profile(env, str(REPO / "config" / "cpu_tiny.yaml"),
                                   {"qos.reliability": reliability,
                                    "diagnostics.period_s": 0.5})
    try:
        with IngestMonitor("bench_monitor") as mon:
            mon.wait_for(lambda v: v.get("state") == "active", 60)
            before = mon.wait_for_update(10)
            count = int(30 * seconds)
            summary = run_stream(env, "--rate", "30", "--count", str(count),
                                 "--reliability", reliability)
            time.sleep(1.0)
            after = mon.wait_for_update(10)
        pub = summary["published"]["colour"]
        rec = int(after.get("in.colour.received", 0)) - int(before.get("in.colour.received", 0))
        emitted = int(after.get("frames.emitted", 0)) - int(before.get("frames.emitted", 0))
        complete = int(after.get("frames.complete", 0)) - int(before.get("frames.complete", 0))
        print(f"  DDS 30 Hz 640x480, {reliability:11s}: received/published colour "
              f"{rec}/{pub} = {rec / max(pub, 1):.3f}; frames emitted {emitted}, "
              f"complete (depth+pose+K) {complete}")
    finally:
        stop(node)
    del subprocess


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-dds", action="store_true")
    a = p.parse_args()
    n = 60 if a.quick else 300
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"== in-process ingest, one core, {n} frames of 640x480 RGB-D")
    for colour_enc, depth_enc in (("rgb8", "16UC1"), ("bgr8", "16UC1"), ("rgb8", "32FC1")):
        kind, times = bench_inprocess(n, colour_enc, depth_enc)
        report(f"{colour_enc} + {depth_enc}", times)
    print(f"  (messages: {kind}; cost = convert + validate + pair, per frame)")
    if a.no_dds:
        return 0
    try:
        import spatial_mllm_ros.msg  # noqa: F401
    except ImportError as err:
        print(f"== DDS run skipped: {err} (run `make build` and source install/setup.bash)")
        return 0
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    print("== real processes over DDS (node + stream publisher)")
    secs = 2.0 if a.quick else 5.0
    bench_dds(secs, "best_effort")
    bench_dds(secs, "reliable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
