"""What ``spatial_mllm_node`` checks before it configures, so that it refuses to start (one
line on stderr, ``ExitCode.USAGE``) rather than run wrong:

* its ROS arguments: every ``--params-file`` exists and is YAML (:func:`check_params_files`;
  rcl's own error, if it still refuses the arguments, is cut to one line by
  :func:`rcl_error_line`);
* its parameters (when they are declared: :func:`.parameters.declare_schema`);
* its name: no other live node of its fully qualified name in the domain
  (:class:`NamesakeWatch`, parameter ``startup.name_check_s``).

And how a node that did start says that a lifecycle transition failed: the ``spatial_mllm:
lifecycle`` status on ``/diagnostics`` (:func:`lifecycle_status`), ERROR with the reason, so a
node is never unconfigured without saying so.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from spatial_mllm_ros import params as P
from spatial_mllm_ros.ros.qos import reliable_qos

__all__ = [
    "LIFECYCLE_STATUS_NAME",
    "Namesake",
    "NamesakeWatch",
    "check_params_files",
    "lifecycle_status",
    "params_files",
    "rcl_error_line",
]

LIFECYCLE_STATUS_NAME = "spatial_mllm: lifecycle"

#: How often the graph is read while watching for a namesake (seconds).
GRAPH_POLL_S = 0.1


def params_files(argv: Sequence[str]) -> list[str]:
    """The ``--params-file`` values of ``argv``'s ``--ros-args`` sections."""
    files: list[str] = []
    in_ros = False
    for i, arg in enumerate(argv):
        if arg == "--ros-args":
            in_ros = True
        elif in_ros and arg == "--":
            in_ros = False
        elif in_ros and arg == "--params-file" and i + 1 < len(argv):
            files.append(argv[i + 1])
    return files


def check_params_files(argv: Sequence[str]) -> None:
    """Raise :class:`~spatial_mllm_ros.params.ParamError` for a ``--params-file`` that does
    not exist, cannot be read or is not YAML (rcl would fail with a traceback)."""
    for name in params_files(argv):
        path = Path(name)
        if not path.is_file():
            raise P.ParamError(f"--params-file {name}: no such file")
        try:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise P.ParamError(f"--params-file {name}: cannot be read: {err.strerror}") from err
        except yaml.YAMLError as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise P.ParamError(f"--params-file {name}: not YAML: {first}") from err


def rcl_error_line(err: Exception) -> str:
    """rcl's error message on one line, without its source locations (``, at file:line``)."""
    text = re.sub(r",? at [^,]*:\d+", "", str(err))
    return " ".join(text.split())


@dataclass(frozen=True)
class Namesake:
    """What the start-up watch found of another node with this node's fully qualified name.

    Attributes:
        in_graph: the ROS graph lists it (a live node, or the entry of one that stopped
            without leaving: DDS keeps it until its lease ends, about 20 s).
        pids: process ids of namesakes that published /diagnostics during the watch (live
            nodes of this package).
    """

    in_graph: bool
    pids: frozenset[int]

    @property
    def live(self) -> bool:
        """A namesake that is certainly running (it published /diagnostics)."""
        return bool(self.pids)


class NamesakeWatch:
    """Watches, for a bounded time, for another node of ``node``'s fully qualified name: in
    the ROS graph, and alive on ``/diagnostics`` (every node of this package publishes there,
    with its name as ``hardware_id`` and its ``pid``, in every lifecycle state). The node's
    executor must be spinning (the /diagnostics subscription's callback)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._fqn = node.get_fully_qualified_name()
        self._pids: set[int] = set()
        self._sub = node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag,
                                             reliable_qos(10))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.hardware_id != self._fqn:
                continue
            pid = next((kv.value for kv in status.values if kv.key == "pid"), "")
            if pid.isdigit() and int(pid) != os.getpid():
                self._pids.add(int(pid))

    def _in_graph(self) -> bool:
        name, ns = self._node.get_name(), self._node.get_namespace()
        return self._node.get_node_names_and_namespaces().count((name, ns)) > 1

    def watch(self, wait_s: float, stop: threading.Event) -> Namesake:
        """Watch for up to ``wait_s`` seconds (less once a live namesake is seen, or when
        ``stop`` is set); then stop watching."""
        end = time.monotonic() + wait_s
        in_graph = False
        try:
            while not self._pids and not stop.is_set():
                in_graph = in_graph or self._in_graph()
                left = end - time.monotonic()
                if left <= 0:
                    break
                stop.wait(min(GRAPH_POLL_S, left))
            return Namesake(in_graph=in_graph or self._in_graph(), pids=frozenset(self._pids))
        finally:
            self._node.destroy_subscription(self._sub)


def lifecycle_status(state: str, error: str, hardware_id: str) -> DiagnosticStatus:
    """The node's lifecycle state for /diagnostics: OK, or ERROR with ``error`` (why the last
    configure or activate failed: the node is up but does not answer)."""
    return DiagnosticStatus(
        level=DiagnosticStatus.ERROR if error else DiagnosticStatus.OK,
        name=LIFECYCLE_STATUS_NAME, hardware_id=hardware_id,
        message=f"{state}: {error}" if error else state,
        values=[KeyValue(key="state", value=state), KeyValue(key="error", value=error)],
    )
