"""ros.matching: which graph subscriptions a publisher waits for (no processes)."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest


def test_node_names_bare_or_fully_qualified() -> None:
    from spatial_mllm_ros.ros.matching import is_node

    root = NS(node_name="spatial_mllm", node_namespace="/")
    robot = NS(node_name="spatial_mllm", node_namespace="/robot")
    assert is_node("spatial_mllm", root) and is_node("spatial_mllm", robot)
    assert is_node("/spatial_mllm", root) and not is_node("/spatial_mllm", robot)
    assert is_node("/robot/spatial_mllm", robot) and not is_node("/robot/spatial_mllm", root)
    assert not is_node("spatial", root) and not is_node("other", robot)


@pytest.mark.parametrize(
    ("pub", "sub", "match"),
    [
        (("reliable", "volatile"), ("best_effort", "volatile"), True),
        (("reliable", "volatile"), ("reliable", "volatile"), True),
        (("best_effort", "volatile"), ("best_effort", "volatile"), True),
        (("best_effort", "volatile"), ("reliable", "volatile"), False),
        (("reliable", "volatile"), ("reliable", "transient_local"), False),
        (("reliable", "transient_local"), ("reliable", "volatile"), True),
    ],
)
def test_only_policies_that_can_match_count(pub: tuple[str, str], sub: tuple[str, str],
                                            match: bool) -> None:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from spatial_mllm_ros.ros.matching import may_match

    def profile(reliability: str, durability: str) -> QoSProfile:
        return QoSProfile(depth=10, reliability=ReliabilityPolicy[reliability.upper()],
                          durability=DurabilityPolicy[durability.upper()])

    assert may_match(profile(*pub), profile(*sub)) is match
