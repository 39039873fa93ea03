"""Lifecycle transitions and SIGINT answer every question exactly once (real processes over DDS).

One node process goes through three rounds. Before each, its model process is stopped
(SIGSTOP), so that what is in flight stays in flight: one question is being answered -- from
the service before ``deactivate``, from the topic before ``deactivate`` + ``cleanup``, from the
action before SIGINT -- and four more wait on each of the service, the topic and the action
(12 queued, as the node's own /diagnostics says). Then:

* every id has exactly one answer, MODEL_ERROR "node shutting down", and none of the service's
  or the action's answers reaches the ``~/answer`` topic;
* the node stays up: after ``activate`` (and ``configure`` + ``activate`` after the cleanup,
  with its model process still stopped at the cleanup) it answers OK again;
* after SIGINT it exits with code 0 within 15 s.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from testkit.answering import (
    AnswerDiagnostics,
    action_client,
    change_state,
    model_pid,
    stream_goal,
)
from testkit.processes import (
    ANSWER_NODE_PARAMS,
    counter,
    node_status,
    run_publisher,
    wait_node_state,
)

from spatial_mllm_ros.answering.types import AnswerStatus
from spatial_mllm_ros.params import NODE_NAME

PUB_ARGS = ("--reliability", "reliable", "--qos-depth", "100", "--rate", "30", "--count", "45")
PARAMS = {**ANSWER_NODE_PARAMS, "answer.grounding": False, "queue.size": 16,
          "queue.timeout_s": 120.0}
QUESTION = "How many chairs are in this room?"
PATHS = ("service", "topic", "action")
QUEUED_PER_PATH = 4


class Round:
    """The questions of one round, asked on the three paths, and their answers."""

    def __init__(self, client: Any, first_topic_id: int) -> None:
        self.client = client
        self.topic_ids: list[int] = []
        self.service: list[Any] = []
        self.action: list[Any] = []
        self._next_id = first_topic_id
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def ask(self, path: str) -> None:
        if path == "topic":
            self.client.publish_question(self._next_id, QUESTION)
            self.topic_ids.append(self._next_id)
            self._next_id += 1
            return

        def call() -> None:
            try:
                if path == "service":
                    got = self.client.ask(QUESTION, wait_s=120)
                else:
                    got = stream_goal(self.client.node, {"question": QUESTION})[1].answer
            except Exception as err:  # the checks below say what is missing
                got = err
            with self._lock:
                (self.service if path == "service" else self.action).append(got)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        self._threads.append(thread)

    def answers(self) -> list[Any]:
        """Every answer of the round (checks one per question on each path)."""
        for thread in self._threads:
            thread.join(150)
        topic = self.client.wait_answers(self.topic_ids, wait_s=60, settle_s=1.0)
        assert all(len(topic[i]) == 1 for i in self.topic_ids), topic
        calls = sum(1 for t in self._threads)
        assert len(self.service) + len(self.action) == calls
        got = self.service + self.action + [topic[i][0] for i in self.topic_ids]
        for answer in got:
            assert not isinstance(answer, Exception), answer
        return got


def _freeze_with_questions(proc: Any, diag: AnswerDiagnostics, rnd: Round,
                           in_flight: str) -> int:
    """Stop the model process; one question of ``in_flight`` being answered, four of each path
    waiting. Returns the stopped model process's pid."""
    child = model_pid(proc.pid)
    os.kill(child, signal.SIGSTOP)
    rnd.ask(in_flight)
    diag.wait(lambda v: v.get("queue.busy") == "True" and v.get("queue.waiting") == "0")
    for path in PATHS:
        for _ in range(QUEUED_PER_PATH):
            rnd.ask(path)
    diag.wait(lambda v: v.get("queue.waiting") == str(QUEUED_PER_PATH * len(PATHS)))
    return child


def _resume(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:  # the supervisor killed it after the stop
        pass


def _all_shutting_down(answers: list[Any]) -> None:
    assert len(answers) == 1 + QUEUED_PER_PATH * len(PATHS)
    for answer in answers:
        assert answer.status == AnswerStatus.MODEL_ERROR, (answer.status, answer.error)
        assert "shutting down" in answer.error, answer.error


def _ok_again(client: Any, timeout_s: float = 90.0) -> Any:
    """An OK answer once the (restarted) model process serves again."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        answer = client.ask(QUESTION, wait_s=60)
        if answer.status == AnswerStatus.OK:
            return answer
        assert answer.status == AnswerStatus.MODEL_ERROR, answer.error  # restarting
        time.sleep(1.0)
    raise AssertionError("no OK answer")


def _stream_frames(monitor: Any, proc: Any) -> None:
    run_publisher(*PUB_ARGS)
    node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 45, timeout=60)


def test_deactivate_cleanup_and_sigint_answer_every_question_once(
    start_node: Any, monitor: Any, answer_client: Any
) -> None:
    from lifecycle_msgs.msg import Transition

    proc = start_node(PARAMS)
    wait_node_state(monitor, proc, "active", timeout=120)
    diag = AnswerDiagnostics(answer_client.node, proc.pid)
    answer_client.wait_question_subscriber()
    action_client(answer_client.node)  # made now: matched by the server long before round 3
    _stream_frames(monitor, proc)
    assert _ok_again(answer_client).status == AnswerStatus.OK

    # 1. deactivate, a service question in flight
    rnd = Round(answer_client, 1000)
    child = _freeze_with_questions(proc, diag, rnd, "service")
    assert change_state(answer_client.node, NODE_NAME, Transition.TRANSITION_DEACTIVATE)
    _resume(child)
    _all_shutting_down(rnd.answers())
    topic_ids = list(rnd.topic_ids)
    assert change_state(answer_client.node, NODE_NAME, Transition.TRANSITION_ACTIVATE)
    answer_client.wait_question_subscriber()
    _ok_again(answer_client)  # from the buffer kept through deactivate

    # 2. deactivate and cleanup, a topic question in flight; the model process is stopped
    #    again at the cleanup (the supervisor killed the first one after the stop)
    rnd = Round(answer_client, 2000)
    child = _freeze_with_questions(proc, diag, rnd, "topic")
    assert change_state(answer_client.node, NODE_NAME, Transition.TRANSITION_DEACTIVATE)
    _resume(child)
    _all_shutting_down(rnd.answers())
    topic_ids += rnd.topic_ids
    child = model_pid(proc.pid)
    os.kill(child, signal.SIGSTOP)
    try:
        assert change_state(answer_client.node, NODE_NAME, Transition.TRANSITION_CLEANUP)
    finally:
        _resume(child)
    wait_node_state(monitor, proc, "unconfigured")
    assert change_state(answer_client.node, NODE_NAME, Transition.TRANSITION_CONFIGURE)
    assert change_state(answer_client.node, NODE_NAME, Transition.TRANSITION_ACTIVATE)
    wait_node_state(monitor, proc, "active", timeout=120)
    answer_client.wait_question_subscriber()
    _stream_frames(monitor, proc)  # cleanup emptied the buffer
    _ok_again(answer_client)

    # 3. SIGINT, an action goal in flight
    rnd = Round(answer_client, 3000)
    child = _freeze_with_questions(proc, diag, rnd, "action")
    proc.proc.send_signal(signal.SIGINT)
    code = proc.proc.wait(timeout=15)
    _resume(child)
    _all_shutting_down(rnd.answers())
    topic_ids += rnd.topic_ids
    assert code == 0
    assert "Traceback" not in proc.log.read_text()
    # no service or action answer went to the topic instead
    assert sorted(answer_client.answers) == sorted(topic_ids)
