"""Real-process ROS 2 tests: the node and the publisher run as separate processes over DDS.

Every test run uses its own ROS_DOMAIN_ID (1..101, from the pid) and localhost-only
discovery, so concurrent runs do not cross-talk.  All of test/ros is skipped, with the
reason, when rclpy or the built interfaces (``spatial_mllm_ros.msg``) are not importable.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _missing() -> str | None:
    for mod in ("rclpy", "spatial_mllm_ros.msg", "sensor_msgs.msg", "diagnostic_msgs.msg"):
        try:
            importlib.import_module(mod)
        except ImportError as err:
            return (f"{mod} is not importable ({err}); build first: `make build` then "
                    "`source .venv/bin/activate && source install/setup.bash`")
    return None


SKIP_REASON = _missing()
DOMAIN_ID = 1 + os.getpid() % 101
os.environ["ROS_DOMAIN_ID"] = str(DOMAIN_ID)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SKIP_REASON is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


class NodeProcess:
    """The spatial_mllm node as a subprocess."""

    def __init__(self, params: dict[str, Any], log: Path) -> None:
        args = [sys.executable, "-m", "spatial_mllm_ros.ros.node", "--ros-args"]
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


@pytest.fixture(scope="session")
def monitor() -> Iterator[Any]:
    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor

    mon = IngestMonitor("test_ingest_monitor")
    yield mon
    mon.close()


@pytest.fixture
def start_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., NodeProcess]]:
    started: list[NodeProcess] = []

    def start(params: dict[str, Any] | None = None) -> NodeProcess:
        log = tmp_path_factory.mktemp("node") / "node.log"
        node = NodeProcess(params or {}, log)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


def run_publisher(*args: str, timeout: float = 120.0) -> dict[str, Any]:
    """Run rgbd_stream_publisher to completion; return its JSON summary."""
    cmd = [sys.executable, "-m", "spatial_mllm_ros.ros.stream_publisher", *args]
    res = subprocess.run(cmd, cwd=REPO, env=dict(os.environ), capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, f"publisher failed:\n{res.stdout}\n{res.stderr}"
    summary: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return summary


def wait_node_state(monitor: Any, node: NodeProcess, state: str, timeout: float = 30.0
                    ) -> dict[str, str]:
    try:
        return monitor.wait_for(  # type: ignore[no-any-return]
            lambda v: v.get("pid") == str(node.pid) and v.get("state") == state, timeout)
    except TimeoutError as err:
        raise AssertionError(f"{err}\nnode alive={node.alive()} log:\n{node.output()}") from err


@pytest.fixture
def answer_client(monitor: Any) -> Iterator[Any]:
    """An :class:`~spatial_mllm_ros.ros.client.AskClient` of the node under test."""
    from spatial_mllm_ros.ros.client import AskClient

    client = AskClient(f"test_answer_client_{os.getpid()}")
    yield client
    client.close()


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
