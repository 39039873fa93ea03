"""rclpy clients of the node that spin in a background thread: the question client used by
``spatial-mllm-ask``, the demo, the benchmarks and the tests, and the base they share with the
diagnostics reader (``ingest_monitor``).

Every wait of the calling (main) thread is a ``threading`` wait of at most 0.1 s at a time, so
a signal handler that raises (``spatial_mllm_ros.ros.interrupts``) ends it at once, and a ROS
context shut down under it (rclpy's own signal handlers, ``rclpy.shutdown``) ends it within
0.1 s with :class:`NoAnswerError`.  A :class:`BackgroundNode` that initialises rclpy with
rclpy's signal handlers also makes SIGINT and SIGTERM raise
:class:`~spatial_mllm_ros.ros.interrupts.Interrupted` in the main thread where the program
left them at Python's defaults (rclpy alone turns SIGTERM into a context shutdown that a wait
would not notice), so a program using the library ends on either at once.

A streamed question's result (``~/ask_stream``) is read only from a goal that SUCCEEDED or was
CANCELED: rclpy keeps a result for 10 s after its goal ends, and a later request gets
``STATUS_UNKNOWN`` with an empty answer, whose status field reads 0 (OK); that is
:class:`ResultLostError`, never an answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from spatial_mllm_ros.action import AskSpatialStream
from spatial_mllm_ros.msg import SpatialAnswer, SpatialQuestion
from spatial_mllm_ros.ros.answer_server import QUESTION_QOS_DEPTH
from spatial_mllm_ros.ros.interrupts import raise_on_stop_signals
from spatial_mllm_ros.ros.qos import reliable_qos
from spatial_mllm_ros.srv import AskSpatial

__all__ = ["AskClient", "BackgroundNode", "NoAnswerError", "ResultLostError", "StreamCall"]

#: Longest single wait of the main thread (seconds): how soon a shut-down context is noticed.
POLL_S = 0.1
#: Longest wait for a node's service or action server to appear (seconds).
SERVER_WAIT_S = 30.0


class NoAnswerError(TimeoutError):
    """No answer arrived in time (no node, no service, or a slow model), or the ROS context
    was shut down while waiting."""


class ResultLostError(NoAnswerError):
    """A goal's result is gone (``STATUS_UNKNOWN``: rclpy keeps it 10 s after the goal ended)
    or the goal ended without one (ABORTED): there is no answer to read."""


def _wait_future(future: Any, wait_s: float, context: Any) -> Any:
    """``future``'s result once done within ``wait_s`` seconds, else None; NoAnswerError when
    ``context`` is shut down meanwhile."""
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    end = time.monotonic() + wait_s
    while not future.done() and (left := end - time.monotonic()) > 0:
        _check_context(context)
        done.wait(min(left, POLL_S))  # the callback may be scheduled on the executor later
    return future.result() if future.done() else None


def _check_context(context: Any) -> None:
    if not context.ok():
        raise NoAnswerError("the ROS context was shut down while waiting (rclpy.shutdown or "
                            "a signal that rclpy handled)")


def wait_until(ready: Callable[[], bool], wait_s: float, context: Any,
               notice: Callable[[], None] | None = None, notice_after_s: float = 1.0) -> bool:
    """Poll ``ready`` until it is true or ``wait_s`` seconds passed; whether it is.  Calls
    ``notice`` once when still not ready after ``notice_after_s`` (e.g. to say what it waits
    for); NoAnswerError when ``context`` is shut down meanwhile."""
    start = time.monotonic()
    pause = threading.Event()
    while True:
        _check_context(context)
        if ready():
            return True
        waited = time.monotonic() - start
        if waited >= wait_s:
            return False
        if notice is not None and waited >= notice_after_s:
            notice()
            notice = None
        pause.wait(min(POLL_S / 2, wait_s - waited))


def answer_of_result(result: Any, action_name: str) -> SpatialAnswer:
    """The ``SpatialAnswer`` of an ``AskSpatialStream`` get-result response; ResultLostError
    when the goal has no result to read (see the module docstring)."""
    status = int(result.status)
    if status in (GoalStatus.STATUS_SUCCEEDED, GoalStatus.STATUS_CANCELED):
        answer: SpatialAnswer = result.result.answer
        return answer
    if status == GoalStatus.STATUS_UNKNOWN:
        raise ResultLostError(f"{action_name} no longer holds the goal's result (rclpy keeps a "
                              "result 10 s after its goal ended); ask again")
    raise ResultLostError(f"the goal of {action_name} ended with status {status} (not "
                          "succeeded or canceled) and no answer")


class BackgroundNode:
    """A node spun by its own executor thread. Initialises rclpy if needed (and shuts it down
    on close in that case); ``rclpy_signal_handlers=False`` keeps rclpy's SIGINT/SIGTERM
    handlers out of that initialisation (for a tool that handles the signals itself)."""

    def __init__(self, node_name: str, *, rclpy_signal_handlers: bool = True) -> None:
        self._own_context = not rclpy.ok()
        self._restore_signals: Callable[[], None] | None = None
        if self._own_context:
            if rclpy_signal_handlers:  # before rclpy's, which then call these after theirs
                self._restore_signals = raise_on_stop_signals()
            rclpy.init(signal_handler_options=None if rclpy_signal_handlers
                       else SignalHandlerOptions.NO)
        self.node = Node(node_name)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # shutdown races at close end the thread quietly
            return

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if self._own_context and rclpy.ok():
            rclpy.shutdown()
        if self._restore_signals is not None:
            self._restore_signals()
            self._restore_signals = None
        self._thread.join(timeout=2.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AskClient(BackgroundNode):
    """Asks the node through the ``<prefix>/ask`` service, the ``<prefix>/ask_stream`` action
    or the ``<prefix>/question`` -> ``<prefix>/answer`` topic pair; keeps every answer seen on
    the topic (a list per id).

    Attributes:
        questions_sent: service requests, goals and question messages sent so far.
        stream: the latest ``~/ask_stream`` goal (:meth:`ask_stream`), None before one.
    """

    def __init__(self, node_name: str, prefix: str = "/spatial_mllm", *,
                 rclpy_signal_handlers: bool = True) -> None:
        super().__init__(node_name, rclpy_signal_handlers=rclpy_signal_handlers)
        self.questions_sent = 0
        prefix = prefix.rstrip("/")
        self._cond = threading.Condition()
        self.answers: dict[int, list[SpatialAnswer]] = {}
        qos = reliable_qos(QUESTION_QOS_DEPTH)
        self.node.create_subscription(SpatialAnswer, f"{prefix}/answer", self._on_answer, qos)
        self.question_pub = self.node.create_publisher(SpatialQuestion, f"{prefix}/question",
                                                       qos)
        # Fast DDS sends every service response to every client of the service: a client
        # reader of rclpy's default depth (10) drops its own response in a burst of callers.
        self.client: Any = self.node.create_client(AskSpatial, f"{prefix}/ask", qos_profile=qos)
        self._action: Any = None  # the ~/ask_stream client, made on first use
        self.stream: StreamCall | None = None
        self.prefix = prefix

    def _on_answer(self, msg: SpatialAnswer) -> None:
        with self._cond:
            self.answers.setdefault(int(msg.query_id), []).append(msg)
            self._cond.notify_all()

    def wait_for_service(self, wait_s: float = SERVER_WAIT_S,
                         notice: Callable[[], None] | None = None) -> None:
        """Block until ``<prefix>/ask`` is there (``notice`` is called once after 1 s without
        it); NoAnswerError after ``wait_s``."""
        if not wait_until(self.client.service_is_ready, wait_s, self.node.context, notice):
            raise NoAnswerError(f"no service {self.prefix}/ask after {wait_s:g} s")

    def ask(self, question: str, wait_s: float = 120.0, **fields: Any) -> SpatialAnswer:
        """Call the service with ``fields`` of ``AskSpatial.Request`` (e.g. ``timeout_s``, the
        node's deadline); the answer, or :class:`NoAnswerError` after ``wait_s`` (the wait for
        the service at most :data:`SERVER_WAIT_S` of it)."""
        self.wait_for_service(min(wait_s, SERVER_WAIT_S))
        request = AskSpatial.Request(question=question, **fields)
        future = self.client.call_async(request)
        self.questions_sent += 1
        result = _wait_future(future, wait_s, self.node.context)
        if result is None:
            raise NoAnswerError(f"no answer from {self.prefix}/ask within {wait_s:g} s")
        answer: SpatialAnswer = result.answer
        return answer

    # ------------------------------------------------------------------ ~/ask_stream
    def _action_client(self) -> Any:
        if self._action is None:
            qos = reliable_qos(QUESTION_QOS_DEPTH)  # as the service client, for each part
            self._action = ActionClient(
                self.node, AskSpatialStream, f"{self.prefix}/ask_stream",
                goal_service_qos_profile=qos, result_service_qos_profile=qos,
                cancel_service_qos_profile=qos, feedback_sub_qos_profile=qos)
        return self._action

    def wait_for_action(self, wait_s: float = SERVER_WAIT_S,
                        notice: Callable[[], None] | None = None) -> None:
        """Block until ``<prefix>/ask_stream`` is served (``notice`` after 1 s without it);
        NoAnswerError after ``wait_s``."""
        action = self._action_client()
        if not wait_until(action.server_is_ready, wait_s, self.node.context, notice):
            raise NoAnswerError(f"no action {self.prefix}/ask_stream after {wait_s:g} s")

    def ask_stream(self, question: str, wait_s: float = 120.0,
                   on_feedback: Callable[[Any], None] | None = None,
                   **fields: Any) -> SpatialAnswer:
        """Ask through the ``~/ask_stream`` action (``fields`` of its goal); ``on_feedback``
        gets each ``AskSpatialStream.Feedback`` (on the executor's thread). The answer (a
        canceled goal's is CANCELED, with the text so far); NoAnswerError when none within
        ``wait_s``, ResultLostError when the goal has no result.  An exception in the wait
        (an interruption) leaves the goal in :attr:`stream`, for :meth:`StreamCall.cancel`."""
        self.wait_for_action(min(wait_s, SERVER_WAIT_S))
        goal = AskSpatialStream.Goal(question=question, **fields)
        feedback = None if on_feedback is None else (lambda msg: on_feedback(msg.feedback))
        self.stream = StreamCall(self._action_client().send_goal_async(goal, feedback),
                                 self.node.context, f"{self.prefix}/ask_stream")
        self.questions_sent += 1
        return self.stream.answer(wait_s)

    def wait_question_subscriber(self, wait_s: float = SERVER_WAIT_S,
                                 notice: Callable[[], None] | None = None) -> None:
        """Block until the node subscribes to the question topic (``notice`` after 1 s
        without it); NoAnswerError after ``wait_s``."""
        if not wait_until(lambda: self.question_pub.get_subscription_count() > 0, wait_s,
                          self.node.context, notice):
            raise NoAnswerError(f"nobody subscribes to {self.prefix}/question after "
                                f"{wait_s:g} s")

    def publish_question(self, query_id: int, question: str, **fields: Any) -> None:
        """Send a ``SpatialQuestion`` with ``fields`` (question_type, options, ...)."""
        self.question_pub.publish(SpatialQuestion(query_id=query_id, question=question,
                                                  **fields))
        self.questions_sent += 1

    def wait_answers(self, ids: list[int], wait_s: float = 300.0,
                     settle_s: float = 0.0) -> dict[int, list[SpatialAnswer]]:
        """The answers of ``ids`` once each has one, after a further ``settle_s`` in which a
        duplicate would show; NoAnswerError naming the missing ids after ``wait_s``."""
        end = time.monotonic() + wait_s
        with self._cond:
            while not all(i in self.answers for i in ids):
                left = end - time.monotonic()
                if left <= 0:
                    missing = sorted(set(ids) - set(self.answers))
                    raise NoAnswerError(f"no answer for ids {missing[:10]} "
                                        f"({len(missing)} in all)")
                _check_context(self.node.context)
                self._cond.wait(min(left, POLL_S))
        if settle_s > 0:
            time.sleep(settle_s)
        with self._cond:
            return {i: list(self.answers[i]) for i in ids}


class StreamCall:
    """One ``~/ask_stream`` goal of :meth:`AskClient.ask_stream`: its answer, or its cancel.

    Args:
        goal_future: ``ActionClient.send_goal_async``'s future (the goal handle).
        context: the client's ROS context (a wait ends when it is shut down).
        action_name: for messages.
    """

    def __init__(self, goal_future: Any, context: Any, action_name: str) -> None:
        self._goal_future = goal_future
        self._result_future: Any = None
        self._context = context
        self.action_name = action_name

    def _handle(self, wait_s: float) -> Any:
        handle = _wait_future(self._goal_future, wait_s, self._context)
        if handle is None:
            raise NoAnswerError(f"{self.action_name} did not acknowledge the question within "
                                f"{wait_s:g} s")
        if not handle.accepted:
            raise NoAnswerError(f"{self.action_name} rejected the question")
        return handle

    def _result(self, handle: Any, wait_s: float) -> SpatialAnswer | None:
        if self._result_future is None:
            self._result_future = handle.get_result_async()
        result = _wait_future(self._result_future, wait_s, self._context)
        return None if result is None else answer_of_result(result, self.action_name)

    def answer(self, wait_s: float) -> SpatialAnswer:
        """The goal's answer within ``wait_s`` seconds in all (NoAnswerError otherwise)."""
        end = time.monotonic() + wait_s
        handle = self._handle(wait_s)
        answer = self._result(handle, max(end - time.monotonic(), 0.0))
        if answer is None:
            raise NoAnswerError(f"no result from {self.action_name} within {wait_s:g} s")
        return answer

    def cancel(self, wait_s: float) -> SpatialAnswer | None:
        """Cancel the goal (the node stops generating within one token) and wait up to
        ``wait_s`` seconds in all for its answer: CANCELED with the text so far, or whatever
        the goal ended with first; None when none came (or it has no result)."""
        end = time.monotonic() + wait_s
        try:
            handle = self._handle(wait_s)
            handle.cancel_goal_async()
            return self._result(handle, max(end - time.monotonic(), 0.0))
        except NoAnswerError:
            return None
