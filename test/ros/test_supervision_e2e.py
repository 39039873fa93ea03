"""The node survives its model and its operators (real processes over DDS).

* the model process killed mid-answer: that answer MODEL_ERROR, /diagnostics ERROR while it is
  down, an OK answer after the restart, from the frames buffered before the kill;
* the model process stopped (SIGSTOP) with a 5 s deadline: TIMEOUT soon after the deadline
  (the node kills and restarts it), later questions OK;
* huge questions on both paths: INVALID_QUESTION at once;
* the ``~/ask_stream`` action: feedback before the result, cancel after the first token;
* SIGINT with questions queued and in flight on the service, the topic and the action: every
  one answered exactly once, and the node exits.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from testkit.processes import (
    ANSWER_NODE_PARAMS,
    counter,
    node_status,
    run_publisher,
    stamps_ns,
    wait_node_state,
)

from spatial_mllm_ros.answering.types import AnswerStatus

PUB_ARGS = ("--reliability", "reliable", "--qos-depth", "100", "--rate", "30", "--count", "45")


def model_pid(node_pid: int, timeout_s: float = 60.0) -> int:
    """The model process: the node's child running ``spatial-mllm-model``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) != node_pid:
                continue
            try:  # not multiprocessing's resource tracker, the other child
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                return int(entry.name)
        time.sleep(0.2)
    raise AssertionError(f"node {node_pid} has no model process")


class AnswerDiagnostics:
    """Every ``spatial_mllm: answering`` status of /diagnostics, as (level, values)."""

    def __init__(self, node: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        from spatial_mllm_ros.ros.diagnostics import ANSWER_STATUS_NAME
        from spatial_mllm_ros.ros.qos import reliable_qos

        self.seen: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()

        def on_diag(msg: Any) -> None:
            for st in msg.status:
                if st.name == ANSWER_STATUS_NAME:
                    with self._lock:
                        self.seen.append((int.from_bytes(st.level, "little")
                                          if isinstance(st.level, bytes) else int(st.level),
                                          {kv.key: kv.value for kv in st.values}))

        self.sub = node.create_subscription(DiagnosticArray, "/diagnostics", on_diag,
                                            reliable_qos(50))

    def states(self) -> list[str]:
        with self._lock:
            return [v.get("model.state", "") for _, v in self.seen]

    def error_seen(self) -> bool:
        with self._lock:
            return any(level == 2 for level, _ in self.seen)


@pytest.fixture
def streamed(start_node: Any, monitor: Any) -> tuple[Any, set[int]]:
    proc = start_node({**ANSWER_NODE_PARAMS, "answer.grounding": False})
    wait_node_state(monitor, proc, "active", timeout=120)
    summary = run_publisher(*PUB_ARGS)
    node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 45)
    return proc, set(summary["good_stamps_ns"])


def test_a_killed_or_stopped_model_process_is_restarted(
    streamed: tuple[Any, set[int]], answer_client: Any
) -> None:
    proc, published = streamed
    diag = AnswerDiagnostics(answer_client.node)
    assert answer_client.ask("How many chairs are in this room?").status == AnswerStatus.OK

    # stopped: the deadline (5 s) is kept; the hung process is killed and started again
    child = model_pid(proc.pid)
    os.kill(child, signal.SIGSTOP)
    t0 = time.monotonic()
    late = answer_client.ask("How many chairs are in this room?", timeout_s=5.0, wait_s=60)
    waited = time.monotonic() - t0
    assert late.status == AnswerStatus.TIMEOUT, late.error
    assert waited < 5.0 + 5.0, waited  # deadline + grace, not the 20 s the stop lasts

    def ok_again(deadline_s: float = 90.0) -> Any:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            ans = answer_client.ask("How many chairs are in this room?", wait_s=60)
            if ans.status == AnswerStatus.OK:
                return ans
            assert ans.status == AnswerStatus.MODEL_ERROR, ans.error
            time.sleep(1.0)
        raise AssertionError("no OK answer after the restart")

    after_stop = ok_again()
    assert set(stamps_ns(after_stop)) <= published
    assert model_pid(proc.pid) != child

    # killed mid-answer: that question MODEL_ERROR, then OK from the same buffer
    child = model_pid(proc.pid)
    result: dict[str, Any] = {}
    asker = threading.Thread(target=lambda: result.setdefault(
        "ans", answer_client.ask("How far is the sofa from the stove?", wait_s=90)))
    asker.start()
    time.sleep(0.3)
    os.kill(child, signal.SIGKILL)
    asker.join(120)
    assert result["ans"].status in (AnswerStatus.MODEL_ERROR, AnswerStatus.OK)
    if result["ans"].status == AnswerStatus.MODEL_ERROR:
        assert "model process" in result["ans"].error
    again = ok_again(60.0)
    assert set(stamps_ns(again)) <= published  # the camera buffer survived
    time.sleep(1.0)
    assert diag.error_seen() and "restarting" in diag.states()
    assert diag.states()[-1] == "ready"
    assert proc.alive()


def test_huge_questions_are_refused_at_once_on_both_paths(
    streamed: tuple[Any, set[int]], answer_client: Any
) -> None:
    proc, _ = streamed
    options = [f"{chr(65 + i)}. " + "x" * 40_000 for i in range(26)]
    ans = answer_client.ask("Which is nearest?", question_type="object_rel_distance",
                            options=options)
    assert ans.status == AnswerStatus.INVALID_QUESTION and "options" in ans.error
    answer_client.wait_question_subscriber()
    answer_client.publish_question(71, "q" * 5_000_000)
    answer_client.publish_question(72, "Which is nearest?", question_type="object_rel_distance",
                                   options=options)
    got = answer_client.wait_answers([71, 72], wait_s=60, settle_s=0.5)
    assert [a.status for a in got[71]] == [AnswerStatus.INVALID_QUESTION]
    assert [a.status for a in got[72]] == [AnswerStatus.INVALID_QUESTION]
    assert proc.alive()


def _stream(client_node: Any, goal_fields: dict[str, Any], freeze_pid: int | None = None
            ) -> tuple[list[Any], Any, int]:
    """One goal of ``~/ask_stream``: its feedback, its result, and (with ``freeze_pid``) the
    tokens generated when it was canceled.

    To cancel after the first token whatever the machine's speed, the model process
    ``freeze_pid`` is stopped (SIGSTOP) at the first ``decode`` feedback; once its feedback
    has stopped coming, the goal is canceled, the cancel is accepted, and the process resumes.
    """
    from rclpy.action import ActionClient
    from spatial_mllm_ros.action import AskSpatialStream

    action = ActionClient(client_node, AskSpatialStream, "/spatial_mllm/ask_stream")
    assert action.wait_for_server(timeout_sec=30)
    feedback: list[Any] = []
    first_token = threading.Event()

    def on_feedback(msg: Any) -> None:
        if msg.feedback.stage == "decode" and freeze_pid is not None \
                and not first_token.is_set():
            os.kill(freeze_pid, signal.SIGSTOP)
            first_token.set()
        feedback.append(msg.feedback)

    def wait(future: Any, timeout_s: float) -> Any:
        end = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < end:
            time.sleep(0.01)
        assert future.done()
        return future.result()

    handle = wait(action.send_goal_async(AskSpatialStream.Goal(**goal_fields), on_feedback), 60)
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
            response = wait(handle.cancel_goal_async(), 30)
            assert len(response.goals_canceling) == 1  # accepted: the question's event is set
            time.sleep(1.0)  # the node's answering thread passes the cancel on to the pipe
        finally:
            os.kill(freeze_pid, signal.SIGCONT)
    result = wait(handle.get_result_async(), 180)
    action.destroy()
    return feedback, result.result, at_cancel


def test_the_action_streams_and_cancels(start_node: Any, monitor: Any,
                                        answer_client: Any) -> None:
    proc = start_node({**ANSWER_NODE_PARAMS, "answer.max_new_tokens": 2000,
                       "answer.grounding": False})
    wait_node_state(monitor, proc, "active", timeout=120)
    run_publisher(*PUB_ARGS)
    node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 45)
    feedback, result, _ = _stream(answer_client.node, {"question": "What is on the shelf?",
                                                       "question_type": "open"})
    stages = [f.stage for f in feedback]
    assert len(feedback) >= 2 and stages[0] == "queued" and "decode" in stages
    assert not result.canceled and result.answer.status == AnswerStatus.OK
    tokens = [f.num_tokens for f in feedback if f.stage == "decode"]
    assert tokens == sorted(tokens) and tokens[-1] <= 2000

    feedback, result, at_cancel = _stream(
        answer_client.node, {"question": "What is on the shelf?", "question_type": "open"},
        freeze_pid=model_pid(proc.pid))
    assert result.canceled and result.answer.status == AnswerStatus.CANCELED
    decoded = [f.num_tokens for f in feedback if f.stage == "decode"]
    assert 1 <= at_cancel < 2000
    assert decoded[-1] <= at_cancel + 1  # stopped within one token of the cancel
    assert f"after {decoded[-1]} generated tokens" in result.answer.error
    assert proc.alive()


def test_sigint_answers_everything_once_and_exits(
    start_node: Any, monitor: Any, answer_client: Any
) -> None:
    proc = start_node({**ANSWER_NODE_PARAMS, "answer.max_new_tokens": 64, "queue.size": 8,
                       "answer.grounding": False})
    wait_node_state(monitor, proc, "active", timeout=120)
    run_publisher(*PUB_ARGS)
    node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 45)
    answer_client.wait_question_subscriber()
    results: dict[str, list[Any]] = {"service": [], "action": []}

    def ask_service() -> None:
        try:
            results["service"].append(answer_client.ask("How many chairs?", wait_s=60))
        except Exception as err:  # the count below says what is missing
            results["service"].append(err)

    def ask_action() -> None:
        try:
            results["action"].append(_stream(answer_client.node,
                                             {"question": "How many chairs?"})[1])
        except Exception as err:
            results["action"].append(err)

    threads = [threading.Thread(target=ask_service) for _ in range(2)]
    threads += [threading.Thread(target=ask_action) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(3):
        answer_client.publish_question(300 + i, "How far is the sofa from the stove?")
    time.sleep(1.0)  # one in flight, the rest queued
    proc.proc.send_signal(signal.SIGINT)
    code = proc.proc.wait(timeout=15)
    for t in threads:
        t.join(60)
    topic = answer_client.wait_answers([300, 301, 302], wait_s=10, settle_s=0.5)
    assert all(len(topic[i]) == 1 for i in (300, 301, 302))
    assert len(results["service"]) == 2 and len(results["action"]) == 2
    for ans in results["service"]:
        assert not isinstance(ans, Exception), ans
        assert ans.status in (AnswerStatus.OK, AnswerStatus.MODEL_ERROR)
    for res in results["action"]:
        assert not isinstance(res, Exception), res
        assert res.answer.status in (AnswerStatus.OK, AnswerStatus.MODEL_ERROR)
    assert code == 0
    assert "Traceback" not in proc.log.read_text()


def test_ask_cli_streams_tokens(start_node: Any, monitor: Any) -> None:
    import subprocess
    import sys

    from testkit.processes import REPO

    proc = start_node({**ANSWER_NODE_PARAMS, "answer.max_new_tokens": 8,
                       "answer.grounding": False})
    wait_node_state(monitor, proc, "active", timeout=120)
    run_publisher(*PUB_ARGS)
    node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 45)
    res = subprocess.run(
        [sys.executable, "-m", "spatial_mllm_ros.ros.ask_cli", "--stream", "--json",
         "What is on the shelf?", "--type", "open"],
        cwd=REPO, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "[queued]" in res.stderr and "[encoders]" in res.stderr
    import json

    assert json.loads(res.stdout)["status"] == "OK"
