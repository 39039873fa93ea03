"""launch/spatial_mllm.launch.py: started under launch_pytest where it is installed; checked
statically everywhere."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "spatial_mllm.launch.py"
CONFIG = LAUNCH.parents[1] / "config"
HAVE_LAUNCH = all(importlib.util.find_spec(m) is not None
                  for m in ("launch", "launch_ros", "launch_pytest"))
NO_LAUNCH = ("launch, launch_ros and launch_pytest are not installed (not on PyPI); the same "
             "node runs as real processes with a profile in test_answer_e2e.py and the demo")


def declared_arguments() -> dict[str, str]:
    """DeclareLaunchArgument(name, default_value=...) calls in the launch file."""
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(LAUNCH.read_text())):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"
                and node.args and isinstance(node.args[0], ast.Constant)):
            default = next((k.value for k in node.keywords if k.arg == "default_value"), None)
            out[str(node.args[0].value)] = (
                default.value if isinstance(default, ast.Constant) else "")
    return out


def remap_arguments() -> list[str]:
    """Keys of the launch file's REMAPS dict (one remapping argument each)."""
    for node in ast.walk(ast.parse(LAUNCH.read_text())):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(getattr(t, "id", "") == "REMAPS" for t in node.targets)):
            return [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
    return []


def test_launch_file_declares_a_profile_that_exists() -> None:
    args = declared_arguments()
    assert "profile" in args
    assert (CONFIG / f"{args['profile']}.yaml").is_file()
    for name in ("params_file", "namespace"):
        assert name in args, name
    assert {"colour_topic", "depth_topic", "camera_info_topic", "pose_topic"} <= set(
        remap_arguments())
    assert "remap" in args  # a multi-camera profile's topics (README "Several cameras")


def test_the_remap_argument_parses_pairs() -> None:
    """``parse_remaps`` of the launch file, run on its own (no launch package here)."""
    tree = ast.parse(LAUNCH.read_text())
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                and n.name == "parse_remaps")
    scope: dict[str, object] = {}
    exec(compile(ast.Module(body=[func], type_ignores=[]), str(LAUNCH), "exec"), scope)
    parse = scope["parse_remaps"]
    assert parse("") == []  # type: ignore[operator]
    assert parse("/front/color/image_raw=/cam_front/color/image_raw, /a=/b") == [  # type: ignore[operator]
        ("/front/color/image_raw", "/cam_front/color/image_raw"), ("/a", "/b")]
    with pytest.raises(ValueError, match="FROM=TO"):
        parse("/front/color/image_raw")  # type: ignore[operator]


if HAVE_LAUNCH:  # pragma: no cover - only on a ROS 2 install
    import launch_pytest
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    from launch import LaunchDescription

    @launch_pytest.fixture
    def launch_description() -> LaunchDescription:
        return LaunchDescription([
            IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH)),
                                     launch_arguments={"profile": "cpu_tiny"}.items()),
            launch_pytest.actions.ReadyToTest(),
        ])

    @pytest.mark.launch(fixture=launch_description)
    def test_launched_node_answers_with_the_profile() -> None:
        from spatial_mllm_ros.answering.types import AnswerStatus
        from spatial_mllm_ros.ros.client import AskClient

        with AskClient("launch_test_client") as client:
            answer = client.ask("How many chairs are in this room?", wait_s=180)
        assert answer.status == AnswerStatus.NO_FRAMES  # up, active, no camera yet
else:

    @pytest.mark.skip(reason=NO_LAUNCH)
    def test_launched_node_answers_with_the_profile() -> None:
        """Runs on a ROS 2 install (see the other branch)."""
