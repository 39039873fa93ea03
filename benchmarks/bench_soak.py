"""Memory soak: does the node's memory plateau within its buffer's byte bound?

    python benchmarks/bench_soak.py [--minutes 30] [--period-s 30] [--quick]

Real processes over DDS (needs the colcon build and ``source install/setup.bash``): the
``spatial_mllm`` node (profile ``cpu_tiny`` with ``buffer.max_bytes`` lowered, so that the
buffer fills within minutes; the model in its own process) and the stream publisher looping a
30 Hz 640x480 RGB-D walkthrough best effort with the shipped transport profile; every
``--ask-every-s`` a question is asked through ``~/ask``; once one 8192x8192 image (rejected
as oversized) is sent, to see that a rejected message does not leave its memory behind.

Every ``--period-s`` the resident set size (``VmRSS``) of the node process and of its model
process, the buffer's bytes and frames, and the frames received are recorded; printed: the
table, and the node's growth over the last half of the run against its buffer's bound plus
a stated overhead (the interpreter, rclpy, DDS, the pairing queues: ``pairing.queue_size``
frames at most).  The default (30 minutes) is what the issue asks for; ``--quick`` is 3 minutes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from procstats import children, rss_mib  # noqa: E402  (benchmarks/, this script's folder)

BUFFER_BYTES = 256 * 2**20


def send_huge_image(client: Any) -> None:
    """One 8192x8192 rgb8 image (192 MiB) on the colour topic: rejected as oversized; the node
    must not keep its memory."""
    from sensor_msgs.msg import Image

    from spatial_mllm_ros.ros.conversions import ENCODER
    from spatial_mllm_ros.ros.qos import reliable_qos

    pub = client.node.create_publisher(Image, "/camera/camera/color/image_raw", reliable_qos(1))
    time.sleep(2.0)
    pub.publish(ENCODER.colour_image(np.zeros((8192, 8192, 3), np.uint8), time.time_ns(),
                                     "camera_color_optical_frame"))
    time.sleep(5.0)
    client.node.destroy_publisher(pub)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--period-s", type=float, default=30.0)
    ap.add_argument("--ask-every-s", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="3 minutes, a sample every 15 s")
    args = ap.parse_args()
    if args.quick:
        args.minutes, args.period_s = 3.0, 15.0

    try:
        import spatial_mllm_ros.srv  # noqa: F401
    except ImportError as err:
        print(f"bench_soak needs the colcon build: {err} (run `make build` and source "
              "install/setup.bash)")
        return 1
    from spatial_mllm_ros.demo import ros_env
    from spatial_mllm_ros.ros.client import AskClient
    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor

    env = ros_env(200 + os.getpid() % 16)

    tmp = Path(tempfile.mkdtemp(prefix="soak_"))
    node = subprocess.Popen(
        [sys.executable, "-m", "spatial_mllm_ros.ros.node_main", "--ros-args", "--params-file",
         str(REPO / "config" / "cpu_tiny.yaml"), "-p", f"buffer.max_bytes:={BUFFER_BYTES}",
         "-p", "diagnostics.period_s:=1.0", "-p", "model.max_pixels:=15680"],
        cwd=REPO, env=env, stdout=(tmp / "node.log").open("w"), stderr=subprocess.STDOUT)
    os.environ.update(env)
    mon = IngestMonitor("soak_monitor")
    client = AskClient("soak_client")
    pub: subprocess.Popen[bytes] | None = None
    rows: list[tuple[float, float, float, int, int, int]] = []
    try:
        mon.wait_for(lambda v: v.get("pid") == str(node.pid) and v.get("state") == "active",
                     timeout_s=300)
        send_huge_image(client)
        pub = subprocess.Popen(
            [sys.executable, "-m", "spatial_mllm_ros.ros.stream_publisher", "--loop",
             "--rate", "30", "--wait-for-node", "spatial_mllm"],
            cwd=REPO, env=env, stdout=(tmp / "publisher.log").open("w"),
            stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        next_sample = next_ask = t0
        end = t0 + args.minutes * 60
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_ask:
                try:
                    client.ask("How many chairs are in this room?", wait_s=60)
                except Exception as err:  # a benchmark reports, it does not stop
                    print(f"question failed: {err}", file=sys.stderr)
                next_ask = now + args.ask_every_s
            if now >= next_sample:
                v = mon.latest or {}
                model = sum(rss_mib(c) for c in children(node.pid))
                rows.append((now - t0, rss_mib(node.pid), model, int(v.get("buffer.bytes", 0)),
                             int(v.get("buffer.frames", 0)), int(v.get("in.colour.received", 0))))
                r = rows[-1]
                print(f"{r[0]:7.0f} s  node {r[1]:7.1f} MiB  model {r[2]:7.1f} MiB  buffer "
                      f"{r[3] / 2**20:6.1f} MiB / {r[4]:4d} frames  colour received {r[5]}",
                      flush=True)
                next_sample = now + args.period_s
            time.sleep(0.2)
    finally:
        if pub is not None:
            pub.terminate()
            pub.wait(30)
        client.close()
        mon.close()
        node.terminate()
        node.wait(60)
    half = rows[len(rows) // 2:]
    growth = half[-1][1] - half[0][1] if len(half) > 1 else float("nan")
    bound = BUFFER_BYTES / 2**20
    peak = max(r[1] for r in rows)
    print(f"node RSS: first {rows[0][1]:.1f} MiB, peak {peak:.1f} MiB, last {rows[-1][1]:.1f} MiB;"
          f" growth over the last half {growth:+.1f} MiB; buffer bound {bound:.0f} MiB")
    print(f"peak - first = {peak - rows[0][1]:.1f} MiB = buffer bound x "
          f"{(peak - rows[0][1]) / bound:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
