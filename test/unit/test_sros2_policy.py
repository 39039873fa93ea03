"""config/sros2/policy.xml: well-formed SROS2 policy XML that names the node's interfaces.

What the node opens at run time is checked against a running node's graph in
test/ros/test_node_policy_e2e.py; here, without ROS: the file parses, has the policy format's
structure (version 0.2.0, one enclave, profiles of the node and its helper nodes, ALLOW rules
of known kinds), and names the defaults of the camera topics and every question interface.
Where ``sros2`` is installed (a ROS 2 install), the file is validated against its schema too.
"""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET

import pytest
from testkit.paths import REPO

from spatial_mllm_ros import params as P
from spatial_mllm_ros.core.topic_kinds import TOPIC_PARAMS

POLICY = REPO / "config" / "sros2" / "policy.xml"
#: element of a rule group -> the attributes it may carry
RULE_KINDS = {"topics": {"publish", "subscribe"}, "services": {"reply", "request"},
              "actions": {"call", "execute"}}


def _entries(kind: str, access: str) -> set[str]:
    root = ET.parse(POLICY).getroot()
    found: set[str] = set()
    for group in root.iter(kind):
        if group.get(access) == "ALLOW":
            found |= {(e.text or "").strip() for e in group}
    return found


def test_the_policy_has_the_sros2_structure() -> None:
    root = ET.parse(POLICY).getroot()
    assert root.tag == "policy" and root.get("version") == "0.2.0"
    enclaves = root.findall("./enclaves/enclave")
    assert [e.get("path") for e in enclaves] == ["/spatial_mllm"]
    profiles = enclaves[0].findall("./profiles/profile")
    assert {p.get("node") for p in profiles} == {
        "spatial_mllm", "spatial_mllm_ask", "spatial_mllm_ask_stream"}
    for profile in profiles:
        assert profile.get("ns") == "/"
        for group in profile:
            assert group.tag in RULE_KINDS, group.tag
            assert set(group.attrib) <= RULE_KINDS[group.tag], group.attrib
            assert set(group.attrib.values()) == {"ALLOW"}
            assert len(group) > 0 and all((e.text or "").strip() for e in group)


def test_the_policy_names_the_nodes_interfaces() -> None:
    subscribed = _entries("topics", "subscribe")
    for name in TOPIC_PARAMS.values():
        topic = str(P.spec(name).default)
        assert not topic or topic in subscribed, topic
    assert {"~/question", "/diagnostics"} <= subscribed
    assert {"~/answer", "~/markers", "/diagnostics", "~/transition_event", "/rosout",
            "/parameter_events"} <= _entries("topics", "publish")
    assert {"/spatial_mllm/ask", "~/change_state", "~/set_parameters"} <= _entries(
        "services", "reply")
    assert _entries("actions", "execute") == {"/spatial_mllm/ask_stream"}


def test_the_policy_is_valid_for_sros2() -> None:
    if importlib.util.find_spec("sros2") is None:
        pytest.skip("sros2 is not installed (a ROS 2 install has it: ros-<distro>-sros2); "
                    "its schema validation is skipped")
    from sros2.policy import load_policy  # type: ignore[import-not-found]

    load_policy(POLICY)  # raises on a document its schema refuses
