"""Several cameras while answering: does the node keep every camera's rate while a question is
answered?

    python benchmarks/bench_multi_camera.py [--quick] [--seconds S]

Real processes over DDS (needs the colcon build and ``source install/setup.bash``):

* the ``spatial_mllm`` node with ``config/multi_camera.yaml`` (three cameras front, left,
  right, each paired on its own into one buffer; ``model.num_threads`` 1, reliable QoS depth
  100, diagnostics every 0.2 s) on a private ROS_DOMAIN_ID;
* a warm-up stream (not measured), then phase A: ``rgbd_stream_publisher --rig
  front,left,right`` sends three 640x480 RGB-D streams (colour, depth, camera info, pose) at
  30 Hz each for ``--seconds`` (8; ``--quick`` 3); no questions;
* phase B: the same while a client keeps one question in flight through ``~/ask``.

Per camera, from the node's ``/diagnostics`` (``camera.<name>.*`` counters): colour messages
published / received, the colour ingest rate over the full diagnostics periods of the stream
(``bench_answering``'s rule), and rate while answering / rate alone. Target (issue 22): >= 0.95
per camera with one model thread, every published message received (reliable QoS).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_answering import (  # noqa: E402  (benchmarks/, this script's folder)
    DIAG_PERIOD_S,
    TARGET_RATIO,
    Asker,
    _n,
    _topic_rate,
    make_recorder,
)
from procstats import load_average  # noqa: E402

CAMERAS = ("front", "left", "right")
KINDS = ("colour", "depth", "camera_info", "pose")
RIG = ("--rig", ",".join(CAMERAS), "--source", "procedural", "--rate", "30",
       "--reliability", "reliable", "--qos-depth", "100")


def _drained(before: dict[str, str], summary: dict[str, Any]) -> Any:
    def pred(v: dict[str, str]) -> bool:
        return all(
            _n(v, f"camera.{c}.in.{k}.received") - _n(before, f"camera.{c}.in.{k}.received")
            >= s["published"].get(k, 0)
            for c, s in summary["cameras"].items() for k in KINDS)
    return pred


def run_phase(env: dict[str, str], mon: Any, seconds: float, ask: bool) -> dict[str, Any]:
    """One rig stream of ``seconds`` (with back-to-back questions when ``ask``): per camera
    (published, received, rate Hz), and the answers completed."""
    from spatial_mllm_ros.demo import run_stream

    before = mon.wait_for_update(10)
    mark = mon.mark()
    asker = Asker() if ask else None
    if asker is not None:
        asker.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(  # a question is being answered
                a.get("queue.busy") == "True" for _, _, a in mon.since(mark)):
            time.sleep(0.05)
    try:
        summary = run_stream(env, *RIG, "--count", str(round(30 * seconds)))
        try:
            after = mon.wait_for(_drained(before, summary), timeout_s=60)
        except TimeoutError:
            after = mon.wait_for_update(10)
    finally:
        if asker is not None:
            asker.stop()
    samples = mon.since(mark)
    out: dict[str, Any] = {"answers": len(asker.answers) if asker is not None else 0,
                           "errors": asker.errors if asker is not None else []}
    for cam in CAMERAS:
        key = f"camera.{cam}.in.colour.received"
        rate = _topic_rate(samples, key, _n(before, key), _n(after, key)).rate_hz
        out[cam] = (summary["cameras"][cam]["published"]["colour"],
                    _n(after, key) - _n(before, key), rate)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 s phases")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    a = p.parse_args()
    seconds = 3.0 if a.quick else a.seconds
    from spatial_mllm_ros.demo import ros_env, run_stream, start_node_with_profile, stop

    env = ros_env(216 + os.getpid() % 16)
    print(f"== three cameras while answering: node multi_camera (1 model thread), "
          f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}, {os.cpu_count()} CPUs, load average "
          f"{load_average()}", flush=True)
    overrides = {"qos.reliability": "reliable", "qos.depth": 100,
                 "diagnostics.period_s": DIAG_PERIOD_S}
    node = start_node_with_profile(env, str(REPO / "config" / "multi_camera.yaml"), overrides)
    try:
        with make_recorder(f"bench_multi_camera_monitor_{os.getpid()}") as mon:
            mon.wait_for(lambda v: v.get("state") == "active", 180)
            print("  warm-up: 2 s of the rig (not measured)", flush=True)
            before = mon.wait_for_update(10)
            warm = run_stream(env, *RIG, "--count", "60")
            mon.wait_for(_drained(before, warm), 60)
            print(f"  phase A: {seconds:g} s, three cameras, no questions", flush=True)
            alone = run_phase(env, mon, seconds, ask=False)
            print(f"  phase B: {seconds:g} s, three cameras, one question always in flight",
                  flush=True)
            busy = run_phase(env, mon, seconds, ask=True)
    finally:
        print(f"  node stopped (exit code {stop(node)})", flush=True)
    print(f"\n  {'camera':8s} {'A pub/recv':>11s} {'A Hz':>6s} {'B pub/recv':>11s} "
          f"{'B Hz':>6s} {'B/A':>6s}")
    ratios = []
    complete = True
    for cam in CAMERAS:
        (pa, ra, ha), (pb, rb, hb) = alone[cam], busy[cam]
        ratio = hb / ha if ha else 0.0
        ratios.append(ratio)
        complete &= pa == ra and pb == rb
        print(f"  {cam:8s} {pa:5d}/{ra:<5d} {ha:6.2f} {pb:5d}/{rb:<5d} {hb:6.2f} {ratio:6.3f}")
    print(f"  answers completed in phase B: {busy['answers']}"
          + (f"; errors {busy['errors']}" if busy["errors"] else ""))
    met = all(r >= TARGET_RATIO for r in ratios) and complete
    print(f"  target: colour rate while answering / alone >= {TARGET_RATIO} per camera, every "
          f"message received: {'MET' if met else 'NOT MET'} (load average {load_average()})")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
