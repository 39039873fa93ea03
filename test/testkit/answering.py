"""Helpers of the real-process answering tests: the node's model process, its answering
status on /diagnostics, ``~/ask_stream`` goals and lifecycle transitions.

Everything here looks at the node process a test started (its pid), never at any node.
Importing this module needs neither rclpy nor the built interfaces.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "AnswerDiagnostics",
    "action_client",
    "change_state",
    "close_action_clients",
    "model_pid",
    "set_parameters",
    "stream_goal",
    "wait_future",
]


def model_pid(node_pid: int, timeout_s: float = 60.0) -> int:
    """The model process: the node's child running ``spatial-mllm-model`` (multiprocessing's
    ``spawn_main``, not its resource tracker)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) != node_pid:
                    continue
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:  # gone meanwhile
                continue
            if b"spawn_main" in cmdline:
                return int(entry.name)
        time.sleep(0.2)
    raise AssertionError(f"node {node_pid} has no model process")


def wait_future(future: Any, timeout_s: float) -> Any:
    """The result of an rclpy future completed by the client's own executor thread."""
    end = time.monotonic() + timeout_s
    while not future.done() and time.monotonic() < end:
        time.sleep(0.01)
    assert future.done(), f"no response within {timeout_s} s"
    return future.result()


class AnswerDiagnostics:
    """Every ``spatial_mllm: answering`` status of /diagnostics, as (level, values), of the
    node with pid ``node_pid`` (all nodes' when None)."""

    def __init__(self, node: Any, node_pid: int | None = None) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        from spatial_mllm_ros.ros.diagnostics import ANSWER_STATUS_NAME
        from spatial_mllm_ros.ros.qos import reliable_qos

        self.seen: list[tuple[int, dict[str, str]]] = []
        self._cond = threading.Condition()
        pid = None if node_pid is None else str(node_pid)

        def on_diag(msg: Any) -> None:
            for st in msg.status:
                if st.name != ANSWER_STATUS_NAME:
                    continue
                values = {kv.key: kv.value for kv in st.values}
                if pid is not None and values.get("pid") != pid:
                    continue
                level = (int.from_bytes(st.level, "little") if isinstance(st.level, bytes)
                         else int(st.level))
                with self._cond:
                    self.seen.append((level, values))
                    self._cond.notify_all()

        self.sub = node.create_subscription(DiagnosticArray, "/diagnostics", on_diag,
                                            reliable_qos(50))

    def states(self) -> list[str]:
        with self._cond:
            return [v.get("model.state", "") for _, v in self.seen]

    def error_seen(self) -> bool:
        with self._cond:
            return any(level == 2 for level, _ in self.seen)

    def wait(self, predicate: Callable[[dict[str, str]], bool], timeout_s: float = 60.0
             ) -> dict[str, str]:
        """The first status from now on whose values satisfy ``predicate``."""
        end = time.monotonic() + timeout_s
        with self._cond:
            first = start = len(self.seen)
            while True:
                for _, values in self.seen[start:]:
                    if predicate(values):
                        return values
                start = len(self.seen)
                left = end - time.monotonic()
                if left <= 0:
                    last = self.seen[-1][1] if self.seen else {}
                    raise AssertionError(f"no answering status as wanted within {timeout_s} s"
                                         f" ({start - first} statuses came); last: {last}")
                self._cond.wait(left)


def change_state(node: Any, node_name: str, transition_id: int, timeout_s: float = 60.0
                 ) -> bool:
    """Ask ``/node_name/change_state`` for a lifecycle transition (``node`` is spun by its own
    executor thread); whether it succeeded (:func:`testkit.services.transition`: a lost
    response is settled by the node's state)."""
    from lifecycle_msgs.srv import ChangeState, GetState

    from testkit.services import polling, transition

    change = node.create_client(ChangeState, f"/{node_name}/change_state")
    get = node.create_client(GetState, f"/{node_name}/get_state")
    try:
        return transition(change, get, transition_id, polling, timeout_s)
    finally:
        node.destroy_client(change)
        node.destroy_client(get)


def set_parameters(client_node: Any, values: dict[str, Any], wait_s: float = 30.0) -> list[Any]:
    """Set ``values`` on the node under test through its ``set_parameters`` service (what
    ``ros2 param set`` calls); the per-parameter results (``successful``, ``reason``)."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    cli = client_node.create_client(SetParameters, "/spatial_mllm/set_parameters")
    try:
        assert cli.wait_for_service(timeout_sec=wait_s), "no set_parameters service"
        req = SetParameters.Request(
            parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
        future = cli.call_async(req)
        end = time.monotonic() + wait_s
        while not future.done() and time.monotonic() < end:
            time.sleep(0.01)
        assert future.done(), "set_parameters did not answer"
        return list(future.result().results)
    finally:
        client_node.destroy_client(cli)


#: each node's action clients by action name (:func:`action_client`), keyed by id(node);
#: :func:`close_action_clients` destroys them before the node goes
_ACTION_CLIENTS: dict[int, tuple[Any, dict[str, Any]]] = {}


def action_client(client_node: Any, action_name: str = "/spatial_mllm/ask_stream") -> Any:
    """The ``AskSpatialStream`` action client of ``client_node``, made on first use and kept
    (its server found): a client made just before its goal can lose the goal's acceptance or
    result, sent to a reader the server has not matched yet (:mod:`testkit.services`); make it
    early in a test that must not lose one."""
    from rclpy.action import ActionClient
    from spatial_mllm_ros.action import AskSpatialStream

    clients = _ACTION_CLIENTS.setdefault(id(client_node), (client_node, {}))[1]
    if action_name not in clients:
        clients[action_name] = ActionClient(client_node, AskSpatialStream, action_name)
    assert clients[action_name].wait_for_server(timeout_sec=30), f"no {action_name} server"
    return clients[action_name]


def close_action_clients(client_node: Any) -> None:
    """Destroy the action clients :func:`action_client` made for ``client_node`` (call it
    before destroying the node: ``destroy_node`` leaves its action clients' handles)."""
    _node, clients = _ACTION_CLIENTS.pop(id(client_node), (None, {}))
    for client in clients.values():
        client.destroy()


def stream_goal(client_node: Any, goal_fields: dict[str, Any], freeze_pid: int | None = None,
                action_name: str = "/spatial_mllm/ask_stream", kill_pid: int | None = None
                ) -> tuple[list[Any], Any, int, int]:
    """One goal of ``~/ask_stream``: its feedback, its result, (with ``freeze_pid``) the
    tokens generated when it was canceled, and the goal's final status (``GoalStatus``).

    To cancel after the first token whatever the machine's speed, the model process
    ``freeze_pid`` is stopped (SIGSTOP) at the first ``decode`` feedback; once its feedback
    has stopped coming, the goal is canceled, the cancel is accepted, and the process resumes.
    With ``kill_pid`` instead, the model process is stopped and then killed (SIGKILL) at the
    first ``decode`` feedback: it dies mid-answer, between two tokens, at a known point.
    """
    from spatial_mllm_ros.action import AskSpatialStream

    action = action_client(client_node, action_name)
    feedback: list[Any] = []
    first_token = threading.Event()

    def on_feedback(msg: Any) -> None:
        if msg.feedback.stage == "decode" and not first_token.is_set():
            if freeze_pid is not None:
                os.kill(freeze_pid, signal.SIGSTOP)
            if kill_pid is not None:
                os.kill(kill_pid, signal.SIGSTOP)  # no further token from here on
                os.kill(kill_pid, signal.SIGKILL)
            first_token.set()
        feedback.append(msg.feedback)

    handle = wait_future(
        action.send_goal_async(AskSpatialStream.Goal(**goal_fields), on_feedback), 60)
    assert handle.accepted
    at_cancel = 0
    if freeze_pid is not None:
        try:
            assert first_token.wait(120)
            seen = -1
            while seen != len(feedback):  # the tokens sent before the stop have all come
                seen = len(feedback)
                time.sleep(1.0)
            at_cancel = max(f.num_tokens for f in feedback if f.stage == "decode")
            response = wait_future(handle.cancel_goal_async(), 30)
            assert len(response.goals_canceling) == 1  # accepted: the event is set
            time.sleep(1.0)  # the node's answering thread passes the cancel to the pipe
        finally:
            os.kill(freeze_pid, signal.SIGCONT)
    result = wait_future(handle.get_result_async(), 180)
    return feedback, result.result, at_cancel, int(result.status)
