"""Lifecycle transitions over the real /spatial_mllm/change_state service from this process.

configure -> activate -> deactivate -> cleanup; the camera subscriptions exist only while the
node is active (checked in the ROS graph from this separate client process).
"""

from __future__ import annotations

import time

from testkit.processes import wait_node_state
from testkit.services import query, spinning
from testkit.services import transition as change_state

NODE = "spatial_mllm"
COLOUR = "/camera/camera/color/image_raw"


def _node_subscriptions(node) -> set[str]:
    try:
        return {name for name, _ in node.get_subscriber_names_and_types_by_node(NODE, "/")}
    except Exception:  # node not yet discovered
        return set()


def _wait_graph(node, predicate, timeout=15.0) -> set[str]:
    import rclpy

    deadline = time.monotonic() + timeout
    subs = _node_subscriptions(node)
    while time.monotonic() < deadline:
        subs = _node_subscriptions(node)
        if predicate(subs):
            return subs
        rclpy.spin_once(node, timeout_sec=0.1)
    raise AssertionError(f"graph condition not met within {timeout} s; subscriptions: {subs}")


def test_lifecycle_over_change_state_service(start_node, monitor):
    import rclpy
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    proc = start_node({"autostart": False, "diagnostics.period_s": 0.2})
    wait_node_state(monitor, proc, "unconfigured")
    client_node = rclpy.create_node("lifecycle_test_client")
    try:
        change = client_node.create_client(ChangeState, f"/{NODE}/change_state")
        get = client_node.create_client(GetState, f"/{NODE}/get_state")

        wait = spinning(client_node)

        def transition(tid: int) -> None:
            # configure loads the model: over 15 s on a loaded 2-core machine
            assert change_state(change, get, tid, wait, timeout_s=180.0), \
                f"transition {tid} failed; log:\n{proc.output()}"

        def state() -> str:
            return query(get, GetState.Request(), wait).current_state.label

        assert state() == "unconfigured"
        deadline = time.monotonic() + 15.0
        while NODE not in client_node.get_node_names() and time.monotonic() < deadline:
            rclpy.spin_once(client_node, timeout_sec=0.1)
        assert NODE in client_node.get_node_names()
        assert COLOUR not in _node_subscriptions(client_node)

        transition(Transition.TRANSITION_CONFIGURE)
        assert state() == "inactive"
        wait_node_state(monitor, proc, "inactive")
        assert COLOUR not in _node_subscriptions(client_node)

        transition(Transition.TRANSITION_ACTIVATE)
        assert state() == "active"
        subs = _wait_graph(client_node, lambda s: COLOUR in s)
        assert "/spatial_mllm/camera_pose" in subs
        wait_node_state(monitor, proc, "active")

        transition(Transition.TRANSITION_DEACTIVATE)
        assert state() == "inactive"
        _wait_graph(client_node, lambda s: COLOUR not in s)

        transition(Transition.TRANSITION_CLEANUP)
        assert state() == "unconfigured"
        wait_node_state(monitor, proc, "unconfigured")
        assert proc.alive()
    finally:
        client_node.destroy_node()


def test_invalid_parameter_is_refused_at_start_up(start_node):
    """A bad choice (one the ROS range cannot express) is refused before the node starts:
    exit 2 (ExitCode.USAGE) with one line naming it; never a node left up unconfigured
    (issue 16 point 7; test/cli/test_node_cli.py has the user's command lines)."""
    proc = start_node({"pairing.camera_info": "sometimes", "diagnostics.period_s": 0.2})
    assert proc.proc.wait(timeout=120) == 2, proc.output()
    lines = proc.output().strip().splitlines()
    assert "pairing.camera_info" in lines[-1] and "sometimes" in lines[-1], lines
    assert "Traceback" not in proc.output()
