"""The offline evaluation loop: a rosbag2 streamed through the node's ingestion, questions
answered through the node's answering pipeline, results appended as they come.

Per run (:meth:`EvalRunner.run`):

1. ``DIR/results.jsonl`` is read if present (:func:`~.results.load_results`): every
   ``(question id, strategy)`` pair already there is skipped, so a killed run continues
   without recomputing anything (a line cut off by the kill is dropped). ``DIR/run.json``
   holds the settings that change answers; resuming with other settings is refused
   (:func:`~.run_plan.check_run_file`, :class:`~.errors.ResumeMismatchError`).
2. The bag's messages are fed **in bag order** to :class:`~spatial_mllm_ros.core.ingest.Ingestor`
   with ``now_ns`` = the message's log (receive) time -- the node's code path, the bag's clock --
   into a :class:`~spatial_mllm_ros.sampling.online.SpatialFrameBuffer`.
3. Questions are sorted by cutoff (``Question.cutoff_stamp_ns(bag start)``; no cutoff = end of
   the bag). A question is answered when the next message's log time passes its cutoff (or
   after the last message and a final ``flush``), and only frames stamped at or before the
   cutoff are offered to the sampler. Each requested strategy answers on the same buffer
   state, so strategies are compared on identical frames.
4. Each answer becomes one line of ``results.jsonl`` (:func:`~.results.result_line`, flushed
   and fsynced): the node's answer record (selected frame stamps, coverage vs uniform,
   per-stage timings, ...), its VSI-Bench score, and a contact sheet of the frames used.

Deterministic for a deterministic answerer: the same bag, questions and settings give the
same frames and answers, interrupted or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from spatial_mllm_ros.answering.monocular import GeometryPredictor, geometry_predictor
from spatial_mllm_ros.answering.pipeline import AnsweringPipeline
from spatial_mllm_ros.answering.types import (
    Answerer,
    AnswerRecord,
    GenerationResult,
    OnToken,
    QuestionRequest,
)
from spatial_mllm_ros.bags import (
    BagSource,
    FrameTopics,
    camera_topics,
    plan_cameras,
    topics_from_params,
)
from spatial_mllm_ros.camera_params import DEFAULT_CAMERA, CameraSettings
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.multi_ingest import CameraFeed, MultiIngestor
from spatial_mllm_ros.evaluation.errors import EvaluationError
from spatial_mllm_ros.evaluation.metrics import score_one
from spatial_mllm_ros.evaluation.questions import Question
from spatial_mllm_ros.evaluation.results import (
    RESULTS_FILE,
    ResultSink,
    load_results,
    result_line,
)
from spatial_mllm_ros.evaluation.run_plan import (
    OFFLINE_TIMEOUT_S,
    EvalConfig,
    RunSummary,
    check_run_file,
    plan_work,
    run_settings,
)
from spatial_mllm_ros.evaluation.thumbnails import frame_captions, write_contact_sheet
from spatial_mllm_ros.model.spec import load_prompt_limits
from spatial_mllm_ros.sampling.online import SpatialFrameBuffer
from spatial_mllm_ros.sampling.predicted import PredictedGeometry
from spatial_mllm_ros.sampling.strategies import available_strategies
from spatial_mllm_ros.settings import Settings

__all__ = ["THUMBS_DIR", "EvalRunner", "TimedAnswerer", "TimedPredictor", "timed"]

THUMBS_DIR = "thumbs"


class TimedAnswerer:
    """Wraps an :class:`Answerer`, counting calls and the seconds spent inside it."""

    def __init__(self, inner: Answerer, clock: Callable[[], float] = time.perf_counter) -> None:
        self.inner = inner
        self.calls = 0
        self.seconds = 0.0
        self._clock = clock

    @property
    def checkpoint_layout(self) -> str:
        """The wrapped model's checkpoint layout (the pipeline picks the prompt family by it)."""
        return self.inner.checkpoint_layout

    def answer(
        self,
        frames: Sequence[Frame],
        prompt: str,
        max_new_tokens: int = 64,
        *,
        on_token: OnToken | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        t0 = self._clock()
        try:
            return self.inner.answer(frames, prompt, max_new_tokens, on_token=on_token,
                                     should_stop=should_stop)
        finally:
            self.calls += 1
            self.seconds += self._clock() - t0


class TimedPredictor(TimedAnswerer):
    """A :class:`TimedAnswerer` for an answerer that also predicts geometry: forwards
    ``predict_geometry`` (colour-only buffers with ``coverage``, see
    :mod:`~spatial_mllm_ros.answering.monocular`), so offline selection takes the node's path;
    its seconds count as the model's (``calls`` counts ``answer`` calls only)."""

    def __init__(
        self, inner: Answerer, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        super().__init__(inner, clock)
        predictor = geometry_predictor(inner)
        if predictor is None:
            raise TypeError(f"{type(inner).__name__} has no predict_geometry method")
        self._predictor: GeometryPredictor = predictor

    def predict_geometry(self, frames: Sequence[Frame]) -> Sequence[PredictedGeometry]:
        t0 = self._clock()
        try:
            return self._predictor.predict_geometry(frames)
        finally:
            self.seconds += self._clock() - t0


def timed(answerer: Answerer) -> TimedAnswerer:
    """``answerer`` wrapped to count its calls and seconds, keeping ``predict_geometry``."""
    if geometry_predictor(answerer) is not None:
        return TimedPredictor(answerer)
    return TimedAnswerer(answerer)


class EvalRunner:
    """Evaluates an :class:`Answerer` on a bag and a questions list."""

    def __init__(
        self,
        answerer: Answerer,
        settings: Settings,
        config: EvalConfig | None = None,
        topics: FrameTopics | None = None,
        model_id: str = "",
    ) -> None:
        self.config = config or EvalConfig()
        unknown = [s for s in self.config.strategies if s not in available_strategies()]
        if unknown or not self.config.strategies:
            raise EvaluationError(
                f"unknown sampling strategies {unknown}; known: "
                + ", ".join(sorted(available_strategies()))
            )
        self.settings = settings
        self.topics = topics or topics_from_params(settings.values)
        #: camera -> its topics: the profile's named cameras (each ingested on its own into
        #: the one buffer), else the one camera of ``topics``
        self.cameras = ({DEFAULT_CAMERA: self.topics} if _one_camera(settings)
                        else camera_topics(settings.cameras))
        self.answerer = timed(answerer)
        self.model_id = model_id
        self._n_answered = 0
        # the node's pipeline, configured as the node is by the same settings
        limits, _ = load_prompt_limits(settings.engine)
        self.pipeline = AnsweringPipeline(self.answerer, settings.pipeline, limits=limits)

    def run(
        self, bag: str | Path, questions: Sequence[Question], out_dir: str | Path
    ) -> RunSummary:
        """Evaluate; see the module docstring.  Returns what this invocation did.

        Raises:
            BagError subclasses (bag missing/empty/without topics), ResultsFileError,
            ResumeMismatchError.
        """
        t_start = time.perf_counter()
        cfg = self.config
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        results_path = out / RESULTS_FILE
        existing = load_results(results_path)
        work = plan_work(questions, cfg, existing)
        summary = RunSummary(questions=len(work.questions),
                             pairs_total=len(work.questions) * len(cfg.strategies),
                             pairs_resumed=work.resumed)

        self._n_answered = 0
        source = BagSource(bag)  # raises for a missing / empty / unreadable bag
        try:
            plan = plan_cameras(source, self.cameras)
            summary.warnings = plan.warnings
            resume_keys = run_settings(source.path, self.topics, self.settings, self.model_id,
                                       self.pipeline.prompt_template)
            check_run_file(out, resume_keys, cfg.strategies, resuming=bool(existing))
            if work.pending:
                self._stream(source, plan.kinds, work.pending, work.done, results_path,
                             summary)
        finally:
            source.close()
        summary.pairs_answered = self._n_answered
        summary.answerer_calls = self.answerer.calls
        summary.seconds_model = self.answerer.seconds
        summary.seconds_total = time.perf_counter() - t_start
        return summary

    def _ingestor(self, buffer: SpatialFrameBuffer) -> MultiIngestor:
        """Each camera's ingestion into ``buffer`` (the node's own for one camera)."""
        if _one_camera(self.settings):
            cam = (self.settings.cameras[0] if self.settings.cameras
                   else CameraSettings(DEFAULT_CAMERA, self.topics.names))
            return MultiIngestor(buffer, [CameraFeed(cam, self.settings.ingest,
                                                     self.topics.names)])
        return MultiIngestor(buffer, [
            CameraFeed(cam, self.settings.camera_ingest(cam), self.cameras[cam.name].names)
            for cam in self.settings.cameras])

    def _stream(
        self,
        source: BagSource,
        kinds: Mapping[str, str],
        pending: list[Question],
        done: set[tuple[str, str]],
        results_path: Path,
        summary: RunSummary,
    ) -> None:
        cfg = self.config
        start_ns = source.info.start_ns
        queue = _by_cutoff(pending, start_ns)
        buffer = SpatialFrameBuffer(self.settings.buffer)
        ingestor = self._ingestor(buffer)
        n_pairs = sum((str(q.id), s) not in done for q in queue for s in cfg.strategies)
        n_msgs = sum(source.info.topics[t][1] for t in kinds)
        bag_bar = tqdm(total=n_msgs, desc="bag", unit="msg", disable=not cfg.progress,
                       dynamic_ncols=True, leave=False)
        ans_bar = tqdm(total=n_pairs, desc="answers", unit="ans", disable=not cfg.progress,
                       dynamic_ncols=True)
        qi = 0
        t_answering = 0.0
        with ResultSink(results_path) as sink:

            def answer_due(now_ns: int | None) -> None:
                nonlocal qi, t_answering
                while qi < len(queue):
                    cutoff = queue[qi].cutoff_stamp_ns(start_ns)
                    if now_ns is not None and (cutoff is None or now_ns <= cutoff):
                        return
                    if now_ns is not None and cutoff is not None:
                        # the pairing wait of frames queued before the cutoff expires as the
                        # node's poll timer would see it at the cutoff time
                        ingestor.poll(cutoff)
                    t_a = time.perf_counter()
                    self._answer(queue[qi], cutoff, start_ns, buffer, done, sink, ans_bar,
                                 results_path.parent)
                    t_answering += time.perf_counter() - t_a
                    qi += 1

            t0 = time.perf_counter()
            for m in source.messages(kinds):
                answer_due(m.log_time_ns)
                ingestor.ingest(m.topic, m.msg, m.log_time_ns, m.log_time_ns)
                for event in ingestor.take_events():
                    summary.warnings.append(f"bag at {m.log_time_ns} ns: {event}")
                summary.bag_messages += 1
                bag_bar.update(1)
            ingestor.flush()
            bag_bar.close()
            answer_due(None)
            summary.seconds_bag = time.perf_counter() - t0 - t_answering
        ans_bar.close()
        counts = ingestor.counts()
        summary.counters = counts.flat()
        summary.buffer_admissions = {str(r): n for r, n in counts.buffer.admitted.items()}

    def _answer(
        self,
        q: Question,
        cutoff: int | None,
        start_ns: int,
        buffer: SpatialFrameBuffer,
        done: set[tuple[str, str]],
        sink: ResultSink,
        bar: Any,
        out: Path,
    ) -> None:
        """Answer ``q`` with every strategy not yet in ``done``, one result line each."""
        cfg = self.config
        template = self.pipeline.prompt_template
        candidates = buffer.snapshot(cutoff).frames
        for strategy in cfg.strategies:
            if (str(q.id), strategy) in done:
                continue
            request = QuestionRequest(
                query_id=0,
                question=q.question,
                question_type=q.question_type,
                options=q.options or (),
                strategy=strategy,
                timeout_s=OFFLINE_TIMEOUT_S,
                received_s=time.monotonic(),
                until_stamp_ns=cutoff,
            )
            calls_before, secs_before = self.answerer.calls, self.answerer.seconds
            record: AnswerRecord = self.pipeline.answer(request, buffer)
            score = score_one(q.question_type, record.answer, q.ground_truth, cfg.thresholds,
                              question_id=q.id, template=template)
            line = result_line(q, strategy, cutoff, len(candidates), record, score,
                               model_s=self.answerer.seconds - secs_before,
                               answerer_calls=self.answerer.calls - calls_before,
                               prompt_template=template)
            if cfg.thumbnails and record.frame_stamps_ns:
                thumb = self._thumbnail(q, strategy, record, candidates, start_ns, out)
                if thumb is not None:
                    line["thumbnail"] = thumb
            sink.append(line)
            done.add((str(q.id), strategy))
            self._n_answered += 1
            bar.update(1)

    def _thumbnail(
        self, q: Question, strategy: str, record: AnswerRecord, candidates: Sequence[Frame],
        start_ns: int, out: Path,
    ) -> str | None:
        """Write the contact sheet of the frames ``record`` used; its path relative to
        ``out``, or None when none of them is among ``candidates``."""
        used = set(zip(record.frame_cameras or [DEFAULT_CAMERA] * len(record.frame_stamps_ns),
                       record.frame_stamps_ns, strict=True))
        frames = [f for f in candidates if (f.camera, f.stamp_ns) in used]
        if not frames:
            return None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(q.id))
        rel = f"{THUMBS_DIR}/{safe}__{strategy}.png"
        write_contact_sheet(frames, out / rel, self.config.thumb_height,
                            frame_captions(frames, candidates, start_ns))
        return rel


def _by_cutoff(pending: Sequence[Question], start_ns: int) -> list[Question]:
    """``pending`` in answering order: by cutoff stamp (ns; ``start_ns`` is the bag's first
    message), the questions without one (the end of the bag) last, ties in file order."""
    order = sorted(
        range(len(pending)),
        key=lambda i: (pending[i].cutoff_stamp_ns(start_ns) is None,
                       pending[i].cutoff_stamp_ns(start_ns) or 0, i),
    )
    return [pending[i] for i in order]


def _one_camera(settings: Settings) -> bool:
    """Whether the profile has the one camera of ``topics.*`` (no ``cameras`` named)."""
    return [c.name for c in settings.cameras] in ([DEFAULT_CAMERA], [])

