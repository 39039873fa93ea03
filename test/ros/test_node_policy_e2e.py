"""What another participant of the domain may do to a running node, and what it refuses
(README "Security and multi-tenant domains"), with real processes:

* a second node of the same fully qualified name refuses to start (exit 2), the first runs on;
* a parameter change that breaks a cross-field rule is refused with the rule as its reason;
* a lifecycle ``shutdown`` from another participant ends the node's process (exit 0);
* a ``CancelGoal`` that names no goal (cancel every goal) is refused (ERROR_REJECTED) by
  default, while a caller's cancel of its own goal still works;
* the shipped SROS2 policy (config/sros2/policy.xml) names every topic, service and action the
  node opens (read from the ROS graph of a running node).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import Any

from testkit.paths import REPO
from testkit.processes import ANSWER_NODE_PARAMS, node_status, run_publisher, wait_node_state

from spatial_mllm_ros.exitcodes import ExitCode

NODE = "/spatial_mllm"
POLICY = REPO / "config" / "sros2" / "policy.xml"


def _wait(future: Any, timeout_s: float = 60.0) -> Any:
    end = time.monotonic() + timeout_s
    while not future.done() and time.monotonic() < end:
        time.sleep(0.01)
    assert future.done(), "no response"
    return future.result()


def _call(client_node: Any, srv_type: Any, name: str, request: Any) -> Any:
    cli = client_node.create_client(srv_type, name)
    try:
        assert cli.wait_for_service(timeout_sec=30.0), f"no {name}"
        return _wait(cli.call_async(request))
    finally:
        client_node.destroy_client(cli)


def test_a_second_node_of_the_same_name_is_refused(start_node: Any, monitor: Any) -> None:
    first = start_node({"diagnostics.period_s": 0.2})
    wait_node_state(monitor, first, "active", timeout=180)
    second = start_node({"diagnostics.period_s": 0.2})
    code = second.proc.wait(timeout=120)
    out = second.output()
    assert code == ExitCode.USAGE, out
    assert f"a node named {NODE} is already running" in out, out
    assert f"pid {first.pid}" in out, out
    assert "Traceback" not in out, out
    assert first.alive()
    node_status(monitor, first, lambda v: v.get("state") == "active", fresh=True)


def test_a_parameter_change_that_breaks_a_cross_field_rule_is_refused(
        start_node: Any, monitor: Any, answer_client: Any) -> None:
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    proc = start_node({"diagnostics.period_s": 0.2, "sampling.max_frame_budget": 16})
    wait_node_state(monitor, proc, "active", timeout=180)

    def set_one(name: str, value: int) -> Any:
        req = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        res = _call(answer_client.node, SetParameters, f"{NODE}/set_parameters", req)
        return res.results[0]

    refused = set_one("sampling.frame_budget", 64)
    assert not refused.successful
    assert "sampling.max_frame_budget" in refused.reason and "16" in refused.reason
    refused = set_one("sampling.max_frame_budget", 4)  # below the frame budget, 8
    assert not refused.successful and "sampling.frame_budget" in refused.reason
    assert set_one("sampling.max_frame_budget", 64).successful  # in the rule's order: fine
    assert set_one("sampling.frame_budget", 64).successful


def test_a_lifecycle_shutdown_from_another_participant_ends_the_process(
        start_node: Any, monitor: Any, answer_client: Any) -> None:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    proc = start_node({"diagnostics.period_s": 0.2})
    wait_node_state(monitor, proc, "active", timeout=180)
    req = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVE_SHUTDOWN))
    assert _call(answer_client.node, ChangeState, f"{NODE}/change_state", req).success
    code = proc.proc.wait(timeout=60)
    assert code == ExitCode.OK, proc.output()
    assert "Traceback" not in proc.output(), proc.output()


def test_a_cancel_of_every_goal_is_refused_by_default(
        start_node: Any, monitor: Any, answer_client: Any) -> None:
    from action_msgs.srv import CancelGoal
    from rclpy.action import ActionClient
    from spatial_mllm_ros.action import AskSpatialStream

    proc = start_node({**ANSWER_NODE_PARAMS, "answer.max_new_tokens": 4096,
                       "answer.grounding": False})
    wait_node_state(monitor, proc, "active", timeout=180)
    run_publisher("--reliability", "reliable", "--qos-depth", "100", "--count", "15")
    node_status(monitor, proc, lambda v: int(v.get("buffer.frames", "0")) > 0)

    action = ActionClient(answer_client.node, AskSpatialStream, f"{NODE}/ask_stream")
    assert action.wait_for_server(timeout_sec=30.0)
    decoding = []
    handle = _wait(action.send_goal_async(
        AskSpatialStream.Goal(question="Describe the room in detail.", timeout_s=120.0),
        lambda fb: decoding.append(fb.feedback.stage == "decode")))
    assert handle.accepted
    end = time.monotonic() + 60
    while not any(decoding) and time.monotonic() < end:
        time.sleep(0.01)
    assert any(decoding), "the goal never started to generate"

    cancel_all = _call(answer_client.node, CancelGoal, f"{NODE}/ask_stream/_action/cancel_goal",
                       CancelGoal.Request())
    assert cancel_all.return_code == CancelGoal.Response.ERROR_REJECTED
    assert list(cancel_all.goals_canceling) == []

    own = _wait(handle.cancel_goal_async())  # the caller's own goal, by its id
    assert own.return_code == CancelGoal.Response.ERROR_NONE
    result = _wait(handle.get_result_async(), 120.0).result
    assert result.canceled
    action.destroy()


def _policy_names() -> dict[str, set[str]]:
    """The policy's names by kind (topics publish/subscribe, services reply, actions
    execute), ``~/`` expanded to the node's name."""
    out: dict[str, set[str]] = {"publish": set(), "subscribe": set(), "reply": set(),
                                "execute": set()}
    root = ET.parse(POLICY).getroot()
    for profile in root.iter("profile"):
        ns = profile.get("ns", "/").rstrip("/")
        base = f"{ns}/{profile.get('node')}"
        for group in profile:
            for kind in out:
                if group.get(kind) == "ALLOW":
                    out[kind] |= {e.text.replace("~", base, 1) if e.text.startswith("~")
                                  else e.text for e in group if e.text}
    return out


def test_the_sros2_policy_names_every_interface_the_node_opens(
        start_node: Any, monitor: Any, answer_client: Any) -> None:
    proc = start_node({"diagnostics.period_s": 0.2})
    wait_node_state(monitor, proc, "active", timeout=180)
    graph = answer_client.node
    names = _policy_names()
    ours = [(n, ns) for n, ns in graph.get_node_names_and_namespaces()
            if n.startswith("spatial_mllm")]
    assert {"spatial_mllm", "spatial_mllm_ask", "spatial_mllm_ask_stream"} <= {n for n, _ in ours}
    action = f"{NODE}/ask_stream/_action/"
    opened: dict[str, set[str]] = {"publish": set(), "subscribe": set(), "reply": set()}
    for name, ns in ours:
        opened["publish"] |= {t for t, _ in graph.get_publisher_names_and_types_by_node(name, ns)}
        opened["subscribe"] |= {
            t for t, _ in graph.get_subscriber_names_and_types_by_node(name, ns)}
        opened["reply"] |= {s for s, _ in graph.get_service_names_and_types_by_node(name, ns)}
    for kind, found in opened.items():
        # an action's services and topics are covered by its <actions execute> entry
        missing = {n for n in found if not n.startswith(action)} - names[kind]
        assert not missing, f"{kind} not in {POLICY}: {sorted(missing)}"
    assert f"{NODE}/ask_stream" in names["execute"]
    assert any(n.startswith(action) for n in opened["reply"])


def test_a_failed_transition_is_an_error_on_diagnostics() -> None:
    """A node whose configure failed (after its start-up checks) says so: the lifecycle status
    on /diagnostics is ERROR with the reason, never OK while it does not answer."""
    from diagnostic_msgs.msg import DiagnosticStatus

    from spatial_mllm_ros.ros.startup import lifecycle_status

    failed = lifecycle_status("unconfigured", "configure failed: no buffer", NODE)
    assert failed.level == DiagnosticStatus.ERROR
    assert "configure failed: no buffer" in failed.message
    assert lifecycle_status("active", "", NODE).level == DiagnosticStatus.OK
