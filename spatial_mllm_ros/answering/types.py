"""Value types exchanged between the answering stages and their callers (the model's
:class:`~spatial_mllm_ros.model.result.GenerationResult` is re-exported here)."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.jsonsafe import finite_or_none
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.vsibench.boxes import Box2D

#: Stage names of per-answer timings, in pipeline order (seconds each).
STAGES: tuple[str, ...] = (
    "queue_wait",
    "sampling",
    "vision_2d",
    "spatial",
    "connector",
    "prefill",
    "decode",
    "total",
)


class AnswerStatus(enum.IntEnum):
    """Outcome of one question; values equal ``SpatialAnswer.STATUS_*``."""

    OK = 0
    BUSY = 1
    TIMEOUT = 2
    NO_FRAMES = 3
    INVALID_QUESTION = 4
    MODEL_ERROR = 5
    CANCELED = 6


@dataclass(frozen=True)
class QuestionRequest:
    """One question as the pipeline sees it, whatever path it came in on.

    Attributes:
        query_id: caller-chosen id, echoed in the answer.
        question: the question text.
        question_type: a VSI-Bench type, ``open``, or "" to infer it from the text.
        options: multiple-choice options, lettered A, B, C, ... in this order.
        frame_budget: frames to select; 0 = the configured budget.
        strategy: sampling strategy name; "" = the configured default.
        timeout_s: deadline in seconds from ``received_s``; 0 = the configured default.
        received_s: monotonic time (``time.monotonic()``) at which the question arrived.
        until_stamp_ns: only frames captured at or before this stamp are used (offline
            evaluation of a question asked mid-run); None = all buffered frames.
    """

    query_id: int
    question: str
    question_type: str = ""
    options: tuple[str, ...] = ()
    frame_budget: int = 0
    strategy: str = ""
    timeout_s: float = 0.0
    received_s: float = 0.0
    until_stamp_ns: int | None = None


#: (token ids so far, text so far) -> None: called after every generated token.
OnToken = Callable[[list[int], str], None]
#: (stage, text so far, tokens so far) -> None: an answer's progress (``queued``, ``sampling``,
#: ``encoders`` -- the 2D and spatial encoders and prefill, until the first token --, ``decode``)
Progress = Callable[[str, str, int], None]


class Answerer(Protocol):
    """Anything that turns frames and a prompt into text: a model handle
    (:class:`~spatial_mllm_ros.answering.handle.ModelHandle`), or a stand-in used to test the
    evaluation (an oracle with known errors)."""

    @property
    def checkpoint_layout(self) -> str:
        """``v1.0``, ``v1.1`` or ``qwen2.5-vl``: selects the prompt family (``v1.1`` for a
        stand-in)."""
        ...

    def answer(
        self,
        frames: Sequence[Frame],
        prompt: str,
        max_new_tokens: int = 64,
        *,
        on_token: OnToken | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """Answer ``prompt`` about ``frames`` (time order); report every token to ``on_token``
        and stop generating (``GenerationResult.stopped``) once ``should_stop()`` is true,
        checked between tokens."""
        ...


@dataclass(frozen=True)
class PlacedBox:
    """A box with the frame it belongs to.

    Attributes:
        box: the parsed box, in pixels of the original frame; ``box.position`` is the 3D
            centre (metres) when depth and intrinsics existed.
        stamp_ns: stamp of the frame the box is in.
        frame_id: optical frame of that image.
        position_frame_id: frame of ``box.position``: the world frame when the source frame
            had a pose, else ``frame_id``; "" when there is no position.
        extent_m: approximate (width, height, depth) of the object in metres, from the box's
            pixel size at the object's depth (depth taken as the smaller of the two); None
            when there is no position. Used for RViz markers, not a measurement.
    """

    box: Box2D
    stamp_ns: int
    frame_id: str
    position_frame_id: str
    extent_m: tuple[float, float, float] | None = None


@dataclass
class AnswerRecord:
    """The full answer to one question (the pure twin of ``SpatialAnswer.msg``).

    ``notes``: sentences about how the answer was made that a caller should know although it
    is OK, e.g. that fewer frames than asked were used and why, or that the frames had no
    depth and coverage was not measured (then ``coverage`` is NaN); empty when there is
    nothing to say.  They are not errors: ``error`` stays the reason of a non-OK status.

    ``frame_stamps_ns`` and ``frame_cameras`` (the ``cameras`` entry that took each frame,
    ``default`` for the one camera of ``topics.*``) are parallel: the frames handed to the
    model, in that order (by camera, then time: :func:`~spatial_mllm_ros.sampling.selection.
    model_order`). Boxes are in their frame's ``frame_id`` (its camera's optical frame), 3D
    positions in the world frame.
    """

    query_id: int
    question: str
    status: AnswerStatus
    question_type: str = "open"
    answer: str = ""
    numeric_value: float = math.nan
    option: str = ""
    boxes: list[PlacedBox] = field(default_factory=list)
    frame_stamps_ns: list[int] = field(default_factory=list)
    strategy: str = ""
    coverage: float = math.nan
    uniform_coverage: float = math.nan
    timings_s: dict[str, float] = field(default_factory=dict)
    error: str = ""
    world_frame_id: str = ""
    notes: list[str] = field(default_factory=list)
    frame_cameras: list[str] = field(default_factory=list)

    @classmethod
    def failure(
        cls, request: QuestionRequest, status: AnswerStatus, error: str
    ) -> AnswerRecord:
        """An answer that carries only a non-OK status and its reason."""
        return cls(
            query_id=request.query_id,
            question=request.question,
            status=status,
            question_type=request.question_type or "open",
            error=error,
        )

    def to_json(self) -> dict[str, object]:
        """The answer's one JSON form, shared by every command that prints or stores answers
        (``spatial-mllm-infer``, ``spatial-mllm-ask --json``, the evaluation results).

        It holds exactly what ``SpatialAnswer`` carries, so that an answer received over ROS
        converts to the same keys and value types: ``status`` is the status name,
        ``timings_s`` has every stage of :data:`STAGES` (0.0 for one that did not run),
        ``world_frame_id`` is the answer header's frame, NaN and infinity become None.
        Boxes: ``xyxy`` in original-frame pixels, ``position`` (metres, in
        ``position_frame_id``) or None.  ``PlacedBox.extent_m`` is not part of it: it only
        sizes the RViz markers and the message does not carry it.
        """
        return {
            "query_id": self.query_id,
            "question": self.question,
            "status": self.status.name,
            "question_type": self.question_type,
            "answer": self.answer,
            "numeric_value": finite_or_none(self.numeric_value),
            "option": self.option,
            "boxes": [
                {
                    "label": b.box.label,
                    "score": finite_or_none(b.box.score),
                    "xyxy": [float(b.box.x_min), float(b.box.y_min), float(b.box.x_max),
                             float(b.box.y_max)],
                    "stamp_ns": b.stamp_ns,
                    "frame_id": b.frame_id,
                    "position": None if b.box.position is None else
                    [float(v) for v in b.box.position],
                    "position_frame_id": b.position_frame_id,
                }
                for b in self.boxes
            ],
            "frame_stamps_ns": list(self.frame_stamps_ns),
            "frame_cameras": list(self.frame_cameras),
            "strategy": self.strategy,
            "coverage": finite_or_none(self.coverage),
            "uniform_coverage": finite_or_none(self.uniform_coverage),
            "timings_s": {s: float(self.timings_s.get(s, 0.0)) for s in STAGES},
            "error": self.error,
            "world_frame_id": self.world_frame_id,
            "notes": list(self.notes),
        }
