"""Exactly one answer per caller, under a burst and against a peer that reuses ids
(real processes over DDS, the tiny model).

* Topic questions published with the ids the node gives its service calls and action goals
  (and with small ids) while two service calls and one goal wait: every caller gets its own
  answer, each topic question its own, and no service or action answer reaches ``~/answer``.
* 20 service callers (20 client nodes of this process, each with its own client) call at
  the same moment, and 20 action clients send a goal at the same moment: every request gets
  exactly one answer, the 15 beyond the question queue (4 waiting + 1 answered) BUSY.

The model process is stopped (SIGSTOP) while the requests arrive, so that the questions stay
pending (in flight and queued) exactly as long as the test needs; it is resumed (SIGCONT) to
let them finish.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from testkit.answering import AnswerDiagnostics, model_pid, wait_future
from testkit.processes import ANSWER_NODE_PARAMS

from spatial_mllm_ros.answering.types import AnswerStatus

PUB_ARGS = ("--reliability", "reliable", "--qos-depth", "100", "--rate", "30")
#: a model process stopped for the whole test is not taken for hung, nor its questions late
NODE_PARAMS = {**ANSWER_NODE_PARAMS, "answer.grounding": False, "queue.size": 4,
               "model.stop_grace_s": 60.0, "queue.timeout_s": 600.0}
CALLERS = 20
ACCEPTED = 4 + 1  # queue.size waiting + the one being answered
WAIT_S = 120.0
QUESTION = "How many chairs are in this room?"


@pytest.fixture
def streamed(fed_node: Any) -> Any:
    """The node process, active, that has emitted all 30 frames of a 30 Hz stream."""
    return fed_node(NODE_PARAMS, PUB_ARGS, count=30).node


@contextmanager
def stopped_model(node_pid: int) -> Iterator[None]:
    """The node's model process stopped (SIGSTOP) for the block, resumed after it."""
    child = model_pid(node_pid)
    os.kill(child, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):  # the failure inside says why
            os.kill(child, signal.SIGCONT)


def wait_all(futures: list[Any], timeout_s: float) -> int:
    """How many of ``futures`` are done once all are, or ``timeout_s`` has passed."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not all(f.done() for f in futures):
        time.sleep(0.05)
    return sum(f.done() for f in futures)


def wait_count(futures: list[Any], predicate: Callable[[Any], bool], want: int,
               timeout_s: float) -> int:
    """Wait until ``want`` done futures satisfy ``predicate`` (or ``timeout_s``); how many."""
    end = time.monotonic() + timeout_s
    while True:
        got = sum(1 for f in futures if f.done() and predicate(f.result()))
        if got >= want or time.monotonic() > end:
            return got
        time.sleep(0.05)


class Crowd:
    """``n`` client nodes in this process, spun by one executor thread, each with a client of
    ``~/ask`` and an action client of ``~/ask_stream``, with the response depth the README
    asks of callers in a burst (rmw_fastrtps delivers every response of a service to every
    client's response reader, which drops the oldest beyond its depth before it takes its
    own: with rclpy's default depth of 10, 2 to 4 of 20 clients lost their goal response
    here while the node had accepted all 20 goals)."""

    def __init__(self, n: int) -> None:
        from rclpy.action import ActionClient
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node
        from spatial_mllm_ros.action import AskSpatialStream
        from spatial_mllm_ros.srv import AskSpatial

        from spatial_mllm_ros.ros.answer_server import QUESTION_QOS_DEPTH
        from spatial_mllm_ros.ros.qos import reliable_qos

        qos = reliable_qos(QUESTION_QOS_DEPTH)
        self.nodes = [Node(f"burst_caller_{os.getpid()}_{k}") for k in range(n)]
        self.clients = [node.create_client(AskSpatial, "/spatial_mllm/ask", qos_profile=qos)
                        for node in self.nodes]
        self.actions = [ActionClient(node, AskSpatialStream, "/spatial_mllm/ask_stream",
                                     goal_service_qos_profile=qos,
                                     result_service_qos_profile=qos,
                                     cancel_service_qos_profile=qos)
                        for node in self.nodes]
        self.executor = MultiThreadedExecutor(num_threads=4)
        for node in self.nodes:
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def wait_servers(self) -> None:
        for client, action in zip(self.clients, self.actions, strict=True):
            assert client.wait_for_service(timeout_sec=30), "no ~/ask service"
            assert action.wait_for_server(timeout_sec=30), "no ~/ask_stream action"

    def close(self) -> None:
        for action in self.actions:
            action.destroy()
        self.executor.shutdown(timeout_sec=2.0)
        for node in self.nodes:
            node.destroy_node()
        self.thread.join(timeout=5.0)


@pytest.fixture
def crowd(answer_client: Any) -> Iterator[Crowd]:  # rclpy is initialised by the client
    c = Crowd(CALLERS)
    yield c
    c.close()


def _status(answer: Any) -> AnswerStatus:
    return AnswerStatus(int(answer.status))


def test_topic_questions_with_the_ids_of_pending_calls_never_take_their_answers(
    streamed: Any, answer_client: Any, crowd: Crowd
) -> None:
    from spatial_mllm_ros.action import AskSpatialStream
    from spatial_mllm_ros.srv import AskSpatial

    diag = AnswerDiagnostics(answer_client.node, streamed.pid)
    crowd.wait_servers()
    answer_client.wait_question_subscriber()
    texts = ["How many chairs are there? (service one)",
             "How many tables are there? (service two)",
             "How many sofas are there? (action three)"]
    # the ids the node gave its calls before (one counter from 1 << 62), and small ones
    ids = [(1 << 62) + k for k in range(6)] + list(range(6))
    with stopped_model(streamed.pid):
        first = crowd.clients[0].call_async(AskSpatial.Request(question=texts[0]))
        diag.wait(lambda v: v.get("queue.busy") == "True")  # in flight, held by the stop
        second = crowd.clients[1].call_async(AskSpatial.Request(question=texts[1]))
        goal = wait_future(crowd.actions[2].send_goal_async(
            AskSpatialStream.Goal(question=texts[2])), WAIT_S)
        assert goal.accepted
        result = goal.get_result_async()
        diag.wait(lambda v: v.get("queue.waiting") == "2")  # both wait in the queue
        for i in ids:  # empty: answered INVALID_QUESTION at once, before the queue
            answer_client.publish_question(i, "")
        topic = answer_client.wait_answers(ids, wait_s=30.0, settle_s=1.0)
    assert all(len(a) == 1 for a in topic.values()), "a topic id was answered twice"
    assert {_status(a[0]) for a in topic.values()} == {AnswerStatus.INVALID_QUESTION}
    assert wait_all([first, second, result], WAIT_S) == 3
    own = [first.result().answer, second.result().answer, result.result().result.answer]
    for text, answer in zip(texts, own, strict=True):
        assert answer.question == text, f"a caller got another question's answer: {answer}"
        assert _status(answer) == AnswerStatus.OK, answer.error
    time.sleep(1.0)  # an answer wrongly published on ~/answer would show by now
    published = {a.question for answers in answer_client.answers.values() for a in answers}
    assert not published & set(texts), "a service or action answer went to ~/answer"
    assert streamed.alive()


def test_20_simultaneous_service_calls_get_one_answer_each(
    streamed: Any, crowd: Crowd, answer_client: Any
) -> None:
    from spatial_mllm_ros.srv import AskSpatial

    crowd.wait_servers()
    diag = AnswerDiagnostics(answer_client.node, streamed.pid)
    requests = [AskSpatial.Request(question=QUESTION) for _ in crowd.clients]
    with stopped_model(streamed.pid):
        futures = [c.call_async(r) for c, r in zip(crowd.clients, requests, strict=True)]
        busy = wait_count(futures, lambda r: _status(r.answer) == AnswerStatus.BUSY,
                          CALLERS - ACCEPTED, 60.0)
        diag.wait(lambda v: v.get("queue.waiting") == "4")
    done = wait_all(futures, WAIT_S)
    assert (done, busy) == (CALLERS, CALLERS - ACCEPTED), \
        f"{done} of {CALLERS} calls answered ({busy} BUSY)"
    statuses = sorted(_status(f.result().answer).name for f in futures)
    assert statuses == ["BUSY"] * (CALLERS - ACCEPTED) + ["OK"] * ACCEPTED
    assert streamed.alive()


def test_20_simultaneous_goals_get_one_result_each(
    streamed: Any, crowd: Crowd, answer_client: Any
) -> None:
    from spatial_mllm_ros.action import AskSpatialStream

    crowd.wait_servers()
    with stopped_model(streamed.pid):
        sent = [a.send_goal_async(AskSpatialStream.Goal(question=QUESTION))
                for a in crowd.actions]
        acked = wait_all(sent, 60.0)
        assert acked == CALLERS, f"{acked} of {CALLERS} goals acknowledged"
        assert all(f.result().accepted for f in sent)
        results = [f.result().get_result_async() for f in sent]
        busy = wait_count(results, lambda r: _status(r.result.answer) == AnswerStatus.BUSY,
                          CALLERS - ACCEPTED, 60.0)
    done = wait_all(results, WAIT_S)
    assert (done, busy) == (CALLERS, CALLERS - ACCEPTED), \
        f"{done} of {CALLERS} results ({busy} BUSY)"
    statuses = sorted(_status(f.result().result.answer).name for f in results)
    assert statuses == ["BUSY"] * (CALLERS - ACCEPTED) + ["OK"] * ACCEPTED
    assert streamed.alive()
