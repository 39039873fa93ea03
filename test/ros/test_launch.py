"""launch/spatial_mllm.launch.py under launch_pytest (runs where launch_pytest is installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

launch_pytest = pytest.importorskip(
    "launch_pytest",
    reason="launch_pytest is not installed (not on PyPI); the same scenario runs as real "
           "processes in test_ingest_e2e.py",
)
pytest.importorskip("launch_ros", reason="launch_ros is not installed")

from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch_pytest.tools import process as process_tools  # noqa: E402

from launch import LaunchDescription  # noqa: E402

LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "spatial_mllm.launch.py"


@launch_pytest.fixture
def launch_description():
    return LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH)),
                                 launch_arguments={"profile": "cpu_tiny"}.items()),
        launch_pytest.actions.ReadyToTest(),
    ])


@pytest.mark.launch(fixture=launch_description)
async def test_node_starts_active(launch_context):
    node_proc = next(a for a in launch_context.launch_description.entities
                     if getattr(a, "name", "") == "spatial_mllm")  # pragma: no cover
    await process_tools.wait_for_output(
        node_proc, lambda out: "active: subscribed" in out, timeout=30)
