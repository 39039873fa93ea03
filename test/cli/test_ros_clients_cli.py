"""The ROS client commands as a user runs them: ``spatial-mllm-replay`` into a running
``spatial_mllm_node``, ``spatial-mllm-ask`` with no node and with Ctrl-C during ``--stream``,
the README's shell-ready line (the Fast DDS profile) and the demo's ROS_DOMAIN_ID.

The node is the README's ``spatial_mllm_node --ros-args --params-file config/cpu_tiny.yaml``
(plus small overrides where a test needs them), a process of this test; every wait looks at
that process (its pid on /diagnostics), never at "a node".
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.cli import (
    assert_clean,
    assert_refused,
    run_command,
    signal_group,
    start_command,
)
from testkit.paths import REPO
from testkit.processes import counter, node_status

from spatial_mllm_ros.exitcodes import ExitCode

#: The README's node command line.
NODE = ["spatial_mllm_node", "--ros-args", "--params-file", "config/cpu_tiny.yaml"]
#: The shelf recording's colour frames (and as many depth images, camera infos and poses).
SHELF_FRAMES = 15
#: Longest a command may take to end after Ctrl-C (it waits at most 5 s for the canceled
#: result); far below its own waits, so a command that ignores the signal fails the test.
END_S = 60.0


class CommandNode:
    """A node started from a command line (output in ``log``); what ``node_status`` needs."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        self._fh = log.open("w")
        self.proc = subprocess.Popen(argv, cwd=REPO, env=dict(os.environ), stdout=self._fh,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._fh.close()


@pytest.fixture(scope="module")
def monitor() -> Iterator[Any]:
    """The /diagnostics reader of these tests (rclpy in this process)."""
    pytest.importorskip("rclpy")
    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor

    mon = IngestMonitor(f"test_cli_monitor_{os.getpid()}")
    yield mon
    mon.close()


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[Callable[..., CommandNode]]:
    """``start(*overrides)``: the README's node with ``-p`` overrides; stopped at the end."""
    started: list[CommandNode] = []

    def start(*overrides: str) -> CommandNode:
        argv = list(NODE)
        for item in overrides:
            argv += ["-p", item]
        node = CommandNode(argv, tmp_path / f"node{len(started)}.log")
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture(scope="module")
def shelf_bag(shelf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's ``spatial-mllm-bag-from-rgbd ../shared/data/real_rgbd_shelf BAG``."""
    bag = tmp_path_factory.mktemp("bags") / "shelf_bag"
    assert_clean(run_command(["spatial-mllm-bag-from-rgbd", str(shelf), str(bag)]))
    return bag


def _active(monitor: Any, node: CommandNode) -> dict[str, str]:
    return node_status(monitor, node, lambda v: v.get("state") == "active", timeout=180)


# --------------------------------------------------------------------------- replay
def test_replay_delivers_every_frame_to_a_fresh_node(monitor: Any, start_node: Any,
                                                     shelf_bag: Path) -> None:
    """README: ``spatial-mllm-replay /tmp/shelf_bag --rate 1.0`` into a running node. The
    replay waits for the node's subscriptions (a fresh node got 0..15 of 15 frames when it
    did not) and says how many subscribers each topic matched."""
    node = start_node()
    _active(monitor, node)
    res = run_command(["spatial-mllm-replay", str(shelf_bag), "--rate", "1.0"], timeout=120)
    assert_clean(res)
    for topic in ("/camera/camera/color/image_raw", "/spatial_mllm/camera_pose"):
        assert re.search(rf"{re.escape(topic)}.*: 1 subscriber\b", res.stderr), res.describe()
    values = node_status(monitor, node, lambda v: counter(v, "in.colour.received")
                         >= SHELF_FRAMES and counter(v, "pair.colour.pending") == 0,
                         timeout=60, fresh=True)
    for kind in ("colour", "depth", "camera_info", "pose"):
        assert counter(values, f"in.{kind}.received") == SHELF_FRAMES, (kind, values)


def test_replay_with_no_node_says_so(shelf_bag: Path) -> None:
    res = run_command(["spatial-mllm-replay", str(shelf_bag), "--wait-subscribers", "1"],
                      timeout=120)
    assert_refused(res, ExitCode.NOT_OK, "no subscriber")
    assert "published 0 messages" in res.stderr, res.describe()


# --------------------------------------------------------------------------- stream publisher
@pytest.mark.parametrize(("args", "code", "says"), [
    (["--source", "folder"], ExitCode.USAGE, "needs --folder"),
    (["--inject", "bogus"], ExitCode.USAGE, "unknown --inject kind"),
    (["--source", "folder", "--folder", "/nonexistent/frames"], ExitCode.INPUT,
     "not a directory"),
], ids=["no-folder", "bad-inject", "missing-folder"])
def test_stream_publisher_refuses_with_its_exit_code(args: list[str], code: ExitCode,
                                                     says: str) -> None:
    assert_refused(run_command(["rgbd_stream_publisher", *args], timeout=120), code, says)


# --------------------------------------------------------------------------- ask
def test_ask_with_no_node_says_what_it_waits_for() -> None:
    res = run_command(["spatial-mllm-ask", "How many chairs are in this room?", "--wait", "2"],
                      timeout=120)
    assert_refused(res, ExitCode.NO_ANSWER, "/spatial_mllm/ask")
    domain = os.environ["ROS_DOMAIN_ID"]
    assert (f"waiting for /spatial_mllm/ask (node /spatial_mllm) on ROS_DOMAIN_ID={domain}"
            in res.stderr), res.describe()


class _Lines:
    """Collects a pipe's text in a thread; ``wait_for`` a substring of it."""

    def __init__(self, pipe: Any) -> None:
        self.text = ""
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: Any) -> None:
        while chunk := pipe.read(1):
            with self._cond:
                self.text += chunk
                self._cond.notify_all()
        with self._cond:
            self.text += "\0"  # end of stream
            self._cond.notify_all()

    def wait_for(self, needle: str, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: needle in self.text or "\0" in self.text,
                                       timeout) and needle in self.text

    def close(self) -> str:
        self._thread.join(timeout=END_S)
        return self.text.rstrip("\0")


def test_ctrl_c_during_a_streamed_answer_prints_the_canceled_answer(
        monitor: Any, start_node: Any, shelf_bag: Path) -> None:
    """Ctrl-C once the first token is shown: the goal is canceled and its CANCELED answer,
    with the text so far, is printed (--json), exit 130."""
    node = start_node("model.max_pixels:=15680", "answer.max_new_tokens:=4096",
                      "answer.grounding:=false", "diagnostics.period_s:=0.2")
    _active(monitor, node)
    assert_clean(run_command(["spatial-mllm-replay", str(shelf_bag), "--rate", "4"],
                             timeout=120))
    node_status(monitor, node, lambda v: counter(v, "frames.emitted") >= 1
                and counter(v, "pair.colour.pending") == 0, timeout=60)
    proc = start_command(["spatial-mllm-ask", "What is on the shelf?", "--type", "open",
                          "--stream", "--json", "--timeout", "600"])
    err, stdout = _Lines(proc.stderr), _Lines(proc.stdout)
    try:
        assert err.wait_for("[decode]", timeout=180), err.text
        signal_group(proc, signal.SIGINT)  # Ctrl-C in its terminal
        proc.wait(timeout=END_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr, out = err.close(), stdout.close()
    assert proc.returncode == ExitCode.INTERRUPTED, (proc.returncode, out, stderr)
    assert "no question was sent" not in stderr
    assert "Traceback" not in stderr
    import json

    answer = json.loads(out)
    assert answer["status"] == "CANCELED", answer
    assert "generated tokens" in answer["error"], answer
    assert stderr.strip().splitlines()[-1].startswith(
        "spatial-mllm-ask: interrupted by SIGINT; the question was canceled"), stderr


@pytest.fixture
def probe() -> Iterator[Any]:
    """This test's own rclpy node (spun in a thread), for fake servers."""
    pytest.importorskip("rclpy")
    from spatial_mllm_ros.ros.client import BackgroundNode

    node = BackgroundNode(f"test_cli_clients_probe_{os.getpid()}")
    yield node
    node.close()


#: A program that uses the library as the demo does (rclpy's own signal handlers) and exits
#: with the code of the signal that ended its wait.
LIBRARY_ASKER = """
import sys
from spatial_mllm_ros.ros.client import AskClient
from spatial_mllm_ros.ros.interrupts import Interrupted
try:
    with AskClient("test_library_asker", sys.argv[1]) as client:
        client.ask("How many chairs?", wait_s=600)
except Interrupted as sig:
    sys.exit(sig.exit_code)
"""


def test_sigterm_ends_the_librarys_wait_for_an_answer(probe: Any) -> None:
    """Issue 17.9: ``AskClient.ask`` waited out its whole wait after SIGTERM (rclpy's handler
    only shuts the context down); now the wait ends at once with the signal."""
    from spatial_mllm_ros.srv import AskSpatial

    prefix = f"/test_cli_silent_{os.getpid()}"
    received, release = threading.Event(), threading.Event()

    def never_in_time(_req: Any, response: Any) -> Any:
        received.set()
        release.wait(2 * END_S)
        return response

    probe.node.create_service(AskSpatial, f"{prefix}/ask", never_in_time)
    proc = start_command(["python", "-c", LIBRARY_ASKER, prefix])
    try:
        assert received.wait(120), "the question never reached the fake service"
        signal_group(proc, signal.SIGTERM)
        _, err = proc.communicate(timeout=END_S)  # before the fix: the whole 600 s
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == ExitCode.TERMINATED, err


def test_a_lost_stream_result_is_never_an_ok_answer() -> None:
    """rclpy keeps a goal's result 10 s; a later request gets STATUS_UNKNOWN with an empty
    answer whose status reads 0 (OK): that is an error, not an answer."""
    pytest.importorskip("rclpy")
    from action_msgs.msg import GoalStatus
    from spatial_mllm_ros.action import AskSpatialStream

    from spatial_mllm_ros.ros.client import ResultLostError, answer_of_result

    lost = AskSpatialStream.Impl.GetResultService.Response(
        status=GoalStatus.STATUS_UNKNOWN)
    assert lost.result.answer.status == 0  # what was read as OK
    with pytest.raises(ResultLostError, match="no longer holds"):
        answer_of_result(lost, "/spatial_mllm/ask_stream")
    aborted = AskSpatialStream.Impl.GetResultService.Response(
        status=GoalStatus.STATUS_ABORTED)
    with pytest.raises(ResultLostError):
        answer_of_result(aborted, "/spatial_mllm/ask_stream")
    done = AskSpatialStream.Impl.GetResultService.Response(
        status=GoalStatus.STATUS_CANCELED)
    done.result.answer.status = 6
    assert answer_of_result(done, "/spatial_mllm/ask_stream").status == 6


# --------------------------------------------------------------------------- environment
def test_the_shell_ready_line_sets_the_dds_profile() -> None:
    """README: ``source .venv/bin/activate && source install/setup.bash`` makes a shell
    ready, with the shipped Fast DDS profile unless the user chose one."""
    line = "source .venv/bin/activate && source install/setup.bash"
    env = {k: v for k, v in os.environ.items() if k != "FASTDDS_DEFAULT_PROFILES_FILE"}
    res = subprocess.run(["bash", "-c", f"{line} && echo $FASTDDS_DEFAULT_PROFILES_FILE"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    profile = Path(res.stdout.strip())
    assert profile.name == "fastdds_large_data.xml", res.stdout
    assert profile.resolve() == (REPO / "config" / "fastdds_large_data.xml").resolve()
    mine = {**env, "FASTDDS_DEFAULT_PROFILES_FILE": "/my/profile.xml"}
    res = subprocess.run(["bash", "-c", f"{line} && echo $FASTDDS_DEFAULT_PROFILES_FILE"],
                         cwd=REPO, env=mine, capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "/my/profile.xml", res.stdout + res.stderr


def test_the_demo_uses_the_users_ros_domain_id() -> None:
    from spatial_mllm_ros.demo import choose_domain_id

    mine = choose_domain_id({"ROS_DOMAIN_ID": "42"}, pid=7)
    assert (mine.domain_id, mine.yours) == (42, True)
    picked = choose_domain_id({}, pid=7)
    assert (picked.domain_id, picked.yours) == (109, False)
    assert choose_domain_id({"ROS_DOMAIN_ID": ""}, pid=7).domain_id == 109
    assert "yours" in mine.describe() and "ROS_DOMAIN_ID=42" in mine.describe()
    with pytest.raises(ValueError, match=r"not an integer in 0\.\.232"):
        choose_domain_id({"ROS_DOMAIN_ID": "robot1"}, pid=7)


def test_the_demo_says_which_domain_it_runs_on() -> None:
    """``make demo`` in a shell with a ROS_DOMAIN_ID (this session's): the demo's first line
    names it (the test stops the demo there, before it starts any process)."""
    domain = os.environ["ROS_DOMAIN_ID"]
    proc = start_command(["python", "-m", "spatial_mllm_ros.demo", "--views", "2"])
    try:
        first = proc.stdout.readline() if proc.stdout else ""
    finally:
        signal_group(proc, signal.SIGKILL)
        proc.communicate(timeout=END_S)
    assert f"ROS_DOMAIN_ID={domain} (yours" in first, first
