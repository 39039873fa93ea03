"""One worker: one engine, loaded once, answering the questions of one scene at a time.

A scene's frames are chosen once (:mod:`.frames`; space-aware choices through the
:class:`~.cache.GeometryCache`) and every question on it is answered over them by
:func:`~spatial_mllm_ros.answering.commands.answer_frames` -- the node's pipeline with the
profile's settings: prompt family ``answer.prompt_template`` (``auto``: from the checkpoint's
layout), the checkpoint's decoding, the
engine's model inputs.  The chosen frames are handed over as they are: a buffer that keeps
them all, ``uniform`` over exactly that many frames, no grounding pass.

:meth:`SceneWorker.answer_scene` yields one :class:`QuestionOutcome` per question, a result or
an error, never raising for bad input: a missing or corrupt video or an unknown type becomes
that question's error.  The same worker runs in-process (``--workers 1``) or inside a Ray
actor (:mod:`.pool`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spatial_mllm_ros.answering.commands import answer_frames
from spatial_mllm_ros.answering.pipeline import AnsweringPipeline
from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus, QuestionRequest
from spatial_mllm_ros.benchmark.cache import (
    GeometryCache,
    SceneSelection,
    file_digest,
    selection_key,
)
from spatial_mllm_ros.benchmark.dataset import (
    ALL_TYPES,
    BenchQuestion,
    SceneKind,
    scene_source,
)
from spatial_mllm_ros.benchmark.errors import BenchmarkError, QuestionInputError, VideoError
from spatial_mllm_ros.benchmark.frames import (
    REFERENCE_CANDIDATES,
    InputPath,
    PixelBounds,
    resize_frames,
    space_aware_candidates,
    uniform_video_indices,
)
from spatial_mllm_ros.benchmark.metrics import reward
from spatial_mllm_ros.benchmark.video import count_frames, read_frames, read_png_folder
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.model.limits import PromptLimits
from spatial_mllm_ros.model.processing import chat_text
from spatial_mllm_ros.model.spec import load_engine, load_prompt_limits
from spatial_mllm_ros.sampling.online import BufferConfig
from spatial_mllm_ros.sampling.predicted import select_on_predicted
from spatial_mllm_ros.sampling.selection import BufferSnapshot
from spatial_mllm_ros.settings import Settings
from spatial_mllm_ros.vsibench.templates import AUTO_TEMPLATE, template_for_layout

__all__ = ["SAMPLINGS", "ModelLoadError", "QuestionOutcome", "RunConfig", "SceneTask",
           "SceneWorker"]

SAMPLINGS = ("uniform", "space_aware")
_SECOND_NS = 1_000_000_000
_NO_DEADLINE_S = 1e9


class ModelLoadError(BenchmarkError):
    """The profile's model could not be loaded."""


@dataclass(frozen=True)
class RunConfig:
    """What every worker needs (plain data, so a Ray actor receives it by value).

    Attributes:
        profile: parameter profile name or path.
        overrides: parameter overrides (``model.checkpoint``, ``-p`` values, ...).
        video_dir: folder holding ``<dataset>/<scene>.mp4`` or ``<dataset>/<scene>/*.png``.
        out_dir: the run's output folder (the geometry cache lives under it).
        nframes: frames per question (the reference's ``--nframes``).
        sampling: ``uniform`` or ``space_aware``.
        candidates: space-aware candidates per video (reference: 128).
    """

    profile: str
    overrides: Mapping[str, Any]
    video_dir: str
    out_dir: str
    nframes: int
    sampling: str
    candidates: int = REFERENCE_CANDIDATES

    def settings(self) -> Settings:
        return Settings.from_profile(self.profile, dict(self.overrides))


@dataclass(frozen=True)
class SceneTask:
    """The questions of one scene still to answer."""

    dataset: str
    scene_name: str
    questions: tuple[BenchQuestion, ...]

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.scene_name}"


@dataclass(frozen=True)
class QuestionOutcome:
    """One question's result line (``result``) or its error (``error``).

    ``geometry_passes``: VGGT passes made for this question's scene by this outcome (1 on the
    first question of a scene whose selection was computed, else 0).
    """

    question_id: int | str
    scene: str
    result: Mapping[str, Any] | None = None
    error: str = ""
    geometry_passes: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class ChosenFrames:
    """A scene's frames at the model's size, and what they are (for results and report)."""

    images: list[Any]
    labels: list[int | str]
    source: str
    geometry_passes: int = 0
    strategy: str = "uniform"


@dataclass
class _Scene:
    frames: ChosenFrames | None = None
    error: str = ""


class SceneWorker:
    """Answers scenes with one engine (see module docstring).

    Raises (constructor):
        ModelLoadError: the profile's model cannot be loaded.
    """

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.settings = config.settings()
        engine, error = load_engine(self.settings.engine)
        if engine is None:
            raise ModelLoadError(f"the model did not load: {error}")
        if config.sampling == "space_aware" and not getattr(engine.model, "has_geometry_heads",
                                                            True):
            raise ModelLoadError(
                "space_aware sampling needs VGGT's point head, which the checkpoint lacks: give "
                "-p model.vggt_checkpoint:=DIR (a VGGT-1B safetensors conversion)")
        self.engine = engine
        limits, _ = load_prompt_limits(self.settings.engine)
        self.limits: PromptLimits | None = limits
        chosen = self.settings.pipeline.prompt_template  # answer.prompt_template
        self.template = (template_for_layout(engine.checkpoint_layout)
                         if chosen == AUTO_TEMPLATE else chosen)
        self.pipeline = dataclasses.replace(
            self.settings.pipeline, grounding=False, strategy="uniform", adaptive_budget=None,
            max_frame_budget=max(self.settings.pipeline.max_frame_budget, config.nframes,
                                 config.candidates))
        spec = self.settings.engine
        self.bounds = PixelBounds(spec.min_pixels, spec.max_pixels)
        self.cache = GeometryCache(Path(config.out_dir) / "geometry")
        self.cache_inputs = {
            "nframes": config.nframes, "candidates": config.candidates,
            "checkpoint": spec.checkpoint or "tiny", "vggt_checkpoint": spec.vggt_checkpoint,
            "dtype": spec.dtype, "device": spec.device.split(":")[0],
        }

    def ready(self) -> bool:
        """True (the model is loaded): what a pool waits for."""
        return True

    # -- frames ---------------------------------------------------------------------------------

    def _uniform(self, video: Path) -> ChosenFrames:
        total = count_frames(video)
        indices = uniform_video_indices(total, self.config.nframes)
        images = resize_frames(read_frames(video, indices), InputPath.VIDEO, self.bounds)
        return ChosenFrames(images, list(indices), "mp4")

    def _space_aware(self, video: Path) -> ChosenFrames:
        total = count_frames(video)
        key = selection_key(file_digest(video), self.cache_inputs)
        cached = self.cache.get(key)
        passes = 0
        if cached is None:
            cached = self._select(video, total)
            self.cache.put(key, cached, self.cache_inputs)
            passes = 1
        frames = read_frames(video, cached.frame_indices)
        images = resize_frames(frames, InputPath.FRAME_LIST, self.bounds)
        return ChosenFrames(images, list(cached.frame_indices), "mp4", passes, cached.strategy)

    def _select(self, video: Path, total: int) -> SceneSelection:
        """One VGGT pass over the candidates and the reference's greedy on its points."""
        k = self.config.nframes
        picks = space_aware_candidates(total, k, self.config.candidates)
        frames = [Frame(stamp_ns=i * _SECOND_NS, frame_id="camera", rgb=rgb)
                  for i, rgb in zip(picks, read_frames(video, picks), strict=True)]
        geometries = self.engine.predict_geometry(frames)
        snapshot = BufferSnapshot(tuple(frames), (None,) * len(frames), 0, 0.0)
        try:
            chosen = select_on_predicted(snapshot, range(len(frames)), geometries, k)
        except Exception as err:  # unusable geometry: the reference would fail there too
            raise VideoError(f"{video}: space-aware selection failed: {err}") from err
        return SceneSelection(tuple(picks[i] for i in chosen.indices), tuple(picks), total,
                              chosen.strategy, float(chosen.coverage))

    def _png(self, folder: Path) -> ChosenFrames:
        names, frames = read_png_folder(folder)
        if len(frames) != self.config.nframes:
            raise VideoError(f"{folder} holds {len(frames)} frames, not --nframes "
                             f"{self.config.nframes} (the reference requires them equal)")
        images = resize_frames(frames, InputPath.FRAME_LIST, self.bounds)
        return ChosenFrames(images, list(names), "png")

    def choose_frames(self, dataset: str, scene_name: str) -> ChosenFrames:
        """The scene's frames at the model's size.

        Raises:
            VideoError: no video or frame folder, unreadable, or too few frames.
        """
        source = scene_source(Path(self.config.video_dir), dataset, scene_name)
        if source.kind is SceneKind.MISSING:
            raise VideoError(f"no video {source.path} (nor a frame folder "
                             f"{source.path.with_suffix('')}/)")
        if source.kind is SceneKind.FRAMES:
            return self._png(source.path)
        if self.config.sampling == "space_aware":
            return self._space_aware(source.path)
        return self._uniform(source.path)

    # -- answering ------------------------------------------------------------------------------

    def _buffer(self, frames: Sequence[Frame]) -> BufferConfig:
        """A buffer that keeps every one of ``frames`` (colour-only, 1 s apart)."""
        base = self.settings.buffer
        size = sum(f.rgb.nbytes for f in frames)
        return dataclasses.replace(base, max_frames=max(base.max_frames, len(frames)),
                                   colour_only_share=1.0,
                                   max_bytes=max(base.max_bytes, 4 * size + (1 << 20)))

    def _result(self, q: BenchQuestion, record: AnswerRecord, chosen: ChosenFrames,
                prompt: str) -> dict[str, Any]:
        scored = reward(record.answer, q.ground_truth, q.question_type, self.template)
        return {
            "id": q.id, "dataset": q.dataset, "scene_name": q.scene_name,
            "question_type": q.question_type, "ground_truth": q.ground_truth,
            "prediction": scored.cleaned_prediction, "score": scored.value,
            "model_output": record.answer, "cleaned_gt_answer": scored.cleaned_ground_truth,
            "prompt": prompt, "frames": chosen.labels, "frames_source": chosen.source,
            "sampling": chosen.strategy, "sample": dict(q.row),
        }

    def answer_question(self, q: BenchQuestion, chosen: ChosenFrames) -> dict[str, Any]:
        """One question over ``chosen`` frames through the node's pipeline.

        Raises:
            QuestionInputError: the pipeline refused the question or the model failed.
        """
        frames = [Frame(stamp_ns=i * _SECOND_NS, frame_id="camera", rgb=rgb)
                  for i, rgb in enumerate(chosen.images)]
        request = QuestionRequest(
            query_id=0, question=q.question, question_type=q.question_type, options=q.options,
            frame_budget=len(frames), strategy="uniform", timeout_s=_NO_DEADLINE_S)
        record = answer_frames(self.engine, frames, request, self.pipeline,
                               self._buffer(frames), limits=self.limits)
        if record.status is not AnswerStatus.OK:
            raise QuestionInputError(f"{record.status.name}: {record.error}")
        if len(record.frame_stamps_ns) != len(frames):
            raise QuestionInputError(
                f"the pipeline used {len(record.frame_stamps_ns)} of {len(frames)} frames")
        prompt = AnsweringPipeline(self.engine, self.pipeline, limits=self.limits
                                   ).check_request(request).prompt
        return self._result(q, record, chosen, chat_text(self.engine.processor, prompt))

    def answer_scene(self, task: SceneTask) -> Iterator[QuestionOutcome]:
        """One outcome per question of ``task``, in order (see module docstring)."""
        scene = _Scene()
        for q in task.questions:
            t0 = time.monotonic()
            if q.question_type not in ALL_TYPES:
                yield QuestionOutcome(q.id, task.key, error=(
                    f"unknown question type {q.question_type!r} (VSI-Bench types: "
                    f"{', '.join(ALL_TYPES)})"))
                continue
            passes = 0
            if scene.frames is None and not scene.error:
                try:
                    scene.frames = self.choose_frames(task.dataset, task.scene_name)
                    passes = scene.frames.geometry_passes
                except VideoError as err:
                    scene.error = str(err)
                except Exception as err:  # the model is arbitrary code: the scene's error
                    scene.error = f"{task.key}: choosing frames failed: {type(err).__name__}: {err}"
            if scene.frames is None:
                yield QuestionOutcome(q.id, task.key, error=scene.error)
                continue
            try:
                result = self.answer_question(q, scene.frames)
            except QuestionInputError as err:
                yield QuestionOutcome(q.id, task.key, error=str(err), geometry_passes=passes)
                continue
            except Exception as err:  # a failure outside the pipeline's own handling
                yield QuestionOutcome(q.id, task.key, error=f"{type(err).__name__}: {err}",
                                      geometry_passes=passes)
                continue
            yield QuestionOutcome(q.id, task.key, result, geometry_passes=passes,
                                  seconds=time.monotonic() - t0)
