"""One answer JSON form: a ``SpatialAnswer`` received by a client (``spatial-mllm-ask --json``)
prints exactly what ``AnswerRecord.to_json`` gives offline (``spatial-mllm-infer``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatial_mllm_ros.answering.types import STAGES, AnswerRecord, AnswerStatus, PlacedBox
from spatial_mllm_ros.vsibench.boxes import Box2D


def _records() -> list[AnswerRecord]:
    # values exact in float32, the message's type for coverage, box corners and score
    posed = Box2D("blue box", 0.75, 10.5, 20.25, 110.0, 220.0, position=np.array([0.1, -2.5, 3.0]))
    plain = Box2D("bag", math.nan, 0.0, 1.0, 2.0, 3.0)
    ok = AnswerRecord(
        query_id=2**40 + 3, question="How far is the box from the bag?",
        status=AnswerStatus.OK, question_type="object_abs_distance", answer="1.25",
        numeric_value=1.25, option="",
        boxes=[PlacedBox(posed, 1_700_000_000_123_456_789, "cam_optical", "map"),
               PlacedBox(plain, 1_700_000_000_123_456_789, "cam_optical", "")],
        frame_stamps_ns=[1_699_999_999_000_000_001, 1_700_000_000_123_456_789],
        strategy="coverage", coverage=0.5, uniform_coverage=0.375,
        timings_s={"queue_wait": 0.001, "sampling": 0.25, "decode": 1.5, "total": 2.0},
        world_frame_id="map", notes=["16 frames asked, 2 used: the buffer holds 2 frames"],
    )
    mc = AnswerRecord(query_id=5, question="Which is closer?", status=AnswerStatus.OK,
                      question_type="object_rel_distance", answer="B", option="B",
                      strategy="uniform", timings_s=dict.fromkeys(STAGES, 0.125))
    failures = [AnswerRecord(query_id=7, question="?", status=s, error=f"reason {s.name}")
                for s in AnswerStatus if s is not AnswerStatus.OK]
    return [ok, mc, *failures]


@pytest.mark.parametrize("record", _records(), ids=lambda r: f"{r.status.name}-{r.query_id}")
def test_message_and_back_equals_to_json(record: AnswerRecord) -> None:
    from spatial_mllm_ros.ros.answer_msgs import answer_msg
    from spatial_mllm_ros.ros.ask_cli import answer_to_dict

    received = answer_to_dict(answer_msg(record, now_ns=1_800_000_000_000_000_000))
    expected = record.to_json()
    assert received == expected
    assert {k: type(v) for k, v in received.items()} == {k: type(v) for k, v in expected.items()}
    for got, want in zip(received["boxes"], expected["boxes"], strict=True):  # type: ignore[arg-type]
        assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}
