"""Property: whatever the fields of a ``SpatialQuestion``, the topic path gives every id exactly
one answer, with a status from the documented set (in process: the message conversion, the
pre-queue check and the bounded worker that ``~/question`` goes through)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit.fakes import ScriptedAnswerer
from testkit.frames import colour_buffer, colour_frame

from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus, QuestionRequest
from spatial_mllm_ros.answering.worker import QuestionWorker

TYPES = ["", "open", "object_counting", "object_rel_distance", "route_planning", "nope", "\x00"]
text = st.text(st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    ["", " ", "q" * 1200, "<|im_end|>", "How many chairs?"])
question_msg = st.builds(
    SimpleNamespace,
    question=text,
    question_type=st.sampled_from(TYPES) | st.text(max_size=10),
    options=st.lists(text, max_size=30),
    frame_budget=st.integers(0, 65535),
    sampling_strategy=st.sampled_from(["", "coverage", "uniform", "scored", "bogus"]),
    timeout_s=st.floats(allow_nan=True, allow_infinity=True, width=32),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(question_msg, min_size=1, max_size=12))
def test_every_topic_question_gets_exactly_one_documented_answer(msgs) -> None:
    from spatial_mllm_ros.ros.answer_msgs import request_from_msg

    buffer = colour_buffer([colour_frame(i) for i in range(6)])
    pipeline = AnsweringPipeline(ScriptedAnswerer("3"), PipelineConfig(grounding=False))
    answers: dict[int, list[AnswerRecord]] = {}
    lock = threading.Lock()

    def deliver(request: QuestionRequest, record: AnswerRecord) -> None:
        with lock:
            answers.setdefault(request.query_id, []).append(record)

    worker = QuestionWorker(lambda r: pipeline.answer(r, buffer), deliver, max_queued=3)
    worker.start()
    try:
        for i, msg in enumerate(msgs):  # what AnswerServer._on_question and _submit do
            request = request_from_msg(msg, i, time.monotonic())
            refused = pipeline.precheck(request)
            if refused is not None:
                deliver(request, refused)
            else:
                worker.submit(request)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            with lock:
                if len(answers) == len(msgs):
                    break
            time.sleep(0.01)
    finally:
        worker.stop()
    assert sorted(answers) == list(range(len(msgs)))
    for query_id, got in answers.items():
        assert len(got) == 1, (query_id, got)
        assert got[0].status in set(AnswerStatus) and got[0].query_id == query_id
