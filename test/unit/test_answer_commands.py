"""The answering command (what ``spatial-mllm-infer`` runs) and the answer's one JSON form."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from testkit.fakes import ScriptedAnswerer

from spatial_mllm_ros.answering.commands import answer_frames, fill_buffer
from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import (
    STAGES,
    AnswerRecord,
    AnswerStatus,
    PlacedBox,
    QuestionRequest,
)
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.sampling.online import BufferConfig
from spatial_mllm_ros.synthetic.walkthrough import make_walkthrough
from spatial_mllm_ros.vsibench.boxes import Box2D

GROUNDING = '```json\n[{"bbox_2d": [10, 10, 40, 30], "label": "chair"}]\n```'


@pytest.fixture(scope="module")
def scene_frames() -> list[Frame]:
    return make_walkthrough(seed=3, n_frames=24, width=160, height=120).frames


def test_answer_frames_is_the_node_pipeline_on_a_buffer_of_the_frames(
    scene_frames: list[Frame],
) -> None:
    buffer = BufferConfig(max_frames=64, depth_stride=4)
    config = PipelineConfig(frame_budget=6)
    request = QuestionRequest(query_id=3, question="How many chairs are in this room?",
                              received_s=1.0)
    command = answer_frames(ScriptedAnswerer("2", GROUNDING), scene_frames, request, config,
                            buffer, clock=lambda: 5.0)
    node = AnsweringPipeline(ScriptedAnswerer("2", GROUNDING), config, clock=lambda: 1.0).answer(
        request, fill_buffer(scene_frames, buffer))
    assert command.status is AnswerStatus.OK, command.error
    assert len(command.frame_stamps_ns) == 6
    # asked once the frames are in: no queue wait, however long the caller took before
    assert command.timings_s["queue_wait"] == 0.0
    got, want = command.to_json(), node.to_json()
    got.pop("timings_s"), want.pop("timings_s")
    assert got == want
    # boxes (answer and grounding pass) are on the last selected frame, as on the node
    assert command.boxes
    assert {b.stamp_ns for b in command.boxes} == {command.frame_stamps_ns[-1]}


def test_answer_frames_without_an_admitted_frame_is_no_frames() -> None:
    request = QuestionRequest(query_id=1, question="How many chairs?")
    record = answer_frames(ScriptedAnswerer("2"), [], request, PipelineConfig(), BufferConfig())
    assert record.status is AnswerStatus.NO_FRAMES


def _record() -> AnswerRecord:
    box = Box2D("chair", math.nan, 1.0, 2.0, 3.0, 4.0, position=np.array([0.5, 1.0, 2.0]))
    return AnswerRecord(
        query_id=9, question="How far?", status=AnswerStatus.OK,
        question_type="object_abs_distance", answer="1.5", numeric_value=1.5,
        boxes=[PlacedBox(box, 7, "cam", "map", extent_m=(0.2, 0.3, 0.2)),
               PlacedBox(Box2D("", 0.5, 0.0, 0.0, 1.0, 1.0), 7, "cam", "")],
        frame_stamps_ns=[5, 7], strategy="coverage", coverage=math.inf,
        timings_s={"decode": 0.25, "total": 1.0}, world_frame_id="map",
    )


def test_to_json_has_every_stage_no_nan_and_what_the_message_carries() -> None:
    d = _record().to_json()
    assert list(d["timings_s"]) == list(STAGES)  # type: ignore[call-overload]
    assert d["timings_s"] == {**dict.fromkeys(STAGES, 0.0), "decode": 0.25, "total": 1.0}
    assert d["coverage"] is None and d["uniform_coverage"] is None  # inf and NaN
    assert d["status"] == "OK" and d["world_frame_id"] == "map"
    first, second = d["boxes"]  # type: ignore[misc]
    assert first == {"label": "chair", "score": None, "xyxy": [1.0, 2.0, 3.0, 4.0],
                     "stamp_ns": 7, "frame_id": "cam", "position": [0.5, 1.0, 2.0],
                     "position_frame_id": "map"}
    assert second["position"] is None and second["score"] == 0.5
    json.dumps(d, allow_nan=False)  # strict JSON


def test_failure_has_the_same_keys_as_an_answer() -> None:
    request = QuestionRequest(query_id=1, question="q")
    failure = AnswerRecord.failure(request, AnswerStatus.BUSY, "queue full")
    assert set(failure.to_json()) == set(_record().to_json())
