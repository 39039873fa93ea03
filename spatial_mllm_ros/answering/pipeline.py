"""The answering pipeline: question -> frame selection -> model -> parsed answer with boxes.

One call of :meth:`AnsweringPipeline.answer` answers one question from a buffer of frames.
It never raises for a bad question, an empty buffer, a late deadline or a model failure:
each becomes an :class:`AnswerRecord` with the matching :class:`AnswerStatus`, so that every
question gets exactly one answer.

Boxes: boxes found in the answer text belong to a frame the text does not name; they are
placed on the last selected frame (the most recent view). With ``grounding=True`` a second,
short generation asks the model to locate the objects the question names on that same frame,
in Qwen2.5-VL's JSON grounding form, so that a robot gets boxes even for answers that are a
single word or number (as the VSI-Bench prompts ask). 3D positions come from that frame's
depth and intrinsics, in the world frame when the frame has a pose.

Frame selection: ``buffer.select`` with the question's strategy, except for a monocular camera
(no frame in the buffer has depth + pose) under ``coverage``, where the frames are chosen by
coverage of the geometry the model's VGGT heads predict (:mod:`.monocular`).  An OK answer's
``notes`` say when fewer frames than asked were used and why, and what the frames lacked for
the coverage figure (:mod:`spatial_mllm_ros.sampling.notes`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from spatial_mllm_ros import params as P
from spatial_mllm_ros.answering.errors import ModelBusyError
from spatial_mllm_ros.answering.monocular import select_frames
from spatial_mllm_ros.answering.types import (
    Answerer,
    AnswerRecord,
    AnswerStatus,
    PlacedBox,
    Progress,
    QuestionRequest,
)
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.model.limits import PromptLimits, utf8_token_bound
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.sampling.budget import BudgetConfig, adaptive_frame_budget
from spatial_mllm_ros.sampling.errors import SamplingError
from spatial_mllm_ros.sampling.notes import selection_notes
from spatial_mllm_ros.sampling.online import SpatialFrameBuffer
from spatial_mllm_ros.sampling.scoring import motion_complexity
from spatial_mllm_ros.sampling.selection import BufferSnapshot, Selection
from spatial_mllm_ros.sampling.strategies import available_strategies, uniform_indices
from spatial_mllm_ros.vsibench.boxes import Box2D, box_position, parse_boxes
from spatial_mllm_ros.vsibench.errors import AnswersError, InvalidQuestionError
from spatial_mllm_ros.vsibench.parsing import parse_answer
from spatial_mllm_ros.vsibench.prompts import (
    build_prompt,
    check_question_type,
    infer_question_type,
    is_multiple_choice,
    validate_question,
)
from spatial_mllm_ros.vsibench.templates import AUTO_TEMPLATE, template_for_layout

GROUNDING_PROMPT = (
    "Locate every object that this question is about in the image: \"{question}\" "
    "Output the bounding box coordinates and labels in JSON format."
)


@dataclass(frozen=True)
class PipelineConfig:
    """Answering settings (the node's ``sampling.*``, ``queue.*``, ``question.*``, ``answer.*``
    parameters; the defaults are the parameter schema's).

    Attributes:
        frame_budget: frames given to the model when a question does not say (paper: 16).
        max_frame_budget: upper bound a question may ask for.
        strategy: default sampling strategy name.
        timeout_s: default deadline, seconds from the question's arrival.
        max_question_chars: longer questions are INVALID_QUESTION.
        max_new_tokens: generation length for the answer.
        grounding: run the box-grounding generation (see module docstring).
        grounding_max_new_tokens: generation length for the grounding pass.
        max_option_chars: longest options of one question, all together, characters.
        max_prompt_tokens: longest prompt text, tokens (see
            :meth:`AnsweringPipeline.prompt_token_limit`).
        video_token_cap: video tokens of the largest clip the pipeline may send (the budget's
            frames at the model's largest input size); 0 = not known.
        prompt_template: the prompt family (:mod:`spatial_mllm_ros.vsibench.templates`), or
            ``auto``: the family of the answerer's checkpoint (its ``checkpoint_layout``; an
            answerer without one is taken as v1.1).
        monocular_candidates: colour-only buffers with ``coverage`` sampling: frames whose
            geometry the model predicts to choose from (paper: 16 of up to 128); the
            prediction's time counts in the ``sampling`` stage.
        adaptive_budget: when set, a question that names no frame budget gets
            :func:`~spatial_mllm_ros.sampling.budget.adaptive_frame_budget` of the buffer
            (its time span, its motion complexity, the frames' resolution and the token
            budget) instead of ``frame_budget``, capped by ``max_frame_budget``.
    """

    frame_budget: int = P.bound("sampling.frame_budget")
    max_frame_budget: int = P.bound("sampling.max_frame_budget")
    strategy: str = P.bound("sampling.strategy")
    timeout_s: float = P.bound("queue.timeout_s")
    max_question_chars: int = P.bound("question.max_chars")
    max_new_tokens: int = P.bound("answer.max_new_tokens")
    grounding: bool = P.bound("answer.grounding")
    adaptive_budget: BudgetConfig | None = None
    grounding_max_new_tokens: int = P.bound("answer.grounding_max_new_tokens")
    monocular_candidates: int = P.bound("sampling.monocular_candidates")
    prompt_template: str = P.bound("answer.prompt_template")
    max_option_chars: int = P.bound("question.max_option_chars")
    max_prompt_tokens: int = P.bound("question.max_prompt_tokens")
    video_token_cap: int = 0


@dataclass(frozen=True)
class CheckedRequest:
    """A request's validated fields (:meth:`AnsweringPipeline.check_request`).

    Attributes:
        question: the question text, checked.
        question_type: its VSI-Bench type (given, or inferred from the text), or ``open``.
        frame_budget: frames to select (the request's, else the configured budget).
        strategy: the sampling strategy name.
        prompt: the prompt text the model is given.
    """

    question: str
    question_type: str
    frame_budget: int
    strategy: str
    prompt: str


class _Refused(Exception):
    """A question answered with a non-OK ``status`` and ``error``; ``answer``: the text
    generated before it was stopped; ``timed``: the answer carries its timings."""

    def __init__(self, status: AnswerStatus, error: str, *, answer: str = "",
                 timed: bool = False) -> None:
        super().__init__(error)
        self.status, self.error, self.answer, self.timed = status, error, answer, timed


@dataclass
class _Run:
    """One question being answered: its request, start and deadline (monotonic seconds), its
    cancel event and progress sink, its stage timings (seconds), and its type once known."""

    request: QuestionRequest
    start: float
    deadline: float
    cancel: threading.Event | None
    report: Progress
    timings: dict[str, float]
    question_type: str | None = None

    def add_timings(self, stages: Mapping[str, float]) -> None:
        """Add a generation's stage timings to the question's."""
        for stage, seconds in stages.items():
            self.timings[stage] = self.timings.get(stage, 0.0) + seconds


@dataclass(frozen=True)
class _Chosen:
    """The selected frames, the budget they were selected for and the snapshot they were
    selected from."""

    selection: Selection
    budget: int
    snapshot: BufferSnapshot


class AnsweringPipeline:
    """Answers questions from a :class:`SpatialFrameBuffer` with an :class:`Answerer`."""

    def __init__(
        self,
        answerer: Answerer,
        config: PipelineConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        limits: PromptLimits | None = None,
    ) -> None:
        """``limits``: the checkpoint's context and tokenizer (:func:`~spatial_mllm_ros.model.
        limits.prompt_limits`); None = prompts counted by their UTF-8 bytes (an upper bound)
        and no context bound."""
        self.answerer = answerer
        self.config = config or PipelineConfig()
        self._clock = clock
        self.limits = limits

    def prompt_token_limit(self) -> int:
        """Most tokens a prompt text may have: ``max_prompt_tokens``, and the checkpoint's
        context less the largest clip's video tokens and the answer's tokens."""
        limit = self.config.max_prompt_tokens
        if self.limits is not None:
            room = (self.limits.context_tokens - self.config.video_token_cap
                    - max(self.config.max_new_tokens, self.config.grounding_max_new_tokens))
            limit = min(limit, room)
        return limit

    def precheck(self, request: QuestionRequest) -> AnswerRecord | None:
        """The INVALID_QUESTION answer of a bad request, or None: what the node checks before
        queueing a question, so a bad one is answered at once and never BUSY."""
        try:
            self.check_request(request)
        except (AnswersError, ValueError) as err:
            return AnswerRecord.failure(request, AnswerStatus.INVALID_QUESTION, str(err))
        return None

    @property
    def prompt_template(self) -> str:
        """The prompt family questions are worded in (``auto`` resolved from the answerer)."""
        if self.config.prompt_template != AUTO_TEMPLATE:
            return self.config.prompt_template
        return template_for_layout(self.answerer.checkpoint_layout)

    # -- request checks -------------------------------------------------------------------

    def check_request(self, request: QuestionRequest) -> CheckedRequest:
        """The validated question, type, frame budget, strategy and prompt of a request.

        A type inferred from free text as multiple-choice while the caller gave no options
        (an operator's "is the table to my left?") keeps its type but is asked in the open
        form; a multiple-choice type the caller named explicitly needs its options.

        Raises:
            AnswersError: the question text, its type or its options are invalid.
            ValueError: the frame budget or strategy is invalid.
        """
        question = validate_question(request.question, self.config.max_question_chars)
        options = request.options or None
        option_chars = sum(len(o) for o in request.options)
        if option_chars > self.config.max_option_chars:
            raise InvalidQuestionError(
                f"the options have {option_chars} characters, more than "
                f"{self.config.max_option_chars}")
        if request.question_type:
            qtype = check_question_type(request.question_type)
            prompt = build_prompt(question, qtype, options, self.prompt_template)
        else:
            qtype = infer_question_type(question, options)
            form = qtype if options or not is_multiple_choice(qtype) else "open"
            prompt = build_prompt(question, form, options, self.prompt_template)
        count = self.limits.count if self.limits is not None else utf8_token_bound
        tokens, limit = count(prompt), self.prompt_token_limit()
        if tokens > limit:
            context = "" if self.limits is None else (
                f" (the checkpoint's context of {self.limits.context_tokens} tokens holds "
                f"{self.config.video_token_cap} video tokens of the largest clip and the answer)")
            raise InvalidQuestionError(
                f"the prompt has {tokens} tokens, more than {limit}{context}")
        budget = request.frame_budget or self.config.frame_budget
        if not 1 <= budget <= self.config.max_frame_budget:
            raise ValueError(
                f"frame_budget {budget} outside 1..{self.config.max_frame_budget}"
            )
        strategy = request.strategy or self.config.strategy
        if strategy not in available_strategies():
            raise ValueError(
                f"unknown sampling strategy {strategy!r}; known: "
                + ", ".join(sorted(available_strategies()))
            )
        return CheckedRequest(question, qtype, budget, strategy, prompt)

    def adaptive_budget(self, frames: Sequence[Frame]) -> int:
        """The seed's adaptive frame budget for the buffered ``frames`` (time order): their
        span in seconds, the motion complexity of up to 32 evenly spaced ones, the latest
        frame's resolution, and the token cap of ``config.adaptive_budget``."""
        assert self.config.adaptive_budget is not None
        span_s = (frames[-1].stamp_ns - frames[0].stamp_ns) / 1e9
        probe = [frames[i] for i in uniform_indices(len(frames), min(len(frames), 32))]
        return adaptive_frame_budget(span_s, motion_complexity(probe), frames[-1].height,
                                     frames[-1].width, self.config.adaptive_budget)

    def deadline(self, request: QuestionRequest) -> float:
        """Monotonic time after which the question is answered TIMEOUT."""
        timeout = request.timeout_s if request.timeout_s > 0 else self.config.timeout_s
        return request.received_s + timeout

    # -- answering ------------------------------------------------------------------------

    def answer(
        self,
        request: QuestionRequest,
        buffer: SpatialFrameBuffer,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> AnswerRecord:
        """Answer one question from the frames in ``buffer`` (selected over a snapshot, so
        frames keep arriving meanwhile). Never raises for bad input or model failure.

        ``progress(stage, text, tokens)`` hears each stage and every generated token.
        Generation stops between tokens at the deadline (TIMEOUT) or once ``cancel`` is set
        (CANCELED); either answer keeps the text generated until then.

        Stages: validate, select, generate, ground, finish; any of them may refuse the
        question (:class:`_Refused`), which is answered on one path (:meth:`_refuse`).
        """
        start = self._clock()
        run = _Run(request, start, self.deadline(request), cancel,
                   progress or (lambda _stage, _text, _n: None),
                   {"queue_wait": max(0.0, start - request.received_s)})
        try:
            checked = self._validate(run)
            chosen = self._select(run, checked, buffer)
            result, boxes = self._generate(run, checked, chosen.selection)
            return self._finish(run, checked, chosen, result, boxes)
        except _Refused as refusal:
            return self._refuse(run, refusal)

    def _validate(self, run: _Run) -> CheckedRequest:
        """The checked request, unless it is invalid, was canceled while queued or is late."""
        try:
            checked = self.check_request(run.request)
        except (AnswersError, ValueError) as err:
            raise _Refused(AnswerStatus.INVALID_QUESTION, str(err)) from err
        run.question_type = checked.question_type
        if run.cancel is not None and run.cancel.is_set():  # canceled while it was queued
            raise _Refused(AnswerStatus.CANCELED, "canceled before it was answered")
        if self._clock() > run.deadline:
            raise self._late(run, "before sampling")
        return checked

    def _select(self, run: _Run, checked: CheckedRequest,
                buffer: SpatialFrameBuffer) -> _Chosen:
        """The question's frames over a snapshot of ``buffer`` (timed as ``sampling``)."""
        snapshot = buffer.snapshot(run.request.until_stamp_ns)
        if len(snapshot) == 0:
            raise _Refused(AnswerStatus.NO_FRAMES, "no frames have been received yet")
        run.report("sampling", "", 0)
        t0 = self._clock()
        budget = checked.frame_budget
        if not run.request.frame_budget and self.config.adaptive_budget is not None:
            budget = min(self.adaptive_budget(snapshot.frames), self.config.max_frame_budget)
        try:  # colour-only snapshots: coverage on predicted geometry (see answering.monocular)
            selection = select_frames(buffer, snapshot, budget, checked.strategy, self.answerer,
                                      self.config.monocular_candidates)
        except SamplingError as err:
            raise _Refused(AnswerStatus.INVALID_QUESTION, str(err)) from err
        run.timings["sampling"] = self._clock() - t0
        if self._clock() > run.deadline:
            raise self._late(run, "after sampling")
        return _Chosen(selection, budget, snapshot)

    def _generate(self, run: _Run, checked: CheckedRequest,
                  selection: Selection) -> tuple[GenerationResult, list[PlacedBox]]:
        """The model's answer and its boxes, with the grounding pass's
        (:meth:`_ground`); a failure of the model is MODEL_ERROR (BUSY for a saturated
        server, TIMEOUT when it stopped at its deadline)."""
        frames = list(selection.frames)
        run.report("encoders", "", 0)
        try:
            result = self.answerer.answer(
                frames, checked.prompt, self.config.max_new_tokens,
                on_token=lambda ids, text: run.report("decode", text, len(ids)),
                should_stop=lambda: self._should_stop(run),
            )
            run.add_timings(result.timings_s)
            boxes = self._boxes(result.box_text, frames[-1], result.resized_size)
            if self.config.grounding and not result.stopped and not self._should_stop(run):
                boxes += self._ground(run, checked, frames[-1])
        except ModelBusyError as err:  # a saturated model server: at once, as a full queue
            raise _Refused(AnswerStatus.BUSY, str(err)) from err
        except Exception as err:  # the model is arbitrary code: any failure is MODEL_ERROR
            if self._clock() > run.deadline:  # a model stopped at its deadline: the cause
                late = self._late(run, "during generation")
                raise _Refused(late.status, f"{late.error} ({type(err).__name__}: {err})",
                               timed=True) from err
            raise _Refused(AnswerStatus.MODEL_ERROR, f"{type(err).__name__}: {err}") from err
        return result, boxes

    def _ground(self, run: _Run, checked: CheckedRequest, frame: Frame) -> list[PlacedBox]:
        """The grounding pass: the boxes of the objects the question names on ``frame``."""
        grounding = self.answerer.answer(
            [frame], GROUNDING_PROMPT.format(question=checked.question),
            self.config.grounding_max_new_tokens, should_stop=lambda: self._should_stop(run))
        run.add_timings(grounding.timings_s)
        return self._boxes(grounding.box_text, frame, grounding.resized_size)

    def _finish(self, run: _Run, checked: CheckedRequest, chosen: _Chosen,
                result: GenerationResult, boxes: list[PlacedBox]) -> AnswerRecord:
        """The OK answer; CANCELED or TIMEOUT (with the text so far) when generation was
        stopped."""
        request, selection = run.request, chosen.selection
        parsed = parse_answer(result.text, checked.question_type, request.options or None)
        if run.cancel is not None and run.cancel.is_set():
            raise _Refused(AnswerStatus.CANCELED,
                           f"canceled after {result.num_new_tokens} generated tokens",
                           answer=parsed.text, timed=True)
        if self._clock() > run.deadline:
            late = self._late(run, "during generation")
            raise _Refused(late.status, late.error, answer=parsed.text, timed=True)
        run.timings["total"] = self._clock() - run.start + run.timings["queue_wait"]
        frames = selection.frames
        world = next((f.world_frame_id for f in frames if f.pose is not None), "")
        return AnswerRecord(
            query_id=request.query_id,
            question=request.question,
            status=AnswerStatus.OK,
            question_type=checked.question_type,
            answer=parsed.text,
            numeric_value=parsed.numeric_value,
            option=parsed.option,
            boxes=boxes,
            frame_stamps_ns=list(selection.frame_stamps_ns),
            frame_cameras=list(selection.frame_cameras),
            strategy=selection.strategy,
            coverage=selection.coverage,
            uniform_coverage=selection.uniform_coverage,
            timings_s=run.timings,
            world_frame_id=world,
            notes=selection_notes(chosen.budget, chosen.snapshot, selection),
        )

    def _should_stop(self, run: _Run) -> bool:
        """Generation is to stop: the question was canceled or its deadline passed."""
        return (run.cancel is not None and run.cancel.is_set()) or self._clock() > run.deadline

    def _late(self, run: _Run, where: str) -> _Refused:
        """The TIMEOUT of a question whose deadline passed ``where``."""
        request = run.request
        return _Refused(
            AnswerStatus.TIMEOUT,
            f"deadline of {self.deadline(request) - request.received_s:.3f} s passed {where}",
            timed=True)

    def _refuse(self, run: _Run, refusal: _Refused) -> AnswerRecord:
        """The one refusal path: a non-OK answer with its reason, the question's type once
        known, the text generated so far, and the timings when the question got that far."""
        record = AnswerRecord.failure(run.request, refusal.status, refusal.error)
        if run.question_type is not None:
            record.question_type = run.question_type
        record.answer = refusal.answer
        if refusal.timed:
            run.timings["total"] = (self._clock() - run.start
                                    + run.timings.get("queue_wait", 0.0))
            record.timings_s = run.timings
        return record

    @staticmethod
    def _boxes(text: str, frame: Frame, resized_size: tuple[int, int]) -> list[PlacedBox]:
        """Boxes of ``text`` placed on ``frame`` with 3D positions where depth exists."""
        placed: list[PlacedBox] = []
        for box in parse_boxes(text, resized_size, (frame.width, frame.height)):
            placed.append(_place(box, frame))
        return placed


def _place(box: Box2D, frame: Frame) -> PlacedBox:
    """Attach the 3D centre (world frame when posed) and an approximate metric extent."""
    if frame.depth_m is None or frame.intrinsics is None:
        return PlacedBox(box, frame.stamp_ns, frame.frame_id, "")
    centre_cam = box_position(box, frame.depth_m, frame.intrinsics, None, to_world=False)
    if centre_cam is None:
        return PlacedBox(box, frame.stamp_ns, frame.frame_id, "")
    k = frame.intrinsics.scaled(frame.width, frame.height)
    z = float(centre_cam[2])
    width_m, height_m = box.width * z / k.fx, box.height * z / k.fy
    extent = (width_m, height_m, min(width_m, height_m))
    if frame.pose is not None:
        box.position = frame.pose[:3, :3] @ centre_cam + frame.pose[:3, 3]
        where = frame.world_frame_id or "world"
    else:
        box.position = centre_cam
        where = frame.frame_id
    return PlacedBox(box, frame.stamp_ns, frame.frame_id, where, extent)
