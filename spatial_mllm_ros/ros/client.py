"""rclpy clients of the node that spin in a background thread: the question client used by
``spatial-mllm-ask``, the demo, the benchmarks and the tests, and the base they share with the
diagnostics reader (``ingest_monitor``).

Every wait of the calling (main) thread is a ``time.sleep`` or a ``threading`` wait, so a
signal handler that raises (``spatial_mllm_ros.ros.interrupts``) ends it at once."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any, Self

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from spatial_mllm_ros.msg import SpatialAnswer, SpatialQuestion
from spatial_mllm_ros.ros.answer_server import QUESTION_QOS_DEPTH
from spatial_mllm_ros.ros.qos import reliable_qos
from spatial_mllm_ros.srv import AskSpatial

__all__ = ["AskClient", "BackgroundNode", "NoAnswerError"]


class NoAnswerError(TimeoutError):
    """No answer arrived in time (no node, no service, or a slow model)."""


class BackgroundNode:
    """A node spun by its own executor thread. Initialises rclpy if needed (and shuts it down
    on close in that case); ``rclpy_signal_handlers=False`` keeps rclpy's SIGINT/SIGTERM
    handlers out of that initialisation (for a tool that handles the signals itself)."""

    def __init__(self, node_name: str, *, rclpy_signal_handlers: bool = True) -> None:
        self._own_context = not rclpy.ok()
        if self._own_context:
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
        self._thread.join(timeout=2.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AskClient(BackgroundNode):
    """Asks the node through the ``<prefix>/ask`` service or the ``<prefix>/question`` ->
    ``<prefix>/answer`` topic pair; keeps every answer seen on the topic (a list per id).

    Attributes:
        questions_sent: service requests and question messages sent so far.
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
        self.client: Any = self.node.create_client(AskSpatial, f"{prefix}/ask")
        self.prefix = prefix

    def _on_answer(self, msg: SpatialAnswer) -> None:
        with self._cond:
            self.answers.setdefault(int(msg.query_id), []).append(msg)
            self._cond.notify_all()

    def ask(self, question: str, wait_s: float = 120.0, **fields: Any) -> SpatialAnswer:
        """Call the service with ``fields`` of ``AskSpatial.Request`` (e.g. ``timeout_s``, the
        node's deadline); the answer, or :class:`NoAnswerError` after ``wait_s``."""
        if not self.client.wait_for_service(timeout_sec=min(wait_s, 30.0)):
            raise NoAnswerError(f"no service {self.prefix}/ask")
        request = AskSpatial.Request(question=question, **fields)
        done = threading.Event()
        future = self.client.call_async(request)
        self.questions_sent += 1
        future.add_done_callback(lambda _f: done.set())
        end = time.monotonic() + wait_s
        while not future.done() and (left := end - time.monotonic()) > 0:
            done.wait(min(left, 0.1))  # the callback may be scheduled on the executor later
        result = future.result() if future.done() else None
        if result is None:
            raise NoAnswerError(f"no answer from {self.prefix}/ask within {wait_s:.0f} s")
        answer: SpatialAnswer = result.answer
        return answer

    def wait_question_subscriber(self, wait_s: float = 30.0) -> None:
        """Block until the node subscribes to the question topic (NoAnswerError otherwise)."""
        end = time.monotonic() + wait_s
        while self.question_pub.get_subscription_count() == 0 and time.monotonic() < end:
            time.sleep(0.05)
        if self.question_pub.get_subscription_count() == 0:
            raise NoAnswerError(f"nobody subscribes to {self.prefix}/question")

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
                self._cond.wait(left)
        if settle_s > 0:
            time.sleep(settle_s)
        with self._cond:
            return {i: list(self.answers[i]) for i in ids}
