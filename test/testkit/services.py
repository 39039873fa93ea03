"""Service calls of the real-process tests that do not hang on a lost response.

A request can be served while its response never arrives: Fast DDS sends a response only to
a client whose response reader the server has matched, and a client created just before the
call (a new node, a new client) may not be matched yet on a loaded machine (a CI run saw
``get_state`` unanswered for 15 s this way). So:

* a **query** (``get_state``, ``get_parameters``: asking twice changes nothing) is sent again
  after ``attempt_s`` without a response, until ``timeout_s``;
* a **lifecycle transition** is never sent twice: without its response, the node's state (a
  query) says whether the transition happened.

``wait(future, seconds) -> done`` completes the future: :func:`spinning` spins a node no
executor thread spins; :func:`polling` waits for a node spun by its own executor thread.
Importing this module needs neither rclpy nor the built interfaces.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["GOAL_STATE", "Waiter", "polling", "query", "spinning", "transition"]

#: ``wait(future, seconds)``: whether the future is done within ``seconds``.
Waiter = Callable[[Any, float], bool]

#: The state a lifecycle transition (``lifecycle_msgs/Transition`` id) ends in on success.
GOAL_STATE: dict[int, str] = {1: "inactive", 2: "unconfigured", 3: "active", 4: "inactive"}


def spinning(node: Any) -> Waiter:
    """A waiter that spins ``node`` (no executor thread may spin it) until the future is done."""
    import rclpy

    def wait(future: Any, seconds: float) -> bool:
        rclpy.spin_until_future_complete(node, future, timeout_sec=max(seconds, 0.0))
        return bool(future.done())

    return wait


def polling(future: Any, seconds: float) -> bool:
    """Wait for a future that the node's own executor thread completes."""
    end = time.monotonic() + seconds
    while not future.done() and time.monotonic() < end:
        time.sleep(0.01)
    return bool(future.done())


def query(client: Any, request: Any, wait: Waiter, timeout_s: float = 30.0,
          attempt_s: float = 5.0) -> Any:
    """The response to ``request``, a query: sent again every ``attempt_s`` without a
    response; AssertionError after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    assert client.wait_for_service(timeout_sec=timeout_s), f"{client.srv_name} not available"
    attempts = 0
    while True:
        attempts += 1
        future = client.call_async(request)
        left = end - time.monotonic()
        if wait(future, min(attempt_s, max(left, 0.0))):
            return future.result()
        client.remove_pending_request(future)
        if time.monotonic() >= end:
            raise AssertionError(f"{client.srv_name}: no response to {attempts} requests in"
                                 f" {timeout_s} s")


def transition(change: Any, get: Any, transition_id: int, wait: Waiter,
               timeout_s: float = 180.0) -> bool:
    """Ask the ``change_state`` client ``change`` for a transition, once; whether it succeeded.
    Without a response within ``timeout_s``, whether the node's state (``get``, a
    ``get_state`` client) is the transition's goal state."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    assert change.wait_for_service(timeout_sec=30.0), f"{change.srv_name} not available"
    future = change.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
    if wait(future, timeout_s):
        return bool(future.result().success)
    change.remove_pending_request(future)
    state = query(get, GetState.Request(), wait).current_state.label
    return state == GOAL_STATE[transition_id]
