"""``python -m spatial_mllm_ros.demo`` (``make demo``): the node ingesting a live RGB-D stream.

Starts the node as a real process on its own ROS_DOMAIN_ID, runs the stream publisher as
another process (~3 s at 30 Hz, 640x480 colour + depth + camera info + pose, then a few
malformed messages of each kind), reads /diagnostics and prints what was ingested.  The
answering issue extends this with questions; the steps are small functions for that.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def ros_env(domain_id: int | None = None) -> dict[str, str]:
    """Environment for the demo's processes: a private ROS_DOMAIN_ID, localhost discovery."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else 102 + os.getpid() % 100)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    return env


def start_node(env: dict[str, str], params: dict[str, Any]) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "spatial_mllm_ros.ros.node", "--ros-args"]
    for k, v in params.items():
        args += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
    return subprocess.Popen(args, env=env, cwd=REPO)


def run_stream(env: dict[str, str], *args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "spatial_mllm_ros.ros.stream_publisher", *args]
    res = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"stream publisher failed:\n{res.stderr}")
    summary: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return summary


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def print_ingest(values: dict[str, str], summary: dict[str, Any]) -> None:
    """Human-readable ingest report from a diagnostics values dict."""
    def n(k: str) -> int:
        return int(values.get(k, "0"))

    print("\n=== ingested (from /diagnostics) ===")
    print(f"published by the stream process: {summary['published']}")
    for t in ("colour", "colour_compressed", "depth", "camera_info", "pose"):
        rec = n(f"in.{t}.received")
        if not rec:
            continue
        rej = {k.rsplit(".", 1)[1]: v for k, v in values.items()
               if k.startswith(f"in.{t}.rejected.")}
        print(f"  {t:18s} received {rec:4d}  accepted {n(f'in.{t}.accepted'):4d}  "
              f"rejected {rej or 0}")
    print(f"frames: {n('frames.emitted')} emitted, {n('frames.complete')} with depth+pose+"
          f"intrinsics, {n('frames.colour_only')} colour-only, "
          f"{n('pair.colour.dropped')} dropped by pairing")
    print(f"buffer: {n('buffer.frames')} frames, {n('buffer.bytes') / 2**20:.1f} MiB, "
          f"{n('buffer.evicted')} evicted; node callback errors: {n('callback_errors')}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--source", default="procedural", choices=("procedural", "synthetic", "folder"))
    p.add_argument("--folder", default="")
    a = p.parse_args(argv)
    env = ros_env()
    print(f"demo: ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}; starting the spatial_mllm node")
    node = start_node(env, {"qos.reliability": "reliable", "qos.depth": 50,
                            "diagnostics.period_s": 0.5, "image.max_pixels": 640 * 480})
    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor

    code = 0
    with IngestMonitor("demo_monitor") as mon:
        try:
            mon.wait_for(lambda v: v.get("state") == "active", timeout_s=60)
            count = int(a.seconds * a.rate)
            print(f"demo: streaming {count} RGB-D frames at {a.rate:g} Hz (640x480), then "
                  "malformed messages of each kind, then 10 good frames")
            stream_args = ["--rate", str(a.rate), "--count", str(count), "--reliability",
                           "reliable", "--qos-depth", "50", "--source", a.source,
                           "--inject", "wrong_step,unknown_encoding,empty_image,"
                           "oversized_image,nan_depth,negative_depth,missing_intrinsics,"
                           "stamp_backwards,bad_pose", "--inject-count", "2",
                           "--good-after", "10"]
            if a.folder:
                stream_args += ["--folder", a.folder]
            summary = run_stream(env, *stream_args)
            published = summary["published"]["colour"]
            t0 = time.monotonic()
            values = mon.wait_for(
                lambda v: int(v.get("in.colour.received", "0")) >= published
                and v.get("pair.colour.pending") == "0", timeout_s=30)
            print_ingest(values, summary)
            print(f"(drained {time.monotonic() - t0:.1f} s after the stream ended; "
                  f"node alive: {node.poll() is None})")
        except Exception as err:
            print(f"demo failed: {err}", file=sys.stderr)
            code = 1
        finally:
            rc = stop(node)
            print(f"demo: node stopped (exit code {rc})")
    return code


if __name__ == "__main__":
    sys.exit(main())
