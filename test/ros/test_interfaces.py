"""The generated interfaces, as a shell prepared by the README line imports them."""

from __future__ import annotations

import subprocess

import pytest
from testkit.processes import REPO

from spatial_mllm_ros.answering.types import STAGES, AnswerStatus


def test_spatial_answer_fields_and_status_constants() -> None:
    from spatial_mllm_ros.msg import SpatialAnswer

    fields = SpatialAnswer.get_fields_and_field_types()
    assert fields["header"] == "std_msgs/Header"
    assert fields["query_id"] == "uint64"
    for name in ("question", "question_type", "answer", "option", "error",
                 "sampling_strategy"):
        assert fields[name] == "string", name
    assert fields["numeric_value"] == "double"
    assert fields["boxes"] == "sequence<spatial_mllm_ros/ObjectBox>"
    assert fields["frame_stamps"] == "sequence<builtin_interfaces/Time>"
    assert fields["coverage"] == "float"
    assert fields["timings"] == "spatial_mllm_ros/StageTimings"
    assert fields["status"] == "uint8"
    # the pure status enum and the message constants are the same numbers
    for status in AnswerStatus:
        assert getattr(SpatialAnswer, f"STATUS_{status.name}") == status.value


def test_object_box_and_stage_timings_fields() -> None:
    from spatial_mllm_ros.msg import ObjectBox, StageTimings

    box = ObjectBox.get_fields_and_field_types()
    assert box["header"] == "std_msgs/Header"
    assert box["label"] == "string" and box["score"] == "float"
    assert all(box[k] == "float" for k in ("x_min", "y_min", "x_max", "y_max"))
    assert box["has_position"] == "boolean"
    assert box["position"] == "geometry_msgs/Point"
    assert list(StageTimings.get_fields_and_field_types()) == list(STAGES)


def test_ask_service_and_question_topic_fields() -> None:
    from spatial_mllm_ros.msg import SpatialQuestion
    from spatial_mllm_ros.srv import AskSpatial

    req = AskSpatial.Request.get_fields_and_field_types()
    assert req == {
        "question": "string", "question_type": "string", "options": "sequence<string>",
        "frame_budget": "uint16", "sampling_strategy": "string", "timeout_s": "float",
    }
    assert AskSpatial.Response.get_fields_and_field_types() == {
        "answer": "spatial_mllm_ros/SpatialAnswer"}
    q = SpatialQuestion.get_fields_and_field_types()
    assert {k: v for k, v in q.items() if k in req} == req
    assert q["query_id"] == "uint64"


def test_readme_shell_line_imports_interfaces_outside_the_checkout(tmp_path) -> None:
    """`source .venv/bin/activate && source install/setup.bash` then import, from elsewhere."""
    script = (f"source {REPO}/.venv/bin/activate && source {REPO}/install/setup.bash && "
              "python -c 'import spatial_mllm_ros.msg as m, spatial_mllm_ros.srv as s; "
              "print(m.SpatialAnswer.STATUS_MODEL_ERROR, s.AskSpatial.__name__)'")
    if not (REPO / ".venv").is_dir() or not (REPO / "install" / "setup.bash").is_file():
        pytest.skip("needs `make setup` (the .venv and the colcon install space)")
    res = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={"PATH": "/usr/bin:/bin",
                                                      "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["5", "AskSpatial"]
