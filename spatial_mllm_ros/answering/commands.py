"""Commands of the answering layer: typed settings and frames in, one :class:`AnswerRecord` out.

A command runs the same code the node runs for a question: the frames go into a
:class:`~spatial_mllm_ros.sampling.online.SpatialFrameBuffer` in time order (the buffer's
admission rule decides which it keeps, as it does for the node's ingestion), then
:meth:`AnsweringPipeline.answer` selects frames, asks the model and places boxes on the last
selected frame. Console entry points (:mod:`.cli`) only parse arguments and print.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

from spatial_mllm_ros.answering.handle import ModelHandle, ModelStatus
from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import (
    STAGES,
    Answerer,
    AnswerRecord,
    OnToken,
    QuestionRequest,
)
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.model.limits import PromptLimits
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer
from spatial_mllm_ros.sampling.predicted import PredictedGeometry

#: The part of an answer's ``total`` that no stage of :data:`~.types.STAGES` names.
OTHER = "other"


def timings_with_other(timings: Mapping[str, float]) -> dict[str, float]:
    """An answer's stage timings (seconds) with :data:`OTHER` before ``total``, so that the
    stages add up to ``total`` (to float rounding).

    The stages: ``queue_wait`` (asked until the pipeline took the question), ``sampling``
    (choosing the frames), ``vision_2d`` and ``spatial`` (the two vision encoders),
    ``connector`` (fusing their tokens), ``prefill`` and ``decode`` (the language model) --
    each summed over the answer's generations (the grounding one too).  ``other``: the
    pipeline's own work (question checks, prompt, buffer snapshot, answer and box parsing)
    and the model's unstaged work (resizing the frames, tokenising, moving tensors,
    ``generate``'s per-token bookkeeping, decoding the text).  ``total``: the whole answer,
    queue wait included.  ``other`` is 0 for an answer refused before it was timed (total 0).
    """
    out = {stage: float(timings.get(stage, 0.0)) for stage in STAGES if stage != "total"}
    total = float(timings.get("total", 0.0))
    out[OTHER] = max(0.0, total - sum(out.values())) if total > 0 else 0.0
    out["total"] = total
    return out


def fill_buffer(frames: Sequence[Frame], config: BufferConfig) -> SpatialFrameBuffer:
    """A buffer of ``config`` offered every frame of ``frames`` (time order), as the node's
    ingestion offers them; frames the admission rule rejects are not kept."""
    buffer = SpatialFrameBuffer(config)
    for frame in frames:
        buffer.add(frame)
    return buffer


def answer_frames(
    answerer: Answerer,
    frames: Sequence[Frame],
    request: QuestionRequest,
    pipeline: PipelineConfig,
    buffer: BufferConfig,
    clock: Callable[[], float] = time.monotonic,
    limits: PromptLimits | None = None,
) -> AnswerRecord:
    """Answer ``request`` about ``frames`` (time order) with the node's pipeline.

    The question is asked once every frame is in the buffer, as on the node where the frames
    arrived before it: ``request.received_s`` is replaced by that time of ``clock`` (seconds),
    so its deadline and ``queue_wait`` start there.  Never raises for a bad question, no
    admitted frame or a model failure: those are the record's status (INVALID_QUESTION,
    NO_FRAMES, MODEL_ERROR), as on the node.
    """
    filled = fill_buffer(frames, buffer)
    asked = dataclasses.replace(request, received_s=clock())
    return AnsweringPipeline(answerer, pipeline, clock, limits).answer(asked, filled)


class FirstAnswerTokens:
    """A model handle that remembers the token ids of its first answer (a question's own; a
    second call is the grounding pass), for ``spatial-mllm-infer``'s ``token_ids``; the rest
    is the wrapped handle's."""

    def __init__(self, wrapped: ModelHandle) -> None:
        self.wrapped = wrapped
        self.token_ids: list[int] = []
        self._answered = False

    def answer(
        self,
        frames: Sequence[Frame],
        prompt: str,
        max_new_tokens: int = 64,
        *,
        on_token: OnToken | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """The wrapped handle's answer; the first one's token ids are kept."""
        result = self.wrapped.answer(frames, prompt, max_new_tokens, on_token=on_token,
                                     should_stop=should_stop)
        if not self._answered:
            self._answered, self.token_ids = True, list(result.token_ids)
        return result

    def predict_geometry(self, frames: Sequence[Frame]) -> list[PredictedGeometry]:
        """The wrapped handle's predicted geometry."""
        return self.wrapped.predict_geometry(frames)

    @property
    def checkpoint_layout(self) -> str:
        """The wrapped handle's checkpoint layout."""
        return self.wrapped.checkpoint_layout

    def status(self) -> ModelStatus:
        """The wrapped handle's status."""
        return self.wrapped.status()

    def close(self, timeout_s: float = 10.0) -> None:
        """Close the wrapped handle."""
        self.wrapped.close(timeout_s)
