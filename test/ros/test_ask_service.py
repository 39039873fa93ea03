"""The ``~/ask`` service in one process: a waiting call holds no thread of the node's
executor, the queue still answers BUSY at once, and every call gets exactly one answer, also
when the server is deactivated while its question is being answered.

In-process (no node process, no model): an AnswerServer on a LifecycleNode spun by a
single-threaded executor, with a pipeline stand-in that blocks until the test releases it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

WAIT_S = 30.0


@dataclass
class BlockingPipeline:
    """Answers NO_FRAMES "stand-in" once ``release`` is set; records what it was asked."""

    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    asked: list[str] = field(default_factory=list)
    answerer: Any = None

    def precheck(self, request: Any) -> Any:
        return None  # every question is a good one

    def answer(self, request: Any, buffer: Any, progress: Any = None, cancel: Any = None) -> Any:
        from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus

        self.asked.append(request.question)
        self.started.release()
        assert self.release.wait(WAIT_S), "the test never released the pipeline"
        return AnswerRecord.failure(request, AnswerStatus.NO_FRAMES, "stand-in")


@dataclass
class Rig:
    node: Any
    server: Any
    pipeline: BlockingPipeline
    client: Any
    events: Any  # a std_msgs subscription's received count, on the node's executor

    def call(self, question: str) -> Any:
        from spatial_mllm_ros.srv import AskSpatial

        req = AskSpatial.Request()
        req.question = question
        return self.client.call_async(req)


def _done(future: Any) -> Any:
    event = threading.Event()
    future.add_done_callback(lambda _f: event.set())
    assert event.wait(WAIT_S), "no answer within the wait"
    return future.result().answer


@pytest.fixture
def rig() -> Iterator[Rig]:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.lifecycle import LifecycleNode
    from spatial_mllm_ros.srv import AskSpatial
    from std_msgs.msg import Empty

    from spatial_mllm_ros.ros.answer_server import AnswerServer
    from spatial_mllm_ros.sampling.online import SpatialFrameBuffer

    ctx = Context()
    rclpy.init(context=ctx)
    name = f"ask_service_test_{os.getpid()}"
    node = LifecycleNode(name, context=ctx)
    pipeline = BlockingPipeline()
    server = AnswerServer(node, SpatialFrameBuffer(), pipeline,  # type: ignore[arg-type]
                          "", queue_size=1, markers=False)
    client_node = rclpy.create_node(f"{name}_client", context=ctx)
    client = client_node.create_client(AskSpatial, f"/{name}/ask")
    received = threading.Semaphore(0)
    sub = node.create_subscription(Empty, f"/{name}/tick", lambda _m: received.release(), 10)
    pub = client_node.create_publisher(Empty, f"/{name}/tick", 10)
    executor = SingleThreadedExecutor(context=ctx)  # the node's executor: one thread only
    executor.add_node(node)
    executor.add_node(client_node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    server.activate()
    assert client.wait_for_service(timeout_sec=WAIT_S)
    rig = Rig(node, server, pipeline, client, (received, pub))
    try:
        yield rig
    finally:
        pipeline.release.set()
        server.deactivate()
        node.destroy_subscription(sub)
        executor.shutdown(timeout_sec=2.0)
        client_node.destroy_node()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        spin.join(5.0)


def test_a_waiting_call_leaves_the_node_executor_free_and_gets_its_answer(rig: Rig) -> None:
    from std_msgs.msg import Empty

    from spatial_mllm_ros.answering.types import AnswerStatus

    future = rig.call("How many chairs are in this room?")
    assert rig.pipeline.started.acquire(timeout=WAIT_S)
    # the question is being answered and the call waits; the node's only executor thread
    # still runs the node's other callbacks
    received, pub = rig.events
    for _ in range(3):
        pub.publish(Empty())
        assert received.acquire(timeout=WAIT_S), "a waiting service call blocked the node"
    assert not future.done()
    rig.pipeline.release.set()
    answer = _done(future)
    assert answer.status == AnswerStatus.NO_FRAMES and answer.error == "stand-in"
    assert rig.pipeline.asked == ["How many chairs are in this room?"]


def test_a_full_queue_answers_busy_while_calls_wait(rig: Rig) -> None:
    from spatial_mllm_ros.answering.types import AnswerStatus

    first = rig.call("first")
    assert rig.pipeline.started.acquire(timeout=WAIT_S)
    queued = rig.call("second")  # waits in the queue of 1
    while rig.server.worker.queued < 1:
        assert not queued.done()
        threading.Event().wait(0.01)
    busy = _done(rig.call("third"))  # both waiting calls hold threads; this one is not held
    assert busy.status == AnswerStatus.BUSY and busy.error
    assert not first.done() and not queued.done()
    rig.pipeline.release.set()
    assert _done(first).status == AnswerStatus.NO_FRAMES
    assert _done(queued).status == AnswerStatus.NO_FRAMES
    assert rig.pipeline.asked == ["first", "second"]


def test_deactivate_answers_waiting_calls_once(rig: Rig) -> None:
    from spatial_mllm_ros.answering.types import AnswerStatus

    answering = rig.call("being answered")
    assert rig.pipeline.started.acquire(timeout=WAIT_S)
    queued = rig.call("queued")
    while rig.server.worker.queued < 1:
        threading.Event().wait(0.01)
    stopper = threading.Thread(target=rig.server.deactivate)
    stopper.start()  # the worker's stop waits for the answer in progress, then gives up
    got_queued = _done(queued)
    got_answering = _done(answering)
    stopper.join(WAIT_S)
    assert not stopper.is_alive()
    assert got_queued.status == AnswerStatus.MODEL_ERROR
    assert got_answering.status == AnswerStatus.MODEL_ERROR
    assert "shutting down" in got_answering.error
    rig.pipeline.release.set()  # the late answer of the first question reaches no one
    while any(t.name == "spatial-mllm-answer" for t in threading.enumerate()):
        threading.Event().wait(0.01)  # the stopped worker delivers it and ends
    assert rig.pipeline.asked == ["being answered"]
    rig.server.activate()  # and the service comes back
    assert rig.client.wait_for_service(timeout_sec=WAIT_S)
    future = rig.call("again")
    assert rig.pipeline.started.acquire(timeout=WAIT_S)
    assert _done(future).status == AnswerStatus.NO_FRAMES
