"""Bursts and oversized images: does every caller get exactly one answer, and does a rejected
huge image leave its memory behind?

    python benchmarks/bench_burst.py [--callers N] [--client-depth N] [--pairs N] [--side PX]
                                     [--skip-burst] [--skip-oversized]

Real processes over DDS (needs the colcon build and ``source install/setup.bash``): the
``spatial_mllm`` node (profile ``config/cpu_tiny.yaml``, reliable camera QoS depth 100, the
tiny model at a small input size) on a private ROS_DOMAIN_ID, after 30 frames of the stream
publisher.

* burst, per interface: ``--callers`` (20) callers in this process -- one node each, with its
  own service client, action client or question publisher -- send one question each at the
  same moment (one loop, no waits between them) on ``~/ask``, ``~/ask_stream`` and
  ``~/question``. The clients' response readers keep ``--client-depth`` responses (default
  1000, as the README asks of callers in a burst; 10 = rclpy's default, with which a client
  may drop its own response among the others' that rmw_fastrtps delivers to it). Printed:
  answers received / sent (must be 1.000: one answer per request, BUSY beyond the queue), the
  answers by status, and the time from the first request to the last answer.
* oversized: ``--pairs`` (7) pairs of an 8192x8192 rgb8 colour image and a 32FC1 depth image
  (reliable), each rejected by the node (``image.max_pixels``). Printed: the node's resident
  memory (``VmRSS``) before the first and after the last pair, and after each pair; the
  target is a difference within 50 MB.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from procstats import load_average, rss_mib  # noqa: E402  (benchmarks/, this folder)

NODE_OVERRIDES: dict[str, Any] = {
    "qos.reliability": "reliable", "qos.depth": 100, "diagnostics.period_s": 0.2,
    "model.max_pixels": 112 * 140, "sampling.frame_budget": 4,
    "answer.max_new_tokens": 4, "answer.grounding": False,
}
WAIT_S = 180.0
#: the oversized phase's target: node RSS after the pairs within this of before (MB)
RSS_TARGET_MB = 50.0
QUESTION = "How many chairs are in this room?"


@dataclass
class BurstResult:
    interface: str
    sent: int
    received: int
    statuses: Counter[str]
    last_answer_s: float

    def line(self) -> str:
        ratio = self.received / self.sent if self.sent else 0.0
        by_status = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        return (f"  {self.interface:<12} answers received/sent {self.received}/{self.sent} = "
                f"{ratio:.3f}; {by_status}; last answer {self.last_answer_s:.2f} s after the "
                "first request")


class Callers:
    """``n`` caller nodes spun by one executor thread of this process."""

    def __init__(self, n: int, client_depth: int) -> None:
        from rclpy.action import ActionClient
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node
        from spatial_mllm_ros.action import AskSpatialStream
        from spatial_mllm_ros.msg import SpatialAnswer, SpatialQuestion
        from spatial_mllm_ros.srv import AskSpatial

        from spatial_mllm_ros.ros.answer_server import QUESTION_QOS_DEPTH
        from spatial_mllm_ros.ros.qos import reliable_qos

        qos = reliable_qos(QUESTION_QOS_DEPTH)
        calls = reliable_qos(client_depth)
        self.nodes = [Node(f"bench_burst_caller_{os.getpid()}_{k}") for k in range(n)]
        self.clients = [nd.create_client(AskSpatial, "/spatial_mllm/ask", qos_profile=calls)
                        for nd in self.nodes]
        self.actions = [ActionClient(nd, AskSpatialStream, "/spatial_mllm/ask_stream",
                                     goal_service_qos_profile=calls,
                                     result_service_qos_profile=calls,
                                     cancel_service_qos_profile=calls)
                        for nd in self.nodes]
        self.question_pubs = [nd.create_publisher(SpatialQuestion, "/spatial_mllm/question",
                                                  qos) for nd in self.nodes]
        self.topic_answers: dict[int, list[tuple[float, Any]]] = {}
        self._lock = threading.Lock()
        self.nodes[0].create_subscription(SpatialAnswer, "/spatial_mllm/answer",
                                          self._on_answer, qos)
        self.executor = MultiThreadedExecutor(num_threads=4)
        for nd in self.nodes:
            self.executor.add_node(nd)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_answer(self, msg: Any) -> None:
        with self._lock:
            self.topic_answers.setdefault(int(msg.query_id), []).append(
                (time.monotonic(), msg))

    def wait_ready(self) -> None:
        for client, action, pub in zip(self.clients, self.actions, self.question_pubs,
                                       strict=True):
            assert client.wait_for_service(timeout_sec=60), "no ~/ask"
            assert action.wait_for_server(timeout_sec=60), "no ~/ask_stream"
            end = time.monotonic() + 60
            while pub.get_subscription_count() == 0 and time.monotonic() < end:
                time.sleep(0.05)

    def close(self) -> None:
        for action in self.actions:
            action.destroy()
        self.executor.shutdown(timeout_sec=2.0)
        for nd in self.nodes:
            nd.destroy_node()


def _wait_done(futures: list[Any], done_at: dict[int, float]) -> None:
    """Wait until every future is done (or WAIT_S), noting when each completed."""
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end and len(done_at) < len(futures):
        for k, f in enumerate(futures):
            if k not in done_at and f.done():
                done_at[k] = time.monotonic()
        time.sleep(0.005)


def _status_name(code: int) -> str:
    from spatial_mllm_ros.answering.types import AnswerStatus

    try:
        return AnswerStatus(code).name
    except ValueError:
        return f"status {code}"


def burst_service(c: Callers) -> BurstResult:
    from spatial_mllm_ros.srv import AskSpatial

    t0 = time.monotonic()
    futures = [cl.call_async(AskSpatial.Request(question=QUESTION)) for cl in c.clients]
    done_at: dict[int, float] = {}
    _wait_done(futures, done_at)
    statuses = Counter(_status_name(int(futures[k].result().answer.status)) for k in done_at)
    last = max(done_at.values(), default=t0) - t0
    return BurstResult("~/ask", len(futures), len(done_at), statuses, last)


def burst_action(c: Callers) -> BurstResult:
    from spatial_mllm_ros.action import AskSpatialStream

    t0 = time.monotonic()
    sent = [a.send_goal_async(AskSpatialStream.Goal(question=QUESTION)) for a in c.actions]
    acked: dict[int, float] = {}
    _wait_done(sent, acked)
    results = [sent[k].result().get_result_async() for k in sorted(acked)
               if sent[k].result().accepted]
    done_at: dict[int, float] = {}
    _wait_done(results, done_at)
    statuses = Counter(_status_name(int(results[k].result().result.answer.status))
                       for k in done_at)
    last = max(done_at.values(), default=t0) - t0
    return BurstResult("~/ask_stream", len(sent), len(done_at), statuses, last)


def burst_topic(c: Callers) -> BurstResult:
    from spatial_mllm_ros.msg import SpatialQuestion

    ids = [5_000_000 + k for k in range(len(c.question_pubs))]
    t0 = time.monotonic()
    for pub, qid in zip(c.question_pubs, ids, strict=True):
        pub.publish(SpatialQuestion(query_id=qid, question=QUESTION))
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        with c._lock:
            if all(i in c.topic_answers for i in ids):
                break
        time.sleep(0.01)
    time.sleep(1.0)  # a duplicate answer would show by now
    with c._lock:
        got = {i: c.topic_answers.get(i, []) for i in ids}
    received = sum(len(v) for v in got.values())
    statuses = Counter(_status_name(int(m.status)) for v in got.values() for _, m in v)
    last = max((t for v in got.values() for t, _ in v), default=t0) - t0
    return BurstResult("~/question", len(ids), received, statuses, last)


def run_bursts(n: int, client_depth: int) -> list[BurstResult]:
    callers = Callers(n, client_depth)
    try:
        callers.wait_ready()
        results = []
        for name, burst in (("service", burst_service), ("action", burst_action),
                            ("topic", burst_topic)):
            print(f"  burst: {n} simultaneous callers on the {name}", flush=True)
            results.append(burst(callers))
        return results
    finally:
        callers.close()


# --------------------------------------------------------------------------- oversized
def oversized_pairs(node_pid: int, mon: Any, pairs: int, side: int) -> list[float]:
    """Publish ``pairs`` rejected side x side rgb8 + 32FC1 pairs (reliable); the node's RSS
    (MiB) before the first and after each pair (once the node has counted its rejection)."""
    import numpy as np
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from spatial_mllm_ros.ros.conversions import ENCODER
    from spatial_mllm_ros.ros.matching import wait_subscribed
    from spatial_mllm_ros.ros.qos import reliable_qos

    node = Node(f"bench_burst_oversized_{os.getpid()}")
    colour = node.create_publisher(Image, "/camera/camera/color/image_raw", reliable_qos(1))
    depth = node.create_publisher(Image, "/camera/camera/aligned_depth_to_color/image_raw",
                                  reliable_qos(1))
    try:
        missing = wait_subscribed(node, [colour, depth], 60.0, "spatial_mllm")
        assert not missing, f"the node did not subscribe to {missing}"
        rgb = np.zeros((side, side, 3), np.uint8)
        metres = np.ones((side, side), np.float32)
        rss = [rss_mib(node_pid)]
        for k in range(pairs):
            stamp = time.time_ns()
            colour.publish(ENCODER.colour_image(rgb, stamp, "camera"))
            depth.publish(ENCODER.depth_image(metres, stamp, "camera", "32FC1"))
            mon.wait_for(lambda v, k=k: int(v.get("in.colour.rejected.oversized_image", 0))
                         >= k + 1 and int(v.get("in.depth.rejected.oversized_image", 0))
                         >= k + 1, timeout_s=WAIT_S)
            time.sleep(0.5)  # the node's callback has returned and released what it held
            rss.append(rss_mib(node_pid))
        return rss
    finally:
        node.destroy_node()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--callers", type=int, default=20, help="simultaneous callers per interface")
    p.add_argument("--client-depth", type=int, default=1000,
                   help="response depth of the callers' service and action clients")
    p.add_argument("--pairs", type=int, default=7, help="oversized colour + depth pairs")
    p.add_argument("--side", type=int, default=8192, help="side of the oversized images, px")
    p.add_argument("--skip-burst", action="store_true")
    p.add_argument("--skip-oversized", action="store_true")
    a = p.parse_args()
    try:
        import spatial_mllm_ros.srv  # noqa: F401
    except ImportError as err:
        print(f"bench_burst needs the colcon build: {err} (run `make build` and source "
              "install/setup.bash)")
        return 1
    from spatial_mllm_ros.demo import ros_env, run_stream, start_node_with_profile, stop
    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor

    env = ros_env(216 + os.getpid() % 16)
    print(f"== bursts and oversized images: node cpu_tiny, ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}"
          f", {os.cpu_count()} CPUs, load average {load_average()}", flush=True)
    node = start_node_with_profile(env, str(REPO / "config" / "cpu_tiny.yaml"), NODE_OVERRIDES)
    ok = True
    try:
        with IngestMonitor(f"bench_burst_monitor_{os.getpid()}") as mon:
            pid = str(node.pid)
            mon.wait_for(lambda v: v.get("pid") == pid and v.get("state") == "active", 180)
            queue = 4  # the profile's queue.size
            if not a.skip_burst:
                run_stream(env, "--rate", "30", "--count", "30", "--reliability", "reliable",
                           "--qos-depth", "100")
                mon.wait_for(lambda v: v.get("pid") == pid
                             and int(v.get("frames.emitted", 0)) >= 30, 60)
                print(f"  queue.size {queue}: {queue + 1} questions answered at a time, the "
                      "rest BUSY", flush=True)
                results = run_bursts(a.callers, a.client_depth)
                print("\n=== burst: every request gets exactly one answer (client response "
                      f"depth {a.client_depth}) ===")
                for r in results:
                    print(r.line())
                ok = ok and all(r.received == r.sent for r in results)
            if not a.skip_oversized:
                print(f"  oversized: {a.pairs} pairs of {a.side}x{a.side} rgb8 + 32FC1, "
                      "reliable", flush=True)
                rss = oversized_pairs(node.pid, mon, a.pairs, a.side)
                growth = rss[-1] - rss[0]
                print("\n=== oversized images: node RSS (MiB) ===")
                print("  " + " -> ".join(f"{x:.0f}" for x in rss))
                print(f"  before {rss[0]:.0f} MiB, after {a.pairs} pairs {rss[-1]:.0f} MiB: "
                      f"{growth:+.0f} MiB (target within {RSS_TARGET_MB:.0f} MB: "
                      f"{'met' if abs(growth) * 1.048576 <= RSS_TARGET_MB else 'NOT met'})")
                ok = ok and abs(growth) * 1.048576 <= RSS_TARGET_MB
    finally:
        print(f"  node stopped (exit code {stop(node)}); load average {load_average()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
