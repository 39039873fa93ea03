"""Real-process ROS 2 tests: the node and the publisher run as separate processes over DDS.

Every test session claims a ROS_DOMAIN_ID (1..101) that no other session on this machine
holds (``testkit.processes.claim_domain_id``) and discovers on localhost only, so concurrent
runs do not cross-talk.  Every process of the session (this one's clients, the node, the
publisher) runs with the shipped Fast DDS profile (``FASTDDS_DEFAULT_PROFILES_FILE``: the
project's transport for large images; a developer's own profile is not used here).  Each
test waits for the node it started (its pid on /diagnostics, its name in the ROS graph),
never for "a node".  All of test/ros is skipped, with the
reason, when rclpy or the built interfaces (``spatial_mllm_ros.msg``) are not importable.
The helpers the tests import live in ``testkit.processes``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from testkit.processes import DDS_PROFILE, FedNode, NodeProcess, claim_domain_id, feed_node


def _missing() -> str | None:
    for mod in ("rclpy", "spatial_mllm_ros.msg", "sensor_msgs.msg", "diagnostic_msgs.msg"):
        try:
            importlib.import_module(mod)
        except ImportError as err:
            return (f"{mod} is not importable ({err}); build first: `make build` then "
                    "`source .venv/bin/activate && source install/setup.bash`")
    return None


SKIP_REASON = _missing()
DOMAIN_ID = claim_domain_id()
os.environ["ROS_DOMAIN_ID"] = str(DOMAIN_ID)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(DDS_PROFILE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SKIP_REASON is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="session")
def monitor() -> Iterator[Any]:
    """The /diagnostics reader of this session (``IngestMonitor``)."""
    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor

    mon = IngestMonitor("test_ingest_monitor")
    yield mon
    mon.close()


@pytest.fixture
def start_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., NodeProcess]]:
    """Starts node processes (``start(params)``); stops every one at the end of the test."""
    started: list[NodeProcess] = []

    def start(params: dict[str, Any] | None = None) -> NodeProcess:
        log = tmp_path_factory.mktemp("node") / "node.log"
        node = NodeProcess(params or {}, log)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def fed_node(start_node: Callable[..., NodeProcess], monitor: Any) -> Callable[..., FedNode]:
    """``fed_node(params, publisher_args, count, min_emitted=None)``: a node started with
    ``params``, active, that has emitted every one of ``count`` published frames (or at least
    ``min_emitted``; :func:`testkit.processes.feed_node`); stopped at the end of the test."""

    def start(params: dict[str, Any], publisher_args: Sequence[str], count: int,
              min_emitted: int | None = None) -> FedNode:
        return feed_node(start_node, monitor, params, publisher_args, count,
                         min_emitted=min_emitted)

    return start


@pytest.fixture
def answer_client(monitor: Any) -> Iterator[Any]:
    """An :class:`~spatial_mllm_ros.ros.client.AskClient` of the node under test."""
    from testkit.answering import close_action_clients

    from spatial_mllm_ros.ros.client import AskClient

    client = AskClient(f"test_answer_client_{os.getpid()}")
    yield client
    close_action_clients(client.node)
    client.close()
