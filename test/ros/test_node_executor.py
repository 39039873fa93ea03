"""The node's executor follows ``executor.threads`` (1 = single-threaded, the default)."""

from __future__ import annotations

from typing import Any


def test_executor_threads_select_the_executor() -> None:
    import rclpy

    from spatial_mllm_ros.params import default_int
    from spatial_mllm_ros.ros.node_main import make_executor

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        _check(make_executor, default_int("executor.threads"), context)
    finally:
        rclpy.shutdown(context=context)


def _check(make_executor: Any, default_threads: int, context: Any) -> None:
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    default = make_executor(default_threads, context)
    assert isinstance(default, SingleThreadedExecutor)
    multi = make_executor(3, context)
    assert isinstance(multi, MultiThreadedExecutor)
    for ex in (default, multi):
        ex.shutdown()


def test_the_node_process_runs_the_executor_its_parameter_names(tmp_path: Any) -> None:
    """``spatial_mllm_node`` itself reads ``executor.threads`` (its log says which executor it
    spins), and exits 0 on SIGINT with either."""
    import signal
    import subprocess
    import sys
    import time

    from testkit.processes import REPO

    def executor_line(threads: int) -> str:
        path = tmp_path / f"node{threads}.log"
        with path.open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "spatial_mllm_ros.ros.node_main", "--ros-args",
                 "-p", "autostart:=false", "-p", f"executor.threads:={threads}"],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            try:
                end = time.monotonic() + 60
                while time.monotonic() < end and proc.poll() is None:
                    lines = [ln for ln in path.read_text().splitlines() if "executor:" in ln]
                    if lines:
                        return lines[0].split("executor:", 1)[1].strip()
                    time.sleep(0.1)
                raise AssertionError(f"no executor line; log:\n{path.read_text()}")
            finally:
                proc.send_signal(signal.SIGINT)
                assert proc.wait(timeout=30) == 0

    assert executor_line(1) == "SingleThreadedExecutor"
    assert executor_line(3) == "MultiThreadedExecutor (3 threads)"
