"""``spatial_mllm_node``: run the node in its own process.

``-h``/``--help`` prints the usage and the parameters without starting rclpy
(:mod:`.node_cli`). SIGINT and SIGTERM are handled here, not by rclpy: rclpy's handlers would
shut the context down at once, before the questions still queued or being answered get their
one answer; here a signal stops the node (:meth:`SpatialMllmNode.stop_everything`: every
question answered, the model process ended), then the executor and the context. The heap
is bounded first (:func:`spatial_mllm_ros.core.memory.bound_heap`): camera images are
megabytes, 30 to 60 a second.
"""

from __future__ import annotations

import signal
import sys
import threading

import rclpy
from rclpy.context import Context
from rclpy.executors import (
    Executor,
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.signals import SignalHandlerOptions

from spatial_mllm_ros.core.memory import bound_heap
from spatial_mllm_ros.ros.node import SpatialMllmNode
from spatial_mllm_ros.ros.node_cli import node_help, wants_help

__all__ = ["main"]

def main(args: list[str] | None = None) -> int:
    """Run the node (``ros2 run spatial_mllm_ros spatial_mllm_node`` / ``python -m ...``);
    ``-h``/``--help`` prints the usage and the parameters instead (rclpy is not started)."""
    argv = sys.argv if args is None else args
    if wants_help(argv):
        print(node_help(), end="")
        return 0
    bound_heap()  # before rclpy and DDS start their threads
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    node = SpatialMllmNode()
    threads = int(node.get_parameter("executor.threads").value)
    executor = make_executor(threads)
    executor.add_node(node)
    node.get_logger().info(f"executor: {type(executor).__name__}"
                           + (f" ({threads} threads)" if threads > 1 else ""))
    spinner = threading.Thread(target=_spin, args=(executor,), name="spatial-mllm-spin",
                               daemon=True)
    spinner.start()
    try:
        node.autostart()
        while not stop.wait(0.2) and spinner.is_alive():
            pass
    finally:
        node.stop_everything("node shutting down")
        executor.shutdown(timeout_sec=2.0)
        spinner.join(5.0)  # out of its wait before the node and the context go
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def make_executor(threads: int, context: Context | None = None) -> Executor:
    """The node's executor (parameter ``executor.threads``): single-threaded for 1, else a
    MultiThreadedExecutor of ``threads`` (see the parameter's description for why 1)."""
    if threads <= 1:
        return SingleThreadedExecutor(context=context)
    return MultiThreadedExecutor(num_threads=threads, context=context)


def _spin(executor: Executor) -> None:
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == "__main__":
    sys.exit(main())
