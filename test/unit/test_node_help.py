"""``spatial_mllm_node --help``: usage and every parameter of the schema, without rclpy."""

from __future__ import annotations

import pytest

from spatial_mllm_ros import params as P
from spatial_mllm_ros.ros.node_cli import node_help, user_args, wants_help


@pytest.mark.parametrize(("argv", "expected"), [
    (["node", "--help"], True),
    (["node", "-h"], True),
    (["node"], False),
    (["node", "--ros-args", "-p", "sampling.frame_budget:=4"], False),
    (["node", "--ros-args", "--params-file", "-h"], False),  # a file named -h, a ROS arg
    (["node", "--ros-args", "-p", "a:=1", "--", "--help"], True),
    (["node", "--help", "--ros-args", "-r", "__ns:=/x"], True),
])
def test_help_is_asked_outside_the_ros_args(argv: list[str], expected: bool) -> None:
    assert wants_help(argv) is expected


def test_user_args_skip_every_ros_args_section() -> None:
    argv = ["n", "a", "--ros-args", "-p", "x:=1", "--", "b", "--ros-args", "-r", "c:=d"]
    assert user_args(argv) == ["a", "b"]


def test_help_lists_every_parameter_with_its_default() -> None:
    text = node_help()
    assert text.startswith("usage: spatial_mllm_node")
    for spec in P.SCHEMA:
        assert f"  {spec.name} ({spec.type.__name__}, default {spec.default!r}" in text
    assert "--ros-args" in text and "--params-file" in text
    assert "ros2 param describe" in text


def test_help_names_the_shipped_profiles() -> None:
    text = node_help()
    profiles = sorted(p.stem for p in P.config_dir().glob("*.yaml"))
    assert profiles, "config/ holds the profiles"
    for name in profiles:
        assert name in text


def test_help_names_the_camera_parameters() -> None:
    from spatial_mllm_ros.camera_params import FIELDS

    text = node_help()
    assert "cameras (string array, default []" in text
    for field in FIELDS:
        assert field in text.split("several cameras", 1)[1].split("parameters (", 1)[0]
