"""``~/ask_stream`` at close (deactivate, cleanup, a signal): a goal answered just before the
close still gets its result when its client asks for it after the close began -- a client asks
only once the goal's acceptance has reached it -- and the close does not wait for ever for a
client that never asks.

In-process (no node process, no model): an ``AskStreamAction`` on a bare node, with a submit
stand-in that answers at once; the client on its own node and executor in the same context.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

WAIT_S = 30.0


@dataclass
class Rig:
    stream: Any  # the AskStreamAction under test
    client: Any  # an rclpy ActionClient of it
    waiting: threading.Event  # set when close() starts waiting for result requests


def _answer(_request: Any, _goal: Any, _ok: Any) -> Any:
    from spatial_mllm_ros.msg import SpatialAnswer

    from spatial_mllm_ros.answering.types import AnswerStatus

    return SpatialAnswer(status=int(AnswerStatus.MODEL_ERROR), error="node shutting down")


@pytest.fixture
def rig() -> Iterator[Rig]:
    import rclpy
    from rclpy.action import ActionClient
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from spatial_mllm_ros.action import AskSpatialStream

    from spatial_mllm_ros.ros import ask_stream

    ctx = Context()
    rclpy.init(context=ctx)
    owner = rclpy.create_node(f"ask_stream_close_{os.getpid()}", context=ctx)
    stream = ask_stream.AskStreamAction(owner, _answer, max_goals=4)
    waiting = threading.Event()
    condition_wait = stream._sent.wait

    def wait(timeout: float | None = None) -> bool:  # the close's wait, observed
        waiting.set()
        return bool(condition_wait(timeout))

    stream._sent.wait = wait
    client_node = rclpy.create_node(f"ask_stream_close_client_{os.getpid()}", context=ctx)
    client = ActionClient(client_node, AskSpatialStream, stream.action_name)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(client_node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    assert client.wait_for_server(timeout_sec=WAIT_S)
    try:
        yield Rig(stream, client, waiting)
    finally:
        executor.shutdown(timeout_sec=2.0)
        client.destroy()
        client_node.destroy_node()
        owner.destroy_node()
        rclpy.shutdown(context=ctx)


def _accepted(rig: Rig) -> Any:
    from spatial_mllm_ros.action import AskSpatialStream

    future = rig.client.send_goal_async(AskSpatialStream.Goal(question="How many chairs?"))
    end = time.monotonic() + WAIT_S
    while not future.done() and time.monotonic() < end:
        time.sleep(0.01)
    assert future.done() and future.result().accepted
    return future.result()


def test_a_result_asked_for_after_the_close_began_still_comes(rig: Rig) -> None:
    handle = _accepted(rig)
    closing = threading.Thread(target=rig.stream.close, daemon=True)
    closing.start()
    assert rig.waiting.wait(WAIT_S), "close() did not wait for the result request"
    result = handle.get_result_async()  # asked only now, while the action is closing
    end = time.monotonic() + WAIT_S
    while not result.done() and time.monotonic() < end:
        time.sleep(0.01)
    assert result.done(), "the answered goal's result never came"
    assert result.result().result.answer.error == "node shutting down"
    closing.join(WAIT_S)
    assert not closing.is_alive()


def test_the_close_gives_up_on_a_client_that_never_asks(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    from spatial_mllm_ros.ros import ask_stream

    monkeypatch.setattr(ask_stream, "RESULT_REQUEST_WAIT_S", 0.5)
    _accepted(rig)
    closing = threading.Thread(target=rig.stream.close, daemon=True)
    closing.start()
    closing.join(WAIT_S)
    assert rig.waiting.is_set() and not closing.is_alive()
