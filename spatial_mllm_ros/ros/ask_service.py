"""The ``~/ask`` service on an executor of its own, with blocking (not coroutine) callbacks.

Why not an ``async`` callback awaiting an rclpy Future on the node's executor: rclpy's
executors (Kilted) treat a task that awaits a pending Future as ready work whenever they wake
(ros2/rclpy#1405). While a question is answered, every camera message therefore also resumes
the waiting coroutine on a pool thread (one more thread hop, with the GIL, per wake-up) and
appends the same task once more to the executor's list of submitted handlers, which it
scans on every dispatch until the answer comes (measured: up to ~700 entries within one
answer of about a second, 30 Hz RGB-D), so the executor's work per camera message grows with
the time the question has been in flight. On the tiny model, even with 6 s answers, the
camera rate stayed within noise of its rate alone with either design
(``benchmarks/bench_answering.py``): the cost is for long answers on busy CPUs.

Here a service call blocks a thread of a small executor that serves only this service (on
a helper node in the node's context and namespace, named ``<node>_ask``); a blocked thread
waits on a ``threading.Event`` and holds neither the GIL nor a thread of the node's executor,
so camera callbacks keep all of theirs. The service keeps its name (the owning node's
``~/ask``, resolved with its remappings).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, ShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_services_default

__all__ = ["AnswerWaiter", "AskService"]

#: How often a waiting call checks that the ROS context is still up (seconds).
POLL_S = 0.2


class AnswerWaiter:
    """One service call waiting for its answer message (set once, from any thread)."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        """What the waiter was created for (the question), for whoever releases it."""
        self._event = threading.Event()
        self._msg: Any = None
        self._lock = threading.Lock()

    def set(self, msg: Any) -> bool:
        """Give the answer; False (and ignored) when one was already given."""
        with self._lock:
            if self._event.is_set():
                return False
            self._msg = msg
            self._event.set()
            return True

    def wait(self, alive: Callable[[], bool]) -> Any:
        """The answer, or None once ``alive()`` turns false before one came."""
        while not self._event.wait(POLL_S):
            if not alive():
                return None
        return self._msg


class AskService:
    """A service of ``owner`` (``name`` resolved by it) served by its own executor thread.

    Args:
        owner: the node whose service it is (context, namespace and name remapping).
        srv_type: the service type.
        name: the service name as ``owner`` would use it (e.g. ``~/ask``).
        callback: ``(request, response) -> response``; may block until the answer exists.
        max_blocked: calls that may block at once (the question queue plus the one being
            answered); the executor gets one more thread, so that a call beyond them (the
            queue is full: answered BUSY at once) is not delayed by waiting ones.
        qos: the service's QoS: its depth bounds the requests that may arrive before the
            executor takes them (rclpy's default keeps 10: a larger burst loses calls).
    """

    def __init__(
        self,
        owner: Node,
        srv_type: Any,
        name: str,
        callback: Callable[[Any, Any], Any],
        max_blocked: int,
        qos: QoSProfile = qos_profile_services_default,
    ) -> None:
        if max_blocked < 1:
            raise ValueError(f"max_blocked must be >= 1, got {max_blocked}")
        self.service_name = owner.resolve_service_name(name)
        self._node = Node(
            f"{owner.get_name()}_ask",
            namespace=owner.get_namespace(),
            context=owner.context,
            use_global_arguments=False,  # the name is resolved (and remapped) by the owner
            start_parameter_services=False,
        )
        self._service = self._node.create_service(
            srv_type, self.service_name, callback, qos_profile=qos,
            callback_group=ReentrantCallbackGroup(),
        )
        self._executor = MultiThreadedExecutor(num_threads=max_blocked + 1,
                                               context=owner.context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, name="spatial-mllm-ask",
                                        daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except (ExternalShutdownException, ShutdownException):
            pass  # the context or the executor was shut down
        except RuntimeError:  # a request taken while closing: its pool is already shut down
            pass

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop serving. Release blocked calls first: the callbacks running or queued are
        finished (their responses sent) before the service goes away."""
        self._executor.shutdown(timeout_sec=timeout_s)  # joins the executor's threads
        self._thread.join(timeout_s)
        self._node.destroy_service(self._service)
        self._node.destroy_node()
