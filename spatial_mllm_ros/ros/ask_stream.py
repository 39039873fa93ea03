"""The ``~/ask_stream`` action (``AskSpatialStream``): an answer streamed as it is generated.

rclpy's :class:`~rclpy.action.ActionServer`, on a helper node with an executor of its own (as
``~/ask``, :mod:`.ask_service`): an execute callback blocks until its question is answered,
and must not take a thread of the node's executor from the camera callbacks.

Per goal: the question goes through the node's answer server like any other (the same queue,
bounds and one answer); its progress -- ``queued``, ``sampling``, ``encoders`` (2D and spatial
encoders and prefill), then ``decode`` after every token with the text so far -- comes back as
feedback. At close (deactivate, cleanup, a signal) every goal that has started is answered
first, and the action keeps serving until each of those answers has been sent to its client
(who asks with ``get_result``), for at most :data:`RESULT_REQUEST_WAIT_S`: a client asks for
the result only after the goal's acceptance has reached it, which may be after the close
began. A goal rclpy expires (its result kept ``result_timeout`` s and never asked for) is no
longer waited for.
A cancel that names no goal (cancel all) or a stamp is refused unless
``security.allow_cancel_all`` (:mod:`.cancel_guard`). The cancel callback sets the
question's cancel event (no polling): a queued
question is answered CANCELED when its turn comes, a generating one stops within one token; the
result then has ``canceled`` and the text generated so far. The deadline (``timeout_s``)
applies as well.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rclpy.action import CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, ShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_services_default

from spatial_mllm_ros.action import AskSpatialStream
from spatial_mllm_ros.answering.types import AnswerStatus
from spatial_mllm_ros.ros.cancel_guard import GuardedActionServer

__all__ = ["AskStreamAction", "StreamGoal"]

#: The parameter that lets a cancel of every goal through (:mod:`.cancel_guard`).
ALLOW_CANCEL_ALL = "security.allow_cancel_all"
#: Longest wait for rclpy to mark a goal canceling after its accepted cancel (seconds).
CANCELING_WAIT_S = 1.0
#: Longest wait at close for the clients of the goals started to ask for their results (s).
RESULT_REQUEST_WAIT_S = 3.0


class _ResultTrackingServer(GuardedActionServer):
    """The action server, telling ``on_result_sent`` the goal id (bytes) of every result it
    has sent to a client that asked for it (rclpy sends a result when the request comes for a
    goal that has ended, or when the goal ends for a request that came before)."""

    def __init__(self, *args: Any, on_result_sent: Callable[[bytes], None],
                 on_expired: Callable[[bytes], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_result_sent = on_result_sent
        self._on_expired = on_expired
        self._requests: dict[int, tuple[Any, bytes]] = {}  # id(header) -> (header, goal id)
        self._requests_lock = threading.Lock()

    async def _execute_get_result_request(self, request_header_and_message: Any) -> None:
        header, request = request_header_and_message
        goal = bytes(request.goal_id.uuid)
        with self._requests_lock:
            self._requests[id(header)] = (header, goal)
        await super()._execute_get_result_request(request_header_and_message)
        if goal not in self._goal_handles:  # answered at once as an unknown goal
            with self._requests_lock:
                self._requests.pop(id(header), None)

    async def _execute_expire_goals(self, expired_goals: Any) -> None:
        await super()._execute_expire_goals(expired_goals)
        gone = {bytes(goal.goal_id.uuid) for goal in expired_goals}
        with self._requests_lock:
            for key in [k for k, (_, goal) in self._requests.items() if goal in gone]:
                del self._requests[key]
        for goal in gone:
            self._on_expired(goal)

    def _send_result_response(self, request_header: Any, future: Any) -> None:
        super()._send_result_response(request_header, future)
        with self._requests_lock:
            entry = self._requests.pop(id(request_header), None)
        if entry is not None:
            self._on_result_sent(entry[1])


class StreamGoal:
    """What the answer server needs of one goal: where its progress goes and its cancel."""

    def __init__(self, publish: Callable[[str, str, int], None]) -> None:
        self.cancel = threading.Event()
        self._publish = publish
        self._started = time.monotonic()

    def progress(self, stage: str, text: str, tokens: int) -> None:
        self._publish(stage, text, tokens)


#: (goal fields, StreamGoal, alive) -> the SpatialAnswer message, blocking until answered
Submit = Callable[[Any, StreamGoal, Callable[[], bool]], Any]


class AskStreamAction:
    """``~/ask_stream`` of ``owner`` served by its own executor.

    Args:
        owner: the node whose action it is (context, namespace, name remapping).
        submit: asks the question of a goal and blocks until its answer message exists.
        max_goals: goals that may run at once (the question queue plus one).
        qos: QoS of the goal, cancel and result services and of the feedback: its depth
            bounds the requests that may arrive before the executor takes them (rclpy's
            default keeps 10: a larger burst of goals loses some).
    """

    def __init__(self, owner: Node, submit: Submit, max_goals: int,
                 qos: QoSProfile = qos_profile_services_default) -> None:
        self.action_name = owner.resolve_service_name("~/ask_stream")
        self._submit = submit
        self._goals: dict[bytes, StreamGoal] = {}  # running goals by goal id
        self._unsent: set[bytes] = set()  # goals started whose result no client has had yet
        self._early_cancels: set[bytes] = set()  # canceled before they were registered
        self._goals_lock = threading.Lock()
        self._sent = threading.Condition(self._goals_lock)
        self._node = Node(
            f"{owner.get_name()}_ask_stream",
            namespace=owner.get_namespace(),
            context=owner.context,
            use_global_arguments=False,
            start_parameter_services=False,
        )
        self._server = _ResultTrackingServer(  # a cancel of every goal: refused by default
            self._node, AskSpatialStream, self.action_name,
            allow_broad=owner.has_parameter(ALLOW_CANCEL_ALL)  # (a bare test node: no)
            and bool(owner.get_parameter(ALLOW_CANCEL_ALL).value),
            execute_callback=self._execute,
            on_result_sent=self._result_sent,
            on_expired=self._result_sent,  # no client will have it: not waited for
            goal_callback=lambda _goal: GoalResponse.ACCEPT,  # bad goals get an answer too
            cancel_callback=self._on_cancel,
            callback_group=ReentrantCallbackGroup(),
            goal_service_qos_profile=qos,
            result_service_qos_profile=qos,
            cancel_service_qos_profile=qos,
            feedback_pub_qos_profile=qos,
        )
        self._executor = MultiThreadedExecutor(num_threads=max_goals + 2, context=owner.context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, name="spatial-mllm-ask-stream",
                                        daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except (ExternalShutdownException, ShutdownException, RuntimeError):
            pass  # shut down (a goal taken while closing finds its pool gone)

    @staticmethod
    def _key(goal_handle: Any) -> bytes:
        return bytes(goal_handle.goal_id.uuid)

    def _on_cancel(self, goal_handle: Any) -> CancelResponse:
        """Every cancel is accepted; it reaches the running question at once."""
        key = self._key(goal_handle)
        with self._goals_lock:
            goal = self._goals.get(key)
            if goal is None:  # accepted, not executing yet: it finds the cancel when it starts
                self._early_cancels.add(key)
        if goal is not None:
            goal.cancel.set()
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle: Any) -> Any:
        started = time.monotonic()

        def publish(stage: str, text: str, tokens: int) -> None:
            fb = AskSpatialStream.Feedback(stage=stage, text=text, num_tokens=tokens,
                                           elapsed_s=time.monotonic() - started)
            goal_handle.publish_feedback(fb)

        goal = StreamGoal(publish)
        key = self._key(goal_handle)
        with self._goals_lock:
            self._goals[key] = goal
            self._unsent.add(key)
            early = key in self._early_cancels
            self._early_cancels.discard(key)
        if early or goal_handle.is_cancel_requested:  # canceled before it started to execute
            goal.cancel.set()
        try:
            msg = self._submit(goal_handle.request, goal, self._node.context.ok)
        finally:
            with self._goals_lock:
                self._goals.pop(key, None)
        canceled = int(msg.status) == int(AnswerStatus.CANCELED)
        # rclpy moves the goal to CANCELING only after the cancel callback returned: a
        # question stopped by that cancel may finish first
        end = time.monotonic() + CANCELING_WAIT_S
        while canceled and not goal_handle.is_cancel_requested and time.monotonic() < end:
            time.sleep(0.005)
        if canceled and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.succeed()
        return AskSpatialStream.Result(answer=msg, canceled=canceled)

    def _result_sent(self, key: bytes) -> None:
        with self._sent:
            self._unsent.discard(key)
            self._sent.notify_all()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop serving once every goal started has its result and that result has been sent
        to its client (at most :data:`RESULT_REQUEST_WAIT_S`; the answer server has answered
        every question before it closes the action)."""
        end = time.monotonic() + RESULT_REQUEST_WAIT_S
        with self._sent:
            while self._unsent and self._sent.wait(max(end - time.monotonic(), 0.0)):
                pass
            unsent = len(self._unsent)
        if unsent:
            self._node.get_logger().warning(
                f"closing ~/ask_stream: {unsent} goal(s) whose result was not sent to a client "
                f"within {RESULT_REQUEST_WAIT_S:g} s (no client asked: gone away?)")
        self._executor.shutdown(timeout_sec=timeout_s)
        self._thread.join(timeout_s)
        self._server.destroy()
        self._node.destroy_node()
