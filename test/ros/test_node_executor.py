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
    assert isinstance(multi, MultiThreadedExecutor) and multi._executor._max_workers == 3
    for ex in (default, multi):
        ex.shutdown()
