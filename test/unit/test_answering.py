"""Answering pipeline and question worker, with a scripted answerer (no model, no ROS)."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from testkit.fakes import ScriptedAnswerer

from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import (
    AnswerRecord,
    AnswerStatus,
    QuestionRequest,
)
from spatial_mllm_ros.answering.worker import QuestionWorker
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer
from spatial_mllm_ros.synthetic.walkthrough import make_walkthrough


@pytest.fixture(scope="module")
def scene_frames() -> list[Frame]:
    return make_walkthrough(seed=3, n_frames=24, width=160, height=120).frames


def filled_buffer(frames: list[Frame]) -> SpatialFrameBuffer:
    buf = SpatialFrameBuffer(BufferConfig(max_frames=64, depth_stride=4))
    for f in frames:
        buf.add(f)
    return buf


def ask(question: str, **kw: object) -> QuestionRequest:
    return QuestionRequest(query_id=7, question=question, received_s=0.0, **kw)  # type: ignore[arg-type]


def test_ok_answer_has_typed_value_stamps_coverage_and_timings(scene_frames: list[Frame]) -> None:
    buf = filled_buffer(scene_frames)
    answerer = ScriptedAnswerer("3")
    pipe = AnsweringPipeline(answerer, PipelineConfig(frame_budget=8), clock=lambda: 1.0)
    rec = pipe.answer(ask("How many chairs are in this room?"), buf)
    assert rec.status is AnswerStatus.OK, rec.error
    assert rec.query_id == 7
    assert rec.question_type == "object_counting"
    assert rec.numeric_value == 3.0
    published = {f.stamp_ns for f in scene_frames}
    assert 0 < len(rec.frame_stamps_ns) <= 8
    assert set(rec.frame_stamps_ns) <= published
    assert rec.frame_stamps_ns == sorted(rec.frame_stamps_ns)
    assert 0.0 < rec.coverage <= 1.0
    assert rec.coverage >= rec.uniform_coverage
    assert rec.timings_s["vision_2d"] == pytest.approx(0.02)  # answer + grounding pass
    # No checkpoint layout on the answerer: the v1.1 family's wording.
    assert answerer.calls[0][1] == (
        "How many chairs are in this room?\n"
        "Please answer the question using a single word or phrase."
    )


@pytest.mark.parametrize(
    ("layout", "template", "expected"),
    [
        ("v1.0", "auto", "How many chairs are in this room? Please answer with the only "
         "numerical value (e.g., 42, 3.14, etc.) within the <answer> </answer> tags."),
        ("v1.1", "auto", "How many chairs are in this room?\n"
         "Please answer the question using a single word or phrase."),
        ("v1.0", "lmms-eval", "These are frames of a video.\nHow many chairs are in this "
         "room?\nPlease answer the question using a single word or phrase."),
    ],
)
def test_prompt_family_follows_the_loaded_checkpoint(
    scene_frames: list[Frame], layout: str, template: str, expected: str
) -> None:
    answerer = ScriptedAnswerer("<answer>3</answer>")
    answerer.checkpoint_layout = layout  # type: ignore[attr-defined]
    config = PipelineConfig(frame_budget=8, grounding=False, prompt_template=template)
    rec = AnsweringPipeline(answerer, config, clock=lambda: 1.0).answer(
        ask("How many chairs are in this room?"), filled_buffer(scene_frames))
    assert rec.status is AnswerStatus.OK, rec.error
    assert answerer.calls[0][1] == expected
    assert rec.answer == "3" and rec.numeric_value == 3.0


def test_boxes_are_mapped_to_original_pixels_with_world_positions(
    scene_frames: list[Frame],
) -> None:
    buf = filled_buffer(scene_frames)
    grounding = '```json\n[{"bbox_2d": [10, 10, 40, 30], "label": "chair"}]\n```'
    pipe = AnsweringPipeline(ScriptedAnswerer("2", grounding), clock=lambda: 1.0)
    rec = pipe.answer(ask("How many chairs are in this room?"), buf)
    assert rec.status is AnswerStatus.OK
    assert len(rec.boxes) == 1
    placed = rec.boxes[0]
    assert placed.box.label == "chair"
    # the model saw half-size frames: pixels double in the original frame
    assert (placed.box.x_min, placed.box.y_min, placed.box.x_max, placed.box.y_max) == (
        20.0, 20.0, 80.0, 60.0)
    assert placed.stamp_ns == rec.frame_stamps_ns[-1]
    assert placed.box.position is not None and np.all(np.isfinite(placed.box.position))
    assert placed.position_frame_id == scene_frames[0].world_frame_id


def test_multiple_choice_gives_option_letter(scene_frames: list[Frame]) -> None:
    buf = filled_buffer(scene_frames)
    pipe = AnsweringPipeline(ScriptedAnswerer("B."), PipelineConfig(grounding=False),
                             clock=lambda: 1.0)
    rec = pipe.answer(
        ask("Which is closer to the sofa?", question_type="object_rel_distance",
            options=("A. table", "B. tv")),
        buf,
    )
    assert rec.status is AnswerStatus.OK
    assert rec.option == "B"
    assert math.isnan(rec.numeric_value)


@pytest.mark.parametrize(
    ("request_kw", "why"),
    [
        ({"question": ""}, "empty"),
        ({"question": "x" * 5000}, "long"),
        ({"question": "How far?", "question_type": "not_a_type"}, "type"),
        ({"question": "How far?", "strategy": "random_walk"}, "strategy"),
        ({"question": "How far?", "frame_budget": 1000}, "budget"),
    ],
)
def test_invalid_requests(scene_frames: list[Frame], request_kw: dict[str, object],
                          why: str) -> None:
    buf = filled_buffer(scene_frames[:4])
    answerer = ScriptedAnswerer("1")
    pipe = AnsweringPipeline(answerer, clock=lambda: 1.0)
    rec = pipe.answer(QuestionRequest(query_id=1, **request_kw), buf)  # type: ignore[arg-type]
    assert rec.status is AnswerStatus.INVALID_QUESTION, why
    assert rec.error
    assert answerer.calls == []


def test_empty_buffer_is_no_frames() -> None:
    pipe = AnsweringPipeline(ScriptedAnswerer("1"), clock=lambda: 1.0)
    rec = pipe.answer(ask("How many chairs?"), SpatialFrameBuffer(BufferConfig()))
    assert rec.status is AnswerStatus.NO_FRAMES


def test_past_deadline_is_timeout_without_calling_the_model(scene_frames: list[Frame]) -> None:
    answerer = ScriptedAnswerer("1")
    pipe = AnsweringPipeline(answerer, clock=lambda: 10.0)
    rec = pipe.answer(ask("How many chairs?", timeout_s=0.001), filled_buffer(scene_frames[:4]))
    assert rec.status is AnswerStatus.TIMEOUT
    assert answerer.calls == []


def test_model_failure_is_model_error(scene_frames: list[Frame]) -> None:
    pipe = AnsweringPipeline(ScriptedAnswerer("1", fail=True), clock=lambda: 1.0)
    rec = pipe.answer(ask("How many chairs?"), filled_buffer(scene_frames[:4]))
    assert rec.status is AnswerStatus.MODEL_ERROR
    assert "out of memory" in rec.error


def test_worker_answers_every_question_once_and_rejects_overflow_busy() -> None:
    release = threading.Event()
    answers: list[tuple[int, AnswerStatus]] = []
    lock = threading.Lock()

    def handler(req: QuestionRequest) -> AnswerRecord:
        release.wait(10)
        return AnswerRecord(query_id=req.query_id, question=req.question,
                            status=AnswerStatus.OK)

    def sink(req: QuestionRequest, rec: AnswerRecord) -> None:
        with lock:
            answers.append((rec.query_id, rec.status))

    worker = QuestionWorker(handler, sink, max_queued=4)
    worker.start()
    accepted = [worker.submit(QuestionRequest(query_id=i, question="q")) for i in range(50)]
    busy_now = [qid for qid, st in answers if st is AnswerStatus.BUSY]
    release.set()
    deadline = threading.Event()
    for _ in range(200):
        with lock:
            if len(answers) == 50:
                break
        deadline.wait(0.05)
    worker.stop()
    ids = sorted(qid for qid, _ in answers)
    assert ids == list(range(50))  # every id exactly once
    ok = sum(1 for _, st in answers if st is AnswerStatus.OK)
    busy = sum(1 for _, st in answers if st is AnswerStatus.BUSY)
    assert ok == sum(accepted)
    assert busy == 50 - ok
    # at most one in the handler + 4 queued can have been accepted
    assert 4 <= ok <= 5
    assert len(busy_now) == busy  # BUSY answers were immediate


def test_handler_exception_becomes_model_error_and_worker_survives() -> None:
    got: list[AnswerRecord] = []
    done = threading.Event()

    def handler(req: QuestionRequest) -> AnswerRecord:
        if req.query_id == 0:
            raise ValueError("boom")
        return AnswerRecord(query_id=req.query_id, question="", status=AnswerStatus.OK)

    def sink(req: QuestionRequest, rec: AnswerRecord) -> None:
        got.append(rec)
        if len(got) == 2:
            done.set()

    worker = QuestionWorker(handler, sink, max_queued=4)
    worker.start()
    worker.submit(QuestionRequest(query_id=0, question="q"))
    worker.submit(QuestionRequest(query_id=1, question="q"))
    assert done.wait(10)
    worker.stop()
    assert [(r.query_id, r.status) for r in got] == [
        (0, AnswerStatus.MODEL_ERROR), (1, AnswerStatus.OK)]
    assert "boom" in got[0].error


def test_stop_answers_queued_questions() -> None:
    gate = threading.Event()
    got: list[AnswerRecord] = []

    def handler(req: QuestionRequest) -> AnswerRecord:
        gate.wait(10)
        return AnswerRecord(query_id=req.query_id, question="", status=AnswerStatus.OK)

    worker = QuestionWorker(handler, lambda r, a: got.append(a), max_queued=4)
    worker.start()
    for i in range(3):
        worker.submit(QuestionRequest(query_id=i, question="q"))
    threading.Event().wait(0.2)
    worker.stop(timeout_s=0.1)
    gate.set()
    statuses = {a.query_id: a.status for a in got}
    assert AnswerStatus.MODEL_ERROR in statuses.values()


def test_free_text_direction_question_without_options_is_asked_open(
    scene_frames: list[Frame],
) -> None:
    answerer = ScriptedAnswerer("Yes, to your left.")
    pipe = AnsweringPipeline(answerer, PipelineConfig(grounding=False), clock=lambda: 1.0)
    rec = pipe.answer(
        ask("If I stand by the door facing the TV, is the table to my left?"),
        filled_buffer(scene_frames[:6]),
    )
    assert rec.status is AnswerStatus.OK, rec.error
    assert rec.question_type == "object_rel_direction"
    prompt = answerer.calls[0][1]
    assert "Options:" not in prompt
    assert "Answer with the option's letter" not in prompt


def test_explicit_multiple_choice_type_without_options_is_invalid(
    scene_frames: list[Frame],
) -> None:
    answerer = ScriptedAnswerer("A")
    pipe = AnsweringPipeline(answerer, clock=lambda: 1.0)
    rec = pipe.answer(ask("Which is closer?", question_type="object_rel_distance"),
                      filled_buffer(scene_frames[:4]))
    assert rec.status is AnswerStatus.INVALID_QUESTION
    assert answerer.calls == []


def test_adaptive_budget_applies_when_the_question_names_none(scene_frames: list[Frame]) -> None:
    from spatial_mllm_ros.sampling.budget import BudgetConfig

    buf = filled_buffer(scene_frames)
    from spatial_mllm_ros.sampling.budget import tokens_per_temporal_patch

    # 24 frames at 5 fps span 4.6 s: the base budget of 8, but the token cap allows only 4
    h, w = scene_frames[0].height, scene_frames[0].width
    cap_tokens = 2 * tokens_per_temporal_patch(h, w)  # room for exactly 4 frames
    answerer = ScriptedAnswerer("1")
    pipe = AnsweringPipeline(
        answerer,
        PipelineConfig(frame_budget=12, grounding=False,
                       adaptive_budget=BudgetConfig(max_video_tokens=cap_tokens)),
        clock=lambda: 1.0,
    )
    rec = pipe.answer(ask("How many chairs are in this room?"), buf)
    assert rec.status is AnswerStatus.OK
    assert len(rec.frame_stamps_ns) == 4
    # an explicit budget still wins
    rec = pipe.answer(ask("How many chairs are in this room?", frame_budget=6), buf)
    assert len(rec.frame_stamps_ns) == 6


# --- bounded work per question ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_kw", "why"),
    [
        ({"question": "Which one?", "question_type": "object_rel_distance",
          "options": tuple(f"{chr(65 + i)}. " + "x" * 40_000 for i in range(26))}, "options"),
        ({"question": "q" * 5_000_000}, "characters"),
        ({"question": "Which one?", "question_type": "object_rel_distance",
          "options": tuple(f"o{i}" for i in range(27))}, "26 options"),
    ],
)
def test_oversized_questions_are_refused_before_any_work(request_kw, why) -> None:
    answerer = ScriptedAnswerer("3")
    pipe = AnsweringPipeline(answerer, PipelineConfig(), clock=lambda: 1.0)
    record = pipe.precheck(QuestionRequest(query_id=9, **request_kw))
    assert record is not None and record.status is AnswerStatus.INVALID_QUESTION
    assert why in record.error and record.query_id == 9
    assert answerer.calls == []


def test_prompt_tokens_are_bounded_by_the_parameter_and_the_checkpoint_context() -> None:
    from spatial_mllm_ros.model.limits import PromptLimits

    words = PromptLimits(context_tokens=4096, count=lambda text: len(text.split()))
    long_q = "how many " + "very " * 300 + "big chairs are here?"
    config = PipelineConfig(max_question_chars=10_000, max_prompt_tokens=200)
    refused = AnsweringPipeline(ScriptedAnswerer("3"), config, limits=words).precheck(
        QuestionRequest(query_id=1, question=long_q))
    assert refused is not None and "tokens, more than 200" in refused.error
    roomy = PipelineConfig(max_question_chars=10_000, max_prompt_tokens=100_000,
                           video_token_cap=3800, max_new_tokens=16)
    small_context = AnsweringPipeline(ScriptedAnswerer("3"), roomy, limits=words)
    assert small_context.prompt_token_limit() == 4096 - 3800 - roomy.grounding_max_new_tokens
    assert small_context.precheck(QuestionRequest(query_id=2, question=long_q)) is not None
    assert small_context.precheck(QuestionRequest(query_id=3, question="how many chairs?")) is None


def test_a_worker_restarted_while_its_old_thread_is_stuck_serves_with_one_thread() -> None:
    """stop() gives up on a stuck question; start() again must not leave two workers."""
    release = threading.Event()
    handled: list[str] = []
    delivered: list[tuple[int, AnswerStatus]] = []

    def handler(request: QuestionRequest) -> AnswerRecord:
        handled.append(threading.current_thread().name + str(request.query_id))
        if request.query_id == 1:
            release.wait(10)
        return AnswerRecord.failure(request, AnswerStatus.NO_FRAMES, "stand-in")

    worker = QuestionWorker(handler, lambda r, a: delivered.append((r.query_id, a.status)), 4)
    worker.start()
    worker.submit(QuestionRequest(query_id=1, question="stuck"))
    while not handled:
        threading.Event().wait(0.01)
    worker.stop(timeout_s=0.1)  # gives up: query 1 answered MODEL_ERROR
    worker.start()
    release.set()  # the old thread finishes query 1: its late answer is dropped
    for i in range(2, 6):
        worker.submit(QuestionRequest(query_id=i, question="q"))
    end = threading.Event()
    for _ in range(500):
        if len(delivered) >= 5:
            break
        end.wait(0.01)
    worker.stop()
    assert sorted(q for q, _ in delivered) == [1, 2, 3, 4, 5]  # one answer each
    assert dict(delivered)[1] is AnswerStatus.MODEL_ERROR
