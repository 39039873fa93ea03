"""The real processes of test/ros: the node under test and the stream publisher, and waits
that look at the node a test started, never at any node of the domain.

Importing this module needs neither rclpy nor the built interfaces: the waits take the
session's ``IngestMonitor`` (test/ros/conftest.py) as an argument.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from spatial_mllm_ros.params import NODE_NAME

__all__ = [
    "ANSWER_NODE_PARAMS",
    "DDS_PROFILE",
    "REPO",
    "FedNode",
    "NodeProcess",
    "claim_domain_id",
    "counter",
    "feed",
    "feed_node",
    "node_status",
    "run_publisher",
    "stamps_ns",
    "wait_node_state",
]

REPO = Path(__file__).resolve().parents[2]

#: The shipped Fast DDS profile (a shared-memory segment for 1-2 MB images); test/ros/conftest.py
#: sets it as FASTDDS_DEFAULT_PROFILES_FILE for the session, so that the node, the publisher
#: and the test's own clients (processes started with ``os.environ``) share the transport.
DDS_PROFILE = REPO / "config" / "fastdds_large_data.xml"

#: Node parameters for answering tests: the tiny model at a small input size so that an
#: answer takes about a second on a CPU.
ANSWER_NODE_PARAMS: dict[str, Any] = {
    "qos.reliability": "reliable",
    "qos.depth": 100,
    "diagnostics.period_s": 0.2,
    "model.max_pixels": 112 * 140,
    "sampling.frame_budget": 4,
    "answer.max_new_tokens": 4,
    "answer.grounding_max_new_tokens": 8,
}

#: The domain locks this process holds (open files: closing one releases its domain).
_CLAIMS: list[IO[str]] = []


def claim_domain_id(first: int = 1, last: int = 101, lock_dir: Path | None = None) -> int:
    """A ROS_DOMAIN_ID in ``first..last`` that no other test session on this machine holds.

    The claim is an exclusive ``flock`` on ``spatial_mllm_ros_test_domain_<id>.lock`` in the
    temporary directory, held until this process exits (the file is not inherited by the
    processes it starts).  The search starts at an id derived from the pid.  Two sessions
    that shared a domain would see each other's nodes: a publisher of one could start on
    the other's subscriber, before its own node was matched, and lose frames.
    """
    where = Path(tempfile.gettempdir()) if lock_dir is None else lock_dir
    span = last - first + 1
    start = os.getpid() % span
    for k in range(span):
        domain = first + (start + k) % span
        fh = (where / f"spatial_mllm_ros_test_domain_{domain}.lock").open("w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        _CLAIMS.append(fh)
        return domain
    raise RuntimeError(f"every ROS_DOMAIN_ID in {first}..{last} is held by another test session")


class NodeProcess:
    """The spatial_mllm node as a subprocess (``params``: ROS parameters; output in ``log``)."""

    def __init__(self, params: dict[str, Any], log: Path) -> None:
        args = [sys.executable, "-m", "spatial_mllm_ros.ros.node_main", "--ros-args"]
        for k, v in params.items():
            val = str(v).lower() if isinstance(v, bool) else str(v)
            args += ["-p", f"{k}:={val}"]
        self.log = log
        self._fh = log.open("w")
        self.proc = subprocess.Popen(args, stdout=self._fh, stderr=subprocess.STDOUT,
                                     cwd=REPO, env=dict(os.environ))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._fh.close()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def run_publisher(*args: str, timeout: float = 120.0, node: str = NODE_NAME,
                  expect_matched: bool = True) -> dict[str, Any]:
    """Run rgbd_stream_publisher to completion; return its JSON summary.

    The publisher starts only once every one of its topics is matched with a subscription of
    the node named ``node`` (``--wait-for-node``).  With ``expect_matched`` (the default) a
    publisher that gave up waiting fails the test: its first frames reached nobody.
    """
    cmd = [sys.executable, "-m", "spatial_mllm_ros.ros.stream_publisher",
           "--wait-for-node", node, *args]
    res = subprocess.run(cmd, cwd=REPO, env=dict(os.environ), capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, f"publisher failed:\n{res.stdout}\n{res.stderr}"
    summary: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    if expect_matched:
        assert summary["subscribers_matched"], f"node {node!r} never subscribed: {summary}"
    return summary


def node_status(monitor: Any, node: NodeProcess,
                predicate: Callable[[dict[str, str]], bool] = lambda _v: True,
                timeout: float = 30.0, fresh: bool = False) -> dict[str, str]:
    """The first ingest status of ``node`` (its pid) that satisfies ``predicate``; with
    ``fresh``, only a status published after this call.  AssertionError with the node's log
    on a timeout."""
    pid = str(node.pid)
    start = monitor.updates
    try:
        return monitor.wait_for(  # type: ignore[no-any-return]
            lambda v: v.get("pid") == pid and (not fresh or monitor.updates > start)
            and predicate(v), timeout)
    except TimeoutError as err:
        raise AssertionError(f"{err}\nnode alive={node.alive()} log:\n{node.output()}") from err


def wait_node_state(monitor: Any, node: NodeProcess, state: str, timeout: float = 30.0
                    ) -> dict[str, str]:
    """Wait until ``node`` itself reports lifecycle state ``state`` on /diagnostics."""
    return node_status(monitor, node, lambda v: v.get("state") == state, timeout)


@dataclass(frozen=True)
class FedNode:
    """A node process that is active and has emitted every frame a publisher sent it.

    Attributes:
        node: the node process.
        summary: the publisher's JSON summary (``good_frames``, ``good_stamps_ns``, ...).
        status: the node's first ingest status with every frame emitted.
    """

    node: NodeProcess
    summary: dict[str, Any]
    status: dict[str, str]


def feed(monitor: Any, node: NodeProcess, publisher_args: Sequence[str], count: int,
         min_emitted: int | None = None) -> FedNode:
    """Publish ``count`` frames with ``publisher_args`` to the active ``node`` and wait until
    it has emitted every one of them (exactly ``count``), or with ``min_emitted``, at least
    that many (a stream whose pairing may drop some)."""
    summary = run_publisher(*publisher_args, "--count", str(count))

    def ingested(values: dict[str, str]) -> bool:
        emitted = counter(values, "frames.emitted")
        return emitted == count if min_emitted is None else emitted >= min_emitted

    return FedNode(node, summary, node_status(monitor, node, ingested))


def feed_node(start_node: Callable[..., NodeProcess], monitor: Any, params: dict[str, Any],
              publisher_args: Sequence[str], count: int, timeout: float = 120.0,
              min_emitted: int | None = None) -> FedNode:
    """The start-up of a test that needs frames: start a node with ``params``, wait until it
    is active (``timeout`` s: it loads its model), then :func:`feed` it ``count`` frames."""
    node = start_node(params)
    wait_node_state(monitor, node, "active", timeout=timeout)
    return feed(monitor, node, publisher_args, count, min_emitted)


def counter(values: dict[str, str], key: str) -> int:
    """An ingest counter from a diagnostics values dict (absent = 0)."""
    return int(values.get(key, "0"))


def stamps_ns(msg: Any) -> list[int]:
    """The frame stamps of a SpatialAnswer message, in nanoseconds."""
    return [t.sec * 1_000_000_000 + t.nanosec for t in msg.frame_stamps]
