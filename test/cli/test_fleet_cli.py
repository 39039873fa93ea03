"""One model server, three robots (README "Fleet"), as processes: ``spatial_mllm_node`` in
``/robot1``..``/robot3`` with ``model.endpoint``, each fed its own camera stream
(``rgbd_stream_publisher`` with the shelf frames on its own topics), asked with
``spatial-mllm-ask``; ``spatial-mllm-serve`` started after the nodes.

What it shows: a node whose server is absent answers MODEL_ERROR with the cause, and the
same node (not restarted, its buffer kept) answers OK once the server is up; the three robots
asking at once are each answered OK, and the server saw each by its own name; a replica that
dies at a question's first token fails that question (MODEL_ERROR) and the robot's next one
is OK; a cancel on the node's action (Ctrl-C of ``spatial-mllm-ask --stream``) stops the
generation on the server within one token.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.cli import CommandResult, run_command, signal_group, start_command
from testkit.serve import START_S, ServeProcess, start_serve

PORT = 8002
URL = f"http://127.0.0.1:{PORT}"
TOKEN = "fleet-test-token"
ROBOTS = ("robot1", "robot2", "robot3")


def _node_argv(robot: str) -> list[str]:
    """The README's robot line with the cpu_tiny profile, this machine's server, and the
    robot's own camera topics (relative: in its namespace)."""
    return ["spatial_mllm_node", "--ros-args", "--params-file", "config/cpu_tiny.yaml",
            "-r", f"__ns:=/{robot}", "-p", f"model.endpoint:={URL}",
            "-p", "topics.colour:=camera/color/image_raw",
            "-p", "topics.depth:=camera/depth/image_raw",
            "-p", "topics.camera_info:=camera/color/camera_info",
            "-p", "model.max_pixels:=15680", "-p", "answer.max_new_tokens:=64",
            "-p", "answer.grounding:=false"]


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        signal_group(proc)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            signal_group(proc, 9)
            proc.wait(10)


@pytest.fixture
def nodes() -> Iterator[dict[str, subprocess.Popen[str]]]:
    env = {"SPATIAL_MLLM_TOKEN": TOKEN}
    procs = {robot: start_command(_node_argv(robot), env=env) for robot in ROBOTS}
    yield procs
    for proc in procs.values():
        _stop(proc)


def _active(pid: int) -> Callable[[dict[str, str]], bool]:
    """Whether an ingest status is the active node of ``pid``'s."""
    return lambda v: v.get("pid") == str(pid) and v.get("state") == "active"


def _wait_active(procs: dict[str, subprocess.Popen[str]]) -> None:
    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor

    with IngestMonitor(f"fleet_monitor_{os.getpid()}") as mon:
        for robot, proc in procs.items():
            end = time.monotonic() + START_S
            while True:
                try:
                    mon.wait_for(_active(proc.pid), timeout_s=2.0)
                    break
                except TimeoutError as err:
                    if proc.poll() is not None or time.monotonic() > end:
                        out = proc.communicate(timeout=10) if proc.poll() is not None \
                            else ("", "")
                        raise AssertionError(f"{robot} (exit {proc.poll()}) never became "
                                             f"active: {err}\n{out[0][-3000:]}\n"
                                             f"{out[1][-3000:]}") from err


def _stream(robot: str, shelf: Path) -> None:
    res = run_command(
        ["rgbd_stream_publisher", "--source", "folder", "--folder", str(shelf), "--rate", "10",
         "--count", "15", "--reliability", "reliable",
         "--colour-topic", f"/{robot}/camera/color/image_raw",
         "--depth-topic", f"/{robot}/camera/depth/image_raw",
         "--camera-info-topic", f"/{robot}/camera/color/camera_info",
         "--pose-topic", f"/{robot}/spatial_mllm/camera_pose",
         "--wait-for-node", f"/{robot}/spatial_mllm"], timeout=180)
    assert res.returncode == 0, res.describe()
    assert json.loads(res.stdout.strip().splitlines()[-1])["subscribers_matched"], res.describe()


def _ask(robot: str) -> CommandResult:
    return run_command(["spatial-mllm-ask", "How many boxes are there?", "--node",
                        f"/{robot}/spatial_mllm", "--json"], timeout=300)


def _status(res: CommandResult) -> dict[str, Any]:
    answer: dict[str, Any] = res.json()
    return answer


def _start_server(hooks: Path) -> ServeProcess:
    return start_serve(["spatial-mllm-serve", "--config", "cpu_tiny", "-p",
                        "model.max_pixels:=15680", "--port", str(PORT)], PORT, TOKEN,
                       env={"SPATIAL_MLLM_SERVE_EXIT_FILE": str(hooks / "exit"),
                            "SPATIAL_MLLM_SERVE_HOLD_FILE": str(hooks / "hold")})


def _cancel_reaches_the_server(server: ServeProcess, robot: str, hold: Path) -> None:
    """``spatial-mllm-ask --stream`` and Ctrl-C at the first token (the replica held there):
    the answer is CANCELED and the replica generated at most one token past it, of 64."""
    reported = server.health()["totals"].get("answers", 0)
    hold.touch()
    ask = start_command(["spatial-mllm-ask", "How many boxes are there?", "--node",
                         f"/{robot}/spatial_mllm", "--stream", "--json"])
    shown: list[str] = []
    first_token = threading.Event()

    def read() -> None:
        assert ask.stderr is not None
        while char := ask.stderr.read(1):
            shown.append(char)
            if "[decode]" in "".join(shown[-16:]):
                first_token.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert first_token.wait(START_S), "".join(shown)
        signal_group(ask)  # Ctrl-C: the action's cancel
        out, _ = ask.communicate(timeout=120)
    finally:
        hold.unlink(missing_ok=True)
    assert json.loads(out)["status"] == "CANCELED", out
    end = time.monotonic() + START_S
    while server.health()["totals"].get("answers", 0) < reported + 1 and time.monotonic() < end:
        time.sleep(0.1)
    outcome = [o for o in server.health()["recent"] if o["client"] == f"/{robot}/spatial_mllm"][-1]
    assert outcome["stopped"] is True and 1 <= outcome["tokens"] <= 2, outcome


def test_three_robots_one_server(nodes: dict[str, subprocess.Popen[str]], shelf: Path,
                                 tmp_path: Path) -> None:
    _wait_active(nodes)
    for robot in ROBOTS:
        _stream(robot, shelf)

    absent = _status(_ask("robot1"))  # the server is not there yet
    assert absent["status"] == "MODEL_ERROR", absent
    assert "unreachable" in absent["error"] and "Connection refused" in absent["error"], absent

    server = _start_server(tmp_path)
    try:
        results: dict[str, CommandResult] = {}
        threads = [threading.Thread(target=lambda r=robot: results.__setitem__(r, _ask(r)))
                   for robot in ROBOTS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for robot in ROBOTS:
            answer = _status(results[robot])
            assert answer["status"] == "OK", (robot, results[robot].describe())
            assert len(answer["frame_stamps_ns"]) == 8, answer  # cpu_tiny's budget, its buffer
        clients = {o["client"] for o in server.health()["recent"]}
        assert {f"/{r}/spatial_mllm" for r in ROBOTS} <= clients, clients

        (tmp_path / "exit").touch()  # the replica dies at robot2's next first token
        lost = _status(_ask("robot2"))
        assert not (tmp_path / "exit").exists()
        assert lost["status"] == "MODEL_ERROR", lost
        assert "model replica was lost during the answer" in lost["error"], lost
        again = _status(_ask("robot2"))
        assert again["status"] == "OK", again
        _cancel_reaches_the_server(server, "robot3", tmp_path / "hold")
        assert all(proc.poll() is None for proc in nodes.values()), "a node went down"
    finally:
        code = server.stop()
    assert code == 0, server.output()
