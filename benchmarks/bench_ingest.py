"""Ingestion cost: conversion + pairing per 640x480 RGB-D frame, and a DDS run.

    python benchmarks/bench_ingest.py [--quick] [--no-dds] [--discovery-range SUBNET]

1. In-process, one core (sched_setaffinity), no DDS: ~300 frames of colour rgb8 + depth
   16UC1 + CameraInfo + PoseStamped messages (rclpy message objects when importable, else
   duck-typed stand-ins) through Ingestor.ingest into a store that keeps nothing (the node's
   space-aware buffer costs its own: bench_sampling.py, (b)); median and p95 ms per frame
   (target: < 2 ms median).  Also 32FC1 depth and bgr8 colour variants.
2. Real processes over DDS (needs the colcon build): the node (config/cpu_tiny.yaml) and the
   stream publisher at 30 Hz, 640x480 rgb8 + 16UC1: best effort with Fast DDS's default
   transports and with the shipped profile config/fastdds_large_data.xml (a 16 MiB
   shared-memory segment per process), reliable with the profile, and (not with --quick)
   1280x720 best effort with it; the fraction of the colour images the node received.
   A phase that fails is reported with the node's log and the next one runs (exit status 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "test"))  # testkit: the domain-id claim the tests use

from testkit.processes import DDS_PROFILE, claim_domain_id  # noqa: E402

from spatial_mllm_ros.core.encode import MessageEncoder, namespace_factory  # noqa: E402
from spatial_mllm_ros.core.frame import Frame  # noqa: E402
from spatial_mllm_ros.core.ingest import Ingestor  # noqa: E402
from spatial_mllm_ros.params import NODE_NAME  # noqa: E402
from spatial_mllm_ros.synthetic.procedural import procedural_frames  # noqa: E402

DDS_PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"


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

    def clear(self) -> None:
        """Nothing is kept, so nothing to clear."""


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


@dataclass(frozen=True)
class DdsPhase:
    """One real-process run: a stream of ``count`` frames at 30 Hz from the stream publisher
    to the node, with or without the shipped Fast DDS profile."""

    label: str
    reliability: str
    profile: Path | None  # FASTDDS_DEFAULT_PROFILES_FILE; None = Fast DDS's defaults
    width: int = 640
    height: int = 480


@dataclass(frozen=True)
class DdsResult:
    published: int  # colour images the publisher wrote
    received: int  # colour images the node's callback got
    complete: int  # frames the node paired with depth, pose and intrinsics

    @property
    def fraction(self) -> float:
        return self.received / max(self.published, 1)


def _node_status(mon: Any, node: subprocess.Popen[bytes], log: Path,
                 predicate: Callable[[dict[str, str]], bool], timeout_s: float,
                 fresh: bool = False) -> dict[str, str]:
    """The first ingest status of ``node`` (its pid) that satisfies ``predicate`` (with
    ``fresh``: published after this call); a RuntimeError with the node's log tail when the
    node exits or the wait times out."""
    pid, start = str(node.pid), mon.updates
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return dict(mon.wait_for(
                lambda v: v.get("pid") == pid and (not fresh or mon.updates > start)
                and predicate(v), min(2.0, max(deadline - time.monotonic(), 0.1))))
        except TimeoutError as err:
            text = log.read_text(errors="replace")
            failed = "configure failed" in text  # the node stays up, unconfigured, for good
            if node.poll() is not None or failed or time.monotonic() >= deadline:
                state = ("exited" if node.poll() is not None else "failed to configure"
                         if failed else f"no status in {timeout_s} s")
                tail = "\n".join(text.splitlines()[-15:])
                raise RuntimeError(f"node {state} ({err}); log tail:\n{tail}") from err


def _settled(mon: Any, node: subprocess.Popen[bytes], log: Path) -> dict[str, str]:
    """The node's status once its colour count stops growing (two consecutive statuses,
    0.5 s apart, with the same count): what it received after the publisher finished."""
    last = _node_status(mon, node, log, lambda _v: True, 30, fresh=True)
    for _ in range(60):
        now = _node_status(mon, node, log, lambda _v: True, 30, fresh=True)
        if now.get("in.colour.received") == last.get("in.colour.received"):
            return now
        last = now
    return last


def bench_dds(mon: Any, phase: DdsPhase, seconds: float, env: dict[str, str],
              log_dir: Path) -> DdsResult:
    """The node (profile config/cpu_tiny.yaml, QoS ``phase.reliability``) and the stream
    publisher, each a real process; colour received/published from the node's counters."""
    from spatial_mllm_ros.demo import run_stream, stop

    env = dict(env)
    if phase.profile is None:
        env.pop(DDS_PROFILE_ENV, None)
    else:
        env[DDS_PROFILE_ENV] = str(phase.profile)
    log = log_dir / f"node-{phase.label.replace(' ', '_')}.log"
    cmd = [sys.executable, "-m", "spatial_mllm_ros.ros.node_main", "--ros-args",
           "--params-file", str(REPO / "config" / "cpu_tiny.yaml"),
           "-p", f"qos.reliability:={phase.reliability}", "-p", "diagnostics.period_s:=0.5"]
    with log.open("wb") as fh:
        node = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
        try:
            before = _node_status(mon, node, log, lambda v: v.get("state") == "active", 240)
            summary = run_stream(env, "--rate", "30", "--count", str(int(30 * seconds)),
                                 "--width", str(phase.width), "--height", str(phase.height),
                                 "--reliability", phase.reliability,
                                 "--wait-for-node", NODE_NAME)
            if not summary.get("subscribers_matched", True):
                raise RuntimeError(f"the publisher never matched the node: {summary}")
            after = _settled(mon, node, log)
        finally:
            stop(node)

    def delta(key: str) -> int:
        return int(after.get(key, 0)) - int(before.get(key, 0))

    return DdsResult(int(summary["published"]["colour"]), delta("in.colour.received"),
                     delta("frames.complete"))


def dds_phases(quick: bool) -> list[DdsPhase]:
    """Best effort with and without the shipped profile, reliable with it; and 1280x720
    (2.8 MB colour + 1.8 MB depth per frame) best effort with it unless ``quick``."""
    phases = [DdsPhase("best_effort, Fast DDS defaults", "best_effort", None),
              DdsPhase("best_effort, shipped profile", "best_effort", DDS_PROFILE),
              DdsPhase("reliable, shipped profile", "reliable", DDS_PROFILE)]
    if not quick:
        phases.append(DdsPhase("best_effort, shipped profile", "best_effort", DDS_PROFILE,
                               1280, 720))
    return phases


def run_dds(quick: bool, discovery_range: str) -> bool:
    """Every DDS phase, each to its end (a failed phase is reported, the next one runs);
    False when one failed."""
    import tempfile

    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor

    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(claim_domain_id(202, 230))  # tests: 1..101, demo: 102..201
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = discovery_range
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    secs = 2.0 if quick else 5.0
    print(f"== real processes over DDS (node + stream publisher, 30 Hz, {secs:.0f} s each, "
          f"ROS_DOMAIN_ID {env['ROS_DOMAIN_ID']}, discovery {discovery_range}; shipped "
          f"profile = {DDS_PROFILE.relative_to(REPO)})")
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp, \
            IngestMonitor("bench_ingest_monitor") as mon:
        for phase in dds_phases(quick):
            name = f"{phase.width}x{phase.height} {phase.label}"
            try:
                r = bench_dds(mon, phase, secs, env, Path(tmp))
            except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as err:
                ok = False
                print(f"  {name:44s} FAILED: {err}")
                continue
            print(f"  {name:44s} received/published colour {r.received:4d}/{r.published:4d}"
                  f" = {r.fraction:.3f}; complete frames (depth+pose+K) {r.complete}")
    return ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-dds", action="store_true")
    p.add_argument("--discovery-range", default="LOCALHOST",
                   choices=("LOCALHOST", "SUBNET", "SYSTEM_DEFAULT"),
                   help="ROS_AUTOMATIC_DISCOVERY_RANGE of the DDS phases (LOCALHOST, as the "
                        "demo and the tests)")
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
    return 0 if run_dds(a.quick, a.discovery_range) else 1


if __name__ == "__main__":
    sys.exit(main())
