"""``spatial_mllm_node`` as a user types it: bad parameters refused at start-up with one line
and exit 2 (``ExitCode.USAGE``), and Ctrl-C (SIGINT to the process group, the model process
included) ending it cleanly, with no traceback.

The refusals come before the model loads, so each of them ends within seconds; before the
start-up check (issue 16 point 7) the node either ran on (a typo, a bad choice: the test's
timeout) or died with an rclpy traceback (range, type, a missing ``--params-file``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit.cli import (
    CommandResult,
    assert_refused,
    noise,
    run_command,
    signal_group,
    start_command,
)

from spatial_mllm_ros.exitcodes import ExitCode

NODE = "spatial_mllm_node"
#: The README's command line ("On a ROS 2 install": the same without the ros2 CLI).
README_ARGS = f"{NODE} --ros-args --params-file config/cpu_tiny.yaml"
#: A node that refuses its parameters ends in seconds; one that runs on is a failure.
REFUSAL_TIMEOUT_S = 90.0


def _refused(extra: str) -> CommandResult:
    try:
        return run_command(f"{README_ARGS} {extra}", timeout=REFUSAL_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"`{README_ARGS} {extra}` did not refuse: it ran on") from err


@pytest.mark.parametrize(("extra", "needles"), [
    ("-p sampling.frame_budgt:=8", ("unknown parameter", "sampling.frame_budgt",
                                    "sampling.frame_budget")),
    ("-p qos.reliability:=besteffort", ("qos.reliability", "besteffort", "best_effort")),
    ("-p qos.depth:=0", ("qos.depth", "minimum")),
    ("-p sampling.frame_budget:=many", ("sampling.frame_budget", "expected int")),
    ("--params-file config/no_such_profile.yaml", ("no_such_profile.yaml", "no such file")),
    ("-p sampling.frame_budget:=64 -p sampling.max_frame_budget:=16",
     ("sampling.frame_budget", "sampling.max_frame_budget")),
], ids=["typo", "bad-choice", "out-of-range", "wrong-type", "missing-params-file",
        "cross-field"])
def test_bad_parameters_are_refused_at_start_up(extra: str, needles: tuple[str, ...]) -> None:
    res = _refused(extra)
    assert_refused(res, ExitCode.USAGE, *needles)
    assert "spatial_mllm_node:" in res.stderr.strip().splitlines()[-1], res.describe()


def test_unknown_name_in_a_params_file_is_refused(tmp_path: Path) -> None:
    profile = tmp_path / "typo.yaml"
    profile.write_text("spatial_mllm:\n  ros__parameters:\n    sampling:\n"
                       "      frame_budgt: 8\n", encoding="utf-8")
    res = _refused(f"--params-file {profile}")
    assert_refused(res, ExitCode.USAGE, "sampling.frame_budgt")


class _Lines:
    """Reads a running command's stderr line by line (rclpy logs there), in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.ended = False  # the command closed its stderr (it exited)
        self._cond = threading.Condition()
        assert proc.stderr is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: Iterator[str]) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            return next((m for ln in self.lines if (m := re.search(pattern, ln))), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self.ended, timeout_s)
            match = found()
        assert match is not None, f"no {pattern!r} within {timeout_s} s:\n{''.join(self.lines)}"
        return match

    def text(self) -> str:
        self._thread.join(30.0)
        return "".join(self.lines)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _interrupt(proc: subprocess.Popen[str], lines: _Lines) -> tuple[int, str, str]:
    signal_group(proc, signal.SIGINT)  # Ctrl-C: the node and its model process
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.stdout is not None
    return code, proc.stdout.read(), lines.text()


def test_ctrl_c_on_a_running_node_ends_it_cleanly() -> None:
    """The README's line exactly (the profile's embedded tiny checkpoint), model loaded, node
    active; then Ctrl-C."""
    proc = start_command(README_ARGS)
    lines = _Lines(proc)
    model_pid = int(lines.wait_for(r"model process pid (\d+)", 300).group(1))
    lines.wait_for(r"\bactive: subscribed", 60)
    code, stdout, stderr = _interrupt(proc, lines)
    assert code == ExitCode.OK, f"exit {code}\n{stderr}"
    assert not noise(stdout) and not noise(stderr), stderr
    assert "model process exited" not in stderr, stderr
    assert _gone(model_pid), "the model process outlived the node"


def test_ctrl_c_while_the_model_loads_ends_it_cleanly() -> None:
    """Ctrl-C at a known point: the node's "loading the model" line (the model process
    is then starting or loading)."""
    proc = start_command(README_ARGS)
    lines = _Lines(proc)
    lines.wait_for(r"loading the model", 120)
    code, stdout, stderr = _interrupt(proc, lines)
    assert code == ExitCode.OK, f"exit {code}\n{stderr}"
    assert not noise(stdout) and not noise(stderr), stderr
    assert "exited while loading" not in stderr and "ERROR" not in stderr, stderr

