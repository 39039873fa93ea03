"""``spatial_mllm_node``: run the node in its own process.

``-h``/``--help`` prints the usage and the parameters without starting rclpy
(:mod:`.node_cli`).

Start-up refuses, with one line on stderr and exit ``ExitCode.USAGE`` (2), before the model
loads: a ``--params-file`` that is missing or not YAML, ROS arguments rcl refuses, a parameter
value the schema refuses (unknown name, wrong type, out of range, not a choice, a cross-field
rule: :func:`.parameters.declare_schema`), and another live node of the same fully qualified
name (:mod:`.startup`, parameter ``startup.name_check_s``).

SIGINT and SIGTERM are handled here, not by rclpy: rclpy's handlers would shut the context
down at once, before the questions still queued or being answered get their one answer; here
a signal stops the node (:meth:`SpatialMllmNode.stop_everything`: every question answered,
the model process ended; a model still loading is stopped at once), then the executor and the
context. The model process ignores SIGINT (a Ctrl-C reaches the terminal's whole process
group): the node stops it. A lifecycle ``shutdown`` (from any participant) ends the process
the same way. Either is the node's normal end: exit 0. The heap is bounded first
(:func:`spatial_mllm_ros.core.memory.bound_heap`): camera images are megabytes, 30 to 60 a
second.
"""

from __future__ import annotations

import signal
import sys
import threading
import warnings

import rclpy
from rclpy.context import Context
from rclpy.exceptions import ParameterException
from rclpy.executors import (
    Executor,
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.signals import SignalHandlerOptions

from spatial_mllm_ros import params as P
from spatial_mllm_ros.core.memory import bound_heap
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.ros.node import SpatialMllmNode, use_xml_memory_policy
from spatial_mllm_ros.ros.node_cli import PROG, node_help, wants_help
from spatial_mllm_ros.ros.startup import NamesakeWatch, check_params_files, rcl_error_line

__all__ = ["main"]

RCLError = _rclpy.RCLError  # rcl's errors, as rclpy's own modules name them

def main(args: list[str] | None = None) -> int:
    """Run the node (``ros2 run spatial_mllm_ros spatial_mllm_node`` / ``python -m ...``);
    ``-h``/``--help`` prints the usage and the parameters instead (rclpy is not started).
    Returns the exit code (:class:`~spatial_mllm_ros.exitcodes.ExitCode`, see the module)."""
    argv = sys.argv if args is None else args
    if wants_help(argv):
        print(node_help(), end="")
        return ExitCode.OK
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    try:
        check_params_files(argv)
    except P.ParamError as err:
        return _refuse(str(err))
    bound_heap()  # before rclpy and DDS start their threads
    use_xml_memory_policy()  # the DDS profile's DYNAMIC readers (before rclpy.init)
    try:
        rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    except RCLError as err:
        return _refuse(f"invalid ROS arguments: {rcl_error_line(err)}")
    # rclpy's own follow-up of a node it failed to create, not news to the user
    warnings.filterwarnings("ignore", message="Failed to fini rosout publisher",
                            category=RuntimeWarning)
    try:
        node = SpatialMllmNode(stopping=stop)
    except (P.ParamError, ParameterException) as err:
        rclpy.try_shutdown()
        return _refuse(str(err))
    except RCLError as err:  # e.g. ROS_SECURITY_ENABLE=true with a DDS without security
        rclpy.try_shutdown()
        return _refuse(f"cannot create the node: {rcl_error_line(err)}")
    return _run(node, stop)


def _refuse(reason: str) -> int:
    """One line on stderr, exit ``ExitCode.USAGE``."""
    print(f"{PROG}: {reason} (see {PROG} --help)", file=sys.stderr)
    return ExitCode.USAGE


def _run(node: SpatialMllmNode, stop: threading.Event) -> int:
    """Spin ``node`` until a signal or a lifecycle shutdown; then stop it and the context."""
    threads = int(node.get_parameter("executor.threads").value)
    executor = make_executor(threads)
    executor.add_node(node)
    node.get_logger().info(f"executor: {type(executor).__name__}"
                           + (f" ({threads} threads)" if threads > 1 else ""))
    spinner = threading.Thread(target=_spin, args=(executor,), name="spatial-mllm-spin",
                               daemon=True)
    spinner.start()
    code: int = ExitCode.OK
    try:
        refusal = _namesake_refusal(node, stop)
        if refusal:
            code = _refuse(refusal)
        elif not stop.is_set():
            node.autostart()
            while not stop.wait(0.2) and spinner.is_alive() and not node.finalized.is_set():
                pass
    finally:
        stop.set()  # a model load still in progress ends now
        node.stop_everything("node shutting down")
        executor.shutdown(timeout_sec=2.0)
        spinner.join(5.0)  # out of its wait before the node and the context go
        node.destroy_node()
        rclpy.try_shutdown()
    return code


def _namesake_refusal(node: SpatialMllmNode, stop: threading.Event) -> str:
    """Why the node must not start ("" = it may): another live node of its fully qualified
    name (parameter ``startup.name_check_s``; a graph entry that published nothing is only
    warned about: the entry of a node that stopped without leaving stays ~20 s)."""
    wait_s = float(node.get_parameter("startup.name_check_s").value)
    if wait_s <= 0:
        return ""
    fqn = node.get_fully_qualified_name()
    found = NamesakeWatch(node).watch(wait_s, stop)
    if found.live:
        pids = ", ".join(str(p) for p in sorted(found.pids))
        return (f"a node named {fqn} is already running in ROS_DOMAIN_ID "
                f"{node.context.get_domain_id()} (pid {pids}); stop it, or give this one "
                "another name (-r __node:=NAME) or namespace (-r __ns:=/NS)")
    if found.in_graph:
        node.get_logger().warning(
            f"the ROS graph lists another node named {fqn} that published no /diagnostics "
            f"within {wait_s:g} s: the entry of a stopped node (DDS drops it within ~20 s) "
            "or a node of another package; starting anyway")
    return ""


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
