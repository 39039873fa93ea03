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
from collections.abc import Callable, Sequence

from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import Answerer, AnswerRecord, QuestionRequest
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.model.limits import PromptLimits
from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer


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
