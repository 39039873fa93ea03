"""The console scripts as real processes: ``--help`` on every one of them (the ROS ones
without starting ROS), and SIGINT/SIGTERM ending ``spatial-mllm-ask`` (while it waits for the
service or for the answer), ``rgbd_stream_publisher --loop`` and ``spatial-mllm-replay
--loop`` at once, with exit status 128 + the signal number and no traceback."""

from __future__ import annotations

import configparser
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.paths import REPO

#: Longest a process may take to end after the signal: far below its own waits (600 s), so
#: a process that ignores the signal fails the test instead of ending by itself.
END_S = 20.0
#: Longest a process may take to start waiting (imports, rclpy, discovery on a busy machine).
START_S = 90.0

SIGNALS = [pytest.param(signal.SIGINT, 130, id="SIGINT"),
           pytest.param(signal.SIGTERM, 143, id="SIGTERM")]


def _console_scripts() -> list[tuple[str, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return [(n.strip(), target.strip()) for n, target in (ln.split("=", 1) for ln in lines)]


@pytest.mark.parametrize(("name", "target"), _console_scripts(),
                         ids=[n for n, _ in _console_scripts()])
def test_every_console_script_prints_its_usage(name: str, target: str) -> None:
    module, func = target.split(":")
    code = (f"import sys; sys.argv[0] = {name!r}; from {module} import {func}; "
            f"sys.exit({func}())")
    res = subprocess.run([sys.executable, "-c", code, "--help"], cwd=REPO, env=dict(os.environ),
                         capture_output=True, text=True, timeout=START_S)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: {name}"), res.stdout[:300]
    assert "Traceback" not in res.stderr


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def probe() -> Iterator[Any]:
    """This test's own rclpy node (spun in a thread): fake servers, subscribers, the graph.
    One per test: a callback that fails (e.g. a response to a client that is gone) ends the
    node's spin thread."""
    from spatial_mllm_ros.ros.client import BackgroundNode

    node = BackgroundNode(f"test_cli_probe_{os.getpid()}")
    yield node
    node.close()


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_until(proc: subprocess.Popen[str], ready: Callable[[], bool], what: str) -> None:
    """Wait for ``ready`` (polled), failing early when ``proc`` ends first."""
    event = threading.Event()
    for _ in range(int(START_S / 0.1)):
        if ready():
            return
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the process ended (status {proc.returncode}) before {what}:\n{err}")
        event.wait(0.1)
    proc.kill()
    pytest.fail(f"no {what} within {START_S} s")


def _signal_and_end(proc: subprocess.Popen[str], signum: int) -> tuple[str, str]:
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=END_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running {END_S} s after {signal.Signals(signum).name}:\n{err}")
    assert "Traceback" not in err, err
    return out, err


def _in_graph(probe: Any, node_name: str) -> Callable[[], bool]:
    return lambda: node_name in probe.node.get_node_names()


def _unique(kind: str) -> str:
    return f"/test_cli_{kind}_{os.getpid()}"


# --------------------------------------------------------------------------- ask
@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_ask_ends_at_once_while_waiting_for_the_service(probe: Any, signum: int,
                                                        code: int) -> None:
    proc = _start("spatial_mllm_ros.ros.ask_cli", "How many chairs?", "--wait", "600",
                  "--node", _unique(f"absent_{signum}"))
    _wait_until(proc, _in_graph(probe, f"spatial_mllm_ask_{proc.pid}"), "ask's node in the graph")
    _, err = _signal_and_end(proc, signum)
    assert proc.returncode == code
    assert f"interrupted by {signal.Signals(signum).name}; no question was sent" in err


def test_ask_ends_at_once_while_waiting_for_the_service_answer(probe: Any) -> None:
    from spatial_mllm_ros.srv import AskSpatial

    prefix = _unique("silent_service")
    received, release = threading.Event(), threading.Event()

    def never_in_time(_req: Any, response: Any) -> Any:
        received.set()
        release.wait(END_S + START_S)
        return response

    probe.node.create_service(AskSpatial, f"{prefix}/ask", never_in_time)
    try:
        proc = _start("spatial_mllm_ros.ros.ask_cli", "How many chairs?", "--wait", "600",
                      "--node", prefix)
        _wait_until(proc, received.is_set, "the question at the fake service")
        _, err = _signal_and_end(proc, signal.SIGINT)
    finally:
        release.set()
    assert proc.returncode == 130
    assert "interrupted by SIGINT; the question was sent" in err


def test_ask_ends_at_once_while_waiting_for_the_topic_answer(probe: Any) -> None:
    from spatial_mllm_ros.msg import SpatialQuestion

    from spatial_mllm_ros.ros.answer_server import QUESTION_QOS_DEPTH
    from spatial_mllm_ros.ros.qos import reliable_qos

    prefix = _unique("silent_topic")
    received = threading.Event()
    sub = probe.node.create_subscription(SpatialQuestion, f"{prefix}/question",
                                         lambda _m: received.set(),
                                         reliable_qos(QUESTION_QOS_DEPTH))
    try:
        proc = _start("spatial_mllm_ros.ros.ask_cli", "How many chairs?", "--wait", "600",
                      "--node", prefix, "--via", "topic", "--id", "7")
        _wait_until(proc, received.is_set, "the question on the topic")
        _, err = _signal_and_end(proc, signal.SIGTERM)
    finally:
        probe.node.destroy_subscription(sub)
    assert proc.returncode == 143
    assert "interrupted by SIGTERM; the question was sent" in err


# --------------------------------------------------------------------------- streams
def _first_image(probe: Any, topic: str) -> tuple[threading.Event, Any]:
    from sensor_msgs.msg import Image

    from spatial_mllm_ros.ros.qos import camera_qos

    seen = threading.Event()
    sub = probe.node.create_subscription(Image, topic, lambda _m: seen.set(),
                                         camera_qos("best_effort", 5))
    return seen, sub


@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_looping_stream_publisher_ends_with_its_summary(probe: Any, signum: int,
                                                        code: int) -> None:
    topic = _unique(f"colour_{signum}")
    seen, sub = _first_image(probe, topic)
    try:
        proc = _start("spatial_mllm_ros.ros.stream_publisher", "--loop", "--rate", "20",
                      "--width", "64", "--height", "48", "--wait-subscribers", "0",
                      "--colour-topic", topic, "--depth-topic", "", "--camera-info-topic", "",
                      "--pose-topic", "")
        _wait_until(proc, seen.is_set, f"an image on {topic}")
        out, err = _signal_and_end(proc, signum)
    finally:
        probe.node.destroy_subscription(sub)
    assert proc.returncode == code
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["interrupted"] == signal.Signals(signum).name
    assert summary["good_frames"] >= 1
    assert summary["published"]["colour"] == summary["good_frames"]
    assert f"stopped by {signal.Signals(signum).name}" in err


def _procedural_bag(path: Path, colour: str) -> None:
    from spatial_mllm_ros import params as P
    from spatial_mllm_ros.bags import topics_from_params, write_frames
    from spatial_mllm_ros.synthetic.procedural import procedural_frames

    topics = topics_from_params(P.defaults()).with_overrides(
        {"colour": colour, "depth": "", "camera_info": "", "pose": ""})
    write_frames(procedural_frames(8, 64, 48), path, topics)


@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_looping_replay_ends_with_its_count(probe: Any, tmp_path: Path, signum: int,
                                           code: int) -> None:
    topic = _unique(f"replay_{signum}")
    _procedural_bag(tmp_path / "bag", topic)
    seen, sub = _first_image(probe, topic)
    try:
        proc = _start("spatial_mllm_ros.ros.replay", str(tmp_path / "bag"), "--loop")
        _wait_until(proc, seen.is_set, f"an image on {topic}")
        _, err = _signal_and_end(proc, signum)
    finally:
        probe.node.destroy_subscription(sub)
    assert proc.returncode == code
    assert f"topics (stopped by {signal.Signals(signum).name})" in err
    assert "published 0 messages" not in err
