"""The node's answering side: the ``~/ask`` service, the ``~/question`` -> ``~/answer`` topic
pair, RViz markers, and the bounded question worker behind them.

Threads: the service is served by an executor of its own (``ros.ask_service``): a call
submits the question and blocks one of that executor's threads on an event that the worker
sets, so a waiting call holds neither a thread of the node's executor nor the GIL, and camera
callbacks keep running. (An ``async`` callback awaiting an rclpy Future would make the node's
executor busy-wait for the whole answer; see ``ros.ask_service``.) The model runs only on the
worker thread. Every question gets exactly one answer (see ``answering.worker``).

Routing: each interface has its own key space. A service call or an action goal is a
:class:`PendingCall` found by its request object (:class:`CallTable`), never by a query id:
topic questions carry caller-chosen ids, any of which may equal an id the node gave a call,
and a topic question must never take a call's answer. The answer of a call goes only to its
caller; only topic questions are answered on ``~/answer``.

Request QoS (``queue.request_depth``, reliable, keep last): the readers of the service, of
the action's goal, cancel and result services and of ``~/question`` keep that many requests
that arrived before the node took them, and the response writers that many responses not yet
acknowledged, so that a burst of simultaneous callers (each answered, BUSY beyond the queue)
is not cut to rclpy's default depth of 10.
"""

from __future__ import annotations

import collections
import enum
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode
from visualization_msgs.msg import MarkerArray

from spatial_mllm_ros.answering.errors import QueueClosedError
from spatial_mllm_ros.answering.handle import ModelHandle
from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import (
    STAGES,
    AnswerRecord,
    AnswerStatus,
    QuestionRequest,
)
from spatial_mllm_ros.answering.worker import QuestionWorker
from spatial_mllm_ros.msg import SpatialAnswer, SpatialQuestion
from spatial_mllm_ros.ros.answer_msgs import answer_msg, markers_msg, request_from_msg
from spatial_mllm_ros.ros.ask_service import AnswerWaiter, AskService
from spatial_mllm_ros.ros.ask_stream import AskStreamAction, StreamGoal
from spatial_mllm_ros.ros.qos import reliable_qos
from spatial_mllm_ros.sampling.online import SpatialFrameBuffer
from spatial_mllm_ros.srv import AskSpatial

__all__ = ["QUESTION_QOS_DEPTH", "AnswerServer", "CallTable", "Interface", "PendingCall"]

#: History depth of the answer topic (and of the clients' question publishers): a burst of
#: questions published at once must reach the worker (which answers the overflow BUSY) rather
#: than be dropped by DDS. The node's request readers use ``queue.request_depth``.
QUESTION_QOS_DEPTH = 1000

#: Query ids the node gives service calls and goals start here (they are echoed in the answer
#: and the log; routing never uses them).
SERVICE_ID_BASE = 1 << 62
#: How long deactivation waits for the question being answered before answering it
#: MODEL_ERROR "node shutting down" (seconds).
WORKER_STOP_TIMEOUT_S = 2.0
#: Longest wait at deactivate for the last answers to be acknowledged (seconds).
ACKED_WAIT_S = 1.0


class Interface(enum.Enum):
    """Where a question came in."""

    TOPIC = "topic"  # ~/question -> ~/answer, caller-chosen query ids
    SERVICE = "service"  # ~/ask
    ACTION = "action"  # ~/ask_stream


@dataclass
class PendingCall:
    """A service call or action goal waiting for its answer.

    Attributes:
        interface: ``SERVICE`` or ``ACTION``.
        request: the question; the call is found by this object, not by its query id.
        waiter: where the caller waits for its answer message.
        stream: the goal's progress and cancel (actions; None once the goal has returned).
    """

    interface: Interface
    request: QuestionRequest
    waiter: AnswerWaiter
    stream: StreamGoal | None = None


class CallTable:
    """The pending calls, by the identity of their request object (not thread-safe: the
    answer server holds its lock). A request object is unique while its call is registered
    (the call holds it), and a topic question is never registered, so no query id -- a
    caller's, or one the node gave -- can reach another caller's answer."""

    def __init__(self) -> None:
        self._calls: dict[int, PendingCall] = {}

    def add(self, call: PendingCall) -> None:
        self._calls[id(call.request)] = call

    def get(self, request: QuestionRequest) -> PendingCall | None:
        call = self._calls.get(id(request))
        return call if call is not None and call.request is request else None

    def pop(self, request: QuestionRequest) -> PendingCall | None:
        call = self.get(request)
        if call is not None:
            del self._calls[id(request)]
        return call

    def calls(self) -> list[PendingCall]:
        return list(self._calls.values())


class AnswerServer:
    """Answers questions for a :class:`LifecycleNode` from its frame buffer.

    Args:
        node: the owning node (publishers, services and subscriptions are created on it).
        buffer: the node's space-aware frame buffer.
        pipeline: the answering pipeline, or None when the model failed to load.
        model: the model handle the pipeline answers with (its status goes to /diagnostics).
        model_error: why the model is unavailable ("" when it loaded).
        queue_size: questions that may wait while one is answered.
        markers: publish a MarkerArray of each OK answer's 3D boxes on ``~/markers``.
        request_depth: history depth of the request readers (``queue.request_depth``); at
            least ``queue_size + 1`` is used.
    """

    def __init__(
        self,
        node: LifecycleNode,
        buffer: SpatialFrameBuffer,
        pipeline: AnsweringPipeline | None,
        model_error: str,
        queue_size: int,
        markers: bool,
        request_depth: int = QUESTION_QOS_DEPTH,
        model: ModelHandle | None = None,
    ) -> None:
        self.node = node
        self.model = model  # its status() goes to /diagnostics
        self.buffer = buffer
        self.pipeline = pipeline
        self.model_error = model_error
        self._markers_enabled = markers
        self._queue_size = queue_size
        self._request_depth = max(request_depth, queue_size + 1)
        self._topic_group = MutuallyExclusiveCallbackGroup()
        self._call_ids = itertools.count(SERVICE_ID_BASE)
        self._calls = CallTable()  # service calls and goals waiting for their answer
        # by the request object's id (topic query ids are the callers' and may repeat)
        self._cancels: dict[int, threading.Event] = {}  # the question being answered
        self._stopped_by_shutdown: set[int] = set()  # questions deactivate stopped
        self._stopping = threading.Event()  # set from deactivate until the next activate
        self._lock = threading.Lock()
        self.status_counts: collections.Counter[str] = collections.Counter()
        self.stage_totals_s: collections.Counter[str] = collections.Counter()
        self.last_timings_s: dict[str, float] = {}
        self.worker = QuestionWorker(self._handle, self._deliver, queue_size)
        self._service: AskService | None = None
        self._stream_action: AskStreamAction | None = None
        self._question_sub: Any = None
        self._answer_pub: Any = None
        self._marker_pub: Any = None

    # ----------------------------------------------------------------- lifecycle
    def activate(self) -> None:
        """Start the worker and create the service, topics and markers publisher."""
        requests = reliable_qos(self._request_depth)
        self._answer_pub = self.node.create_publisher(SpatialAnswer, "~/answer",
                                                      reliable_qos(QUESTION_QOS_DEPTH))
        self._marker_pub = self.node.create_publisher(MarkerArray, "~/markers", 10)
        self._stopping.clear()
        self.worker.start()
        self._service = AskService(self.node, AskSpatial, "~/ask", self._on_ask,
                                   max_blocked=self._queue_size + 1, qos=requests)
        self._stream_action = AskStreamAction(self.node, self._on_stream_goal,
                                              max_goals=self._queue_size + 1, qos=requests)
        self._question_sub = self.node.create_subscription(
            SpatialQuestion, "~/question", self._on_question, requests,
            callback_group=self._topic_group,
        )

    def deactivate(self) -> None:
        """Remove the service and topics; questions still queued are answered MODEL_ERROR,
        and so is the one being answered: its generation is stopped (between tokens, as a
        cancel), and the worker's stop gives up waiting for it after a bounded time (a stopped
        model process; the supervisor kills it ``grace_s`` after the stop)."""
        if self._question_sub is not None:
            self.node.destroy_subscription(self._question_sub)
        self._question_sub = None
        with self._lock:
            self._stopping.set()
            for key, cancel in self._cancels.items():
                if not cancel.is_set():
                    self._stopped_by_shutdown.add(key)
                    cancel.set()
        self.worker.stop(WORKER_STOP_TIMEOUT_S)  # from here on a new call: MODEL_ERROR at once
        self._release_waiters("node shutting down")
        if self._service is not None:
            self._service.close()
        self._service = None
        if self._stream_action is not None:
            self._stream_action.close()
        self._stream_action = None
        for pub in (self._answer_pub, self._marker_pub):
            if pub is not None:
                # the answers just given (MODEL_ERROR "shutting down") reach their
                # subscribers before the writer goes (bounded: a subscriber may be gone)
                try:
                    pub.wait_for_all_acked(Duration(seconds=ACKED_WAIT_S))
                except Exception as err:  # an RMW without it: the writer goes anyway
                    self.node.get_logger().debug(f"wait_for_all_acked: {err}")
                self.node.destroy_publisher(pub)
        self._answer_pub = self._marker_pub = None

    def reconfigure(self, pipeline: PipelineConfig, markers: bool) -> None:
        """Use new answering settings from the next question on (writable parameters changed
        at run time); the question being answered keeps the settings it started with."""
        old = self.pipeline
        if old is not None:  # a new pipeline: one question never mixes two configs
            self.pipeline = AnsweringPipeline(old.answerer, pipeline, limits=old.limits)
        self._markers_enabled = markers

    # ----------------------------------------------------------------- inputs
    def _on_ask(self, req: Any, resp: Any) -> Any:
        """Service callback (a thread of the service's own executor): blocks until answered."""
        request = request_from_msg(req, next(self._call_ids), time.monotonic())
        waiter = AnswerWaiter(request)
        with self._lock:
            self._calls.add(PendingCall(Interface.SERVICE, request, waiter))
        self._submit(request)
        msg = waiter.wait(self.node.context.ok)
        if msg is None:  # the process is shutting down: still one answer for the caller
            msg = self._failure_msg(request, "node shutting down")
        resp.answer = msg
        return resp

    def _on_stream_goal(self, goal: Any, stream: StreamGoal, alive: Callable[[], bool]) -> Any:
        """Action goal (a thread of the action's own executor): blocks until answered, while
        the worker streams the progress of its question."""
        request = request_from_msg(goal, next(self._call_ids), time.monotonic())
        waiter = AnswerWaiter(request)
        call = PendingCall(Interface.ACTION, request, waiter, stream)
        with self._lock:
            self._calls.add(call)
        stream.progress("queued", "", 0)
        self._submit(request)
        msg = waiter.wait(alive)
        with self._lock:
            call.stream = None  # the goal has its result: no more progress to it
        if msg is None:  # the process is shutting down: still one answer for the caller
            msg = self._failure_msg(request, "node shutting down")
        return msg

    def _on_question(self, msg: SpatialQuestion) -> None:
        try:
            self._submit(request_from_msg(msg, int(msg.query_id), time.monotonic()))
        except Exception as err:  # never let a message kill the node
            self.node.get_logger().error(
                f"question {msg.query_id}: {type(err).__name__}: {err}",
                throttle_duration_sec=2.0,
            )

    def _submit(self, request: QuestionRequest) -> None:
        """Queue ``request``; a bad question is answered INVALID_QUESTION at once, before the
        queue (never BUSY), on both paths."""
        pipeline = self.pipeline
        if pipeline is not None:
            refused = pipeline.precheck(request)
            if refused is not None:
                self._deliver(request, refused)
                return
        try:
            self.worker.submit(request)
        except QueueClosedError as err:
            self._deliver(request, AnswerRecord.failure(
                request, AnswerStatus.MODEL_ERROR, str(err)))

    # ----------------------------------------------------------------- worker side
    def _handle(self, request: QuestionRequest) -> AnswerRecord:
        pipeline = self.pipeline  # read once: reconfigure may replace it meanwhile
        if pipeline is None:
            return AnswerRecord.failure(request, AnswerStatus.MODEL_ERROR, self.model_error)
        with self._lock:
            call = self._calls.get(request)
            stream = call.stream if call is not None else None
            cancel = stream.cancel if stream is not None else threading.Event()
            key = id(request)  # unique while it is being answered
            if self._stopping.is_set() and not cancel.is_set():
                self._stopped_by_shutdown.add(key)
                cancel.set()
            self._cancels[key] = cancel
        try:
            record = pipeline.answer(request, self.buffer,
                                     stream.progress if stream is not None else None, cancel)
        finally:
            with self._lock:
                self._cancels.pop(key, None)
                by_shutdown = key in self._stopped_by_shutdown
                self._stopped_by_shutdown.discard(key)
        if by_shutdown and record.status in (AnswerStatus.CANCELED, AnswerStatus.MODEL_ERROR):
            # stopped by deactivate, not by its caller (or its model process did not return
            # in time after the stop): the answer says why
            why = "generation stopped" if record.status is AnswerStatus.CANCELED else record.error
            return AnswerRecord.failure(request, AnswerStatus.MODEL_ERROR,
                                        f"node shutting down ({why})")
        return record

    def _deliver(self, request: QuestionRequest, record: AnswerRecord) -> None:
        now_ns = self.node.get_clock().now().nanoseconds
        msg = answer_msg(record, now_ns)
        with self._lock:
            self.status_counts[record.status.name] += 1
            if record.status is AnswerStatus.OK:
                self.last_timings_s = dict(record.timings_s)
                self.stage_totals_s.update(record.timings_s)
            call = self._calls.pop(request)
        if call is not None:  # a service call or goal: its answer goes to its caller only
            call.waiter.set(msg)
        elif self._answer_pub is not None:  # a topic question
            self._answer_pub.publish(msg)
        if record.status is not AnswerStatus.OK:
            self.node.get_logger().info(
                f"query {record.query_id}: {record.status.name}: {record.error}",
                throttle_duration_sec=1.0,
            )
        elif self._markers_enabled and self._marker_pub is not None and record.boxes:
            self._marker_pub.publish(markers_msg(record, now_ns))

    def _failure_msg(self, request: QuestionRequest, reason: str) -> Any:
        record = AnswerRecord.failure(request, AnswerStatus.MODEL_ERROR, reason)
        return answer_msg(record, self.node.get_clock().now().nanoseconds)

    def _release_waiters(self, reason: str) -> None:
        """Answer every service call and goal still waiting MODEL_ERROR. The calls stay
        registered until the worker delivers their question, whose answer is then dropped: the
        call has had its one answer (and it must not reach the ``~/answer`` topic instead)."""
        with self._lock:
            calls = self._calls.calls()
        for call in calls:
            call.waiter.set(self._failure_msg(call.request, reason))

    # ----------------------------------------------------------------- diagnostics
    def stats(self) -> dict[str, object]:
        """Counters for diagnostics: answers by status, queue, model state, stage timings."""
        with self._lock:
            values: dict[str, object] = {
                f"answers.{k}": v for k, v in sorted(self.status_counts.items())
            }
            ok = self.status_counts.get("OK", 0)
            for stage in STAGES:
                values[f"timing.last.{stage}_s"] = f"{self.last_timings_s.get(stage, 0.0):.4f}"
                mean = self.stage_totals_s.get(stage, 0.0) / ok if ok else 0.0
                values[f"timing.mean.{stage}_s"] = f"{mean:.4f}"
        values["queue.waiting"] = self.worker.queued
        values["queue.busy"] = self.worker.busy
        values["model.loaded"] = self.pipeline is not None
        values["model.error"] = self.model_error
        if self.model is not None:  # a model process or server: ready, restarting, failed
            values.update(self.model.status().values())
        return values
