"""The offline evaluation loop: a rosbag2 streamed through the node's ingestion, questions
answered through the node's answering pipeline, results appended as they come.

Per run (:meth:`EvalRunner.run`):

1. ``DIR/results.jsonl`` is read if present: every ``(question id, strategy)`` pair already
   there is skipped, so a killed run continues without recomputing anything (a line cut off
   by the kill is dropped). ``DIR/run.json`` holds the settings that change answers (bag,
   topics, frame budget, buffer/pairing parameters, model); resuming with other settings is
   refused (:class:`ResumeMismatchError`).
2. The bag's messages are fed **in bag order** to :class:`~spatial_mllm_ros.core.ingest.Ingestor`
   with ``now_ns`` = the message's log (receive) time -- the node's code path, the bag's clock --
   into a :class:`~spatial_mllm_ros.sampling.online.SpatialFrameBuffer`.
3. Questions are sorted by cutoff (``Question.cutoff_stamp_ns(bag start)``; no cutoff = end of
   the bag). A question is answered when the next message's log time passes its cutoff (or
   after the last message and a final ``flush``), and only frames stamped at or before the
   cutoff are offered to the sampler. Each requested strategy answers on the same buffer
   state, so strategies are compared on identical frames.
4. Each answer becomes one line of ``results.jsonl`` (flushed and fsynced): the answer, its
   VSI-Bench score, the selected frame stamps (the deterministic, reportable frame selection),
   coverage vs uniform, per-stage timings, and a small contact sheet of the frames used.

Deterministic for a deterministic answerer: the same bag, questions and settings give the
same frames and answers, interrupted or not.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import (
    Answerer,
    AnswerRecord,
    GenerationResult,
    QuestionRequest,
)
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.ingest import Ingestor
from spatial_mllm_ros.bags import BagSource, FrameTopics, topics_from_params
from spatial_mllm_ros.evaluation.errors import EvaluationError
from spatial_mllm_ros.evaluation.metrics import score_one
from spatial_mllm_ros.evaluation.questions import Question
from spatial_mllm_ros.params import ParamValue
from spatial_mllm_ros.sampling.online import (
    SpatialFrameBuffer,
)
from spatial_mllm_ros.sampling.strategies import available_strategies
from spatial_mllm_ros.settings import buffer_config, ingest_config

__all__ = [
    "EvalConfig",
    "EvalRunner",
    "ResultsFileError",
    "ResumeMismatchError",
    "RunSummary",
    "TimedAnswerer",
    "load_results",
]

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
THUMBS_DIR = "thumbs"


class ResultsFileError(EvaluationError):
    """``results.jsonl`` has a malformed line (not the last one)."""


class ResumeMismatchError(EvaluationError):
    """The output directory holds results of a run with other settings."""


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings.

    Attributes:
        strategies: sampling strategies, each answering every question.
        frame_budget: frames per answer.
        thresholds: MRA threshold set name stored with each score (metrics are recomputed
            from the answers by the report with its own choice).
        grounding: also run the box-grounding generation (boxes are not scored).
        max_new_tokens: answer generation length.
        limit: only the first N questions of the file.
        progress: show progress bars (stderr).
        thumbnails: write a contact sheet of the frames each answer used.
        thumb_height: contact-sheet tile height, pixels.
    """

    strategies: tuple[str, ...] = ("coverage", "uniform")
    frame_budget: int = 8
    thresholds: str = "vsibench"
    grounding: bool = False
    max_new_tokens: int = 32
    limit: int | None = None
    progress: bool = True
    thumbnails: bool = True
    thumb_height: int = 72


@dataclass
class RunSummary:
    """What one invocation did.

    Attributes:
        questions: questions in this run (after ``limit``).
        pairs_total: (question, strategy) pairs in the run; pairs_resumed: found in results;
        pairs_answered: answered now.
        seconds_total: wall time of :meth:`EvalRunner.run`; seconds_model: inside the answerer.
        bag_messages: messages read; counters: the ingestor's counters; warnings: bag warnings.
    """

    questions: int = 0
    pairs_total: int = 0
    pairs_resumed: int = 0
    pairs_answered: int = 0
    answerer_calls: int = 0
    seconds_total: float = 0.0
    seconds_model: float = 0.0
    seconds_bag: float = 0.0
    bag_messages: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    buffer_admissions: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def outside_model_share(self) -> float:
        """Share of wall time spent outside the answerer (NaN before anything ran)."""
        if self.seconds_total <= 0:
            return math.nan
        return max(0.0, 1.0 - self.seconds_model / self.seconds_total)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        share = self.outside_model_share
        d["outside_model_share"] = None if math.isnan(share) else share
        return d


# ----------------------------------------------------------------------------- helpers
class TimedAnswerer:
    """Wraps an :class:`Answerer`, counting calls and the seconds spent inside it."""

    def __init__(self, inner: Answerer, clock: Callable[[], float] = time.perf_counter) -> None:
        self.inner = inner
        self.calls = 0
        self.seconds = 0.0
        self._clock = clock

    def answer(
        self, frames: Sequence[Frame], prompt: str, max_new_tokens: int = 64
    ) -> GenerationResult:
        t0 = self._clock()
        try:
            return self.inner.answer(frames, prompt, max_new_tokens)
        finally:
            self.calls += 1
            self.seconds += self._clock() - t0


def load_results(path: Path) -> list[dict[str, Any]]:
    """Lines of a results file; a malformed *last* line (a write cut off by a kill) is
    dropped and the file truncated to the last complete line.

    Raises:
        ResultsFileError: a malformed line before the last one.
    """
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    out: list[dict[str, Any]] = []
    good_bytes = 0
    for n, line in enumerate(lines, start=1):
        is_last = n == len(lines) or (n == len(lines) - 1 and lines[-1] == b"")
        if not line.strip():
            good_bytes += len(line) + 1
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or "id" not in obj or "strategy" not in obj:
                raise ValueError("not a result object")
        except ValueError as err:
            if is_last:
                with path.open("r+b") as f:
                    f.truncate(good_bytes)
                break
            raise ResultsFileError(f"{path}:{n}: malformed result line: {err}") from err
        out.append(obj)
        good_bytes += len(line) + 1
    return out


def _json_default(o: object) -> object:
    if isinstance(o, float) and math.isnan(o):
        return None
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ----------------------------------------------------------------------------- runner
class EvalRunner:
    """Evaluates an :class:`Answerer` on a bag and a questions list."""

    def __init__(
        self,
        answerer: Answerer,
        params: Mapping[str, ParamValue],
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
        if self.config.frame_budget < 1:
            raise EvaluationError(f"frame budget must be >= 1, got {self.config.frame_budget}")
        self.params = dict(params)
        self.topics = topics or topics_from_params(self.params)
        self.answerer = TimedAnswerer(answerer)
        self.model_id = model_id
        self._n_answered = 0
        self.pipeline = AnsweringPipeline(
            self.answerer,
            PipelineConfig(
                frame_budget=self.config.frame_budget,
                max_frame_budget=max(64, self.config.frame_budget),
                strategy=self.config.strategies[0],
                timeout_s=1e9,  # offline: no deadline
                max_question_chars=int(self.params.get("question.max_chars", 1000)),
                max_new_tokens=self.config.max_new_tokens,
                grounding=self.config.grounding,
            ),
        )

    # -- settings -----------------------------------------------------------------------
    def settings(self, bag: Path) -> dict[str, Any]:
        """What must be equal for results to be resumable."""
        prefixes = ("pairing.", "buffer.", "image.", "pose.", "model.max_pixels", "model.dtype",
                    "model.vggt_checkpoint", "sampling.monocular_candidates")
        keys = sorted(k for k in self.params if k.startswith(prefixes))
        return {
            "bag": str(bag.resolve()),
            "topics": self.topics.enabled(),
            "frame_budget": self.config.frame_budget,
            "grounding": self.config.grounding,
            "max_new_tokens": self.config.max_new_tokens,
            "model": self.model_id,
            "params": {k: self.params[k] for k in keys},
        }

    def _check_run_file(self, out: Path, settings: dict[str, Any], resuming: bool) -> None:
        run_file = out / RUN_FILE
        if resuming and run_file.exists():
            try:
                old = json.loads(run_file.read_text(encoding="utf-8")).get("settings", {})
            except (OSError, ValueError) as err:
                raise ResumeMismatchError(f"{run_file}: unreadable: {err}") from err
            diff = [k for k in settings if old.get(k) != settings[k]]
            if diff:
                detail = "; ".join(f"{k}: {old.get(k)!r} -> {settings[k]!r}" for k in diff)
                raise ResumeMismatchError(
                    f"{out} holds results of a run with other settings ({detail}); "
                    "use another --out directory or remove its results.jsonl"
                )
        run_file.write_text(
            json.dumps({"settings": settings, "strategies": list(self.config.strategies)},
                       indent=2),
            encoding="utf-8",
        )

    # -- main loop ----------------------------------------------------------------------
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
        qs = list(questions)[: cfg.limit] if cfg.limit is not None else list(questions)
        summary = RunSummary(questions=len(qs), pairs_total=len(qs) * len(cfg.strategies))

        results_path = out / RESULTS_FILE
        existing = load_results(results_path)
        done = {(str(r["id"]), str(r["strategy"])) for r in existing}
        wanted = {(str(q.id), s) for q in qs for s in cfg.strategies}
        summary.pairs_resumed = len(done & wanted)
        pending = [q for q in qs if any((str(q.id), s) not in done for s in cfg.strategies)]

        self._n_answered = 0
        source = BagSource(bag)  # raises for a missing / empty / unreadable bag
        try:
            kinds, warnings = source.plan(self.topics)
            summary.warnings = warnings
            self._check_run_file(out, self.settings(source.path), resuming=bool(existing))
            if pending:
                self._stream(source, kinds, pending, done, results_path, summary)
        finally:
            source.close()
        summary.pairs_answered = self._n_answered
        summary.answerer_calls = self.answerer.calls
        summary.seconds_model = self.answerer.seconds
        summary.seconds_total = time.perf_counter() - t_start
        return summary

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
        order = sorted(
            range(len(pending)),
            key=lambda i: (pending[i].cutoff_stamp_ns(start_ns) is None,
                           pending[i].cutoff_stamp_ns(start_ns) or 0, i),
        )
        queue = [pending[i] for i in order]
        buffer = SpatialFrameBuffer(buffer_config(self.params))
        ingestor = Ingestor(buffer, ingest_config(self.params))
        n_pairs = sum((str(q.id), s) not in done for q in queue for s in cfg.strategies)
        n_msgs = sum(source.info.topics[t][1] for t in kinds)
        bag_bar = tqdm(total=n_msgs, desc="bag", unit="msg", disable=not cfg.progress,
                       dynamic_ncols=True, leave=False)
        ans_bar = tqdm(total=n_pairs, desc="answers", unit="ans", disable=not cfg.progress,
                       dynamic_ncols=True)
        qi = 0
        t_answering = 0.0
        with results_path.open("a", encoding="utf-8") as sink:

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
                    self._answer(queue[qi], cutoff, buffer, done, sink, ans_bar, results_path)
                    t_answering += time.perf_counter() - t_a
                    qi += 1

            t0 = time.perf_counter()
            for m in source.messages(kinds):
                answer_due(m.log_time_ns)
                ingestor.ingest(m.kind, m.msg, m.log_time_ns)
                summary.bag_messages += 1
                bag_bar.update(1)
            ingestor.flush()
            bag_bar.close()
            answer_due(None)
            summary.seconds_bag = time.perf_counter() - t0 - t_answering
        ans_bar.close()
        summary.counters = ingestor.counters()
        summary.buffer_admissions = {
            k.removeprefix("buffer.admit."): v
            for k, v in summary.counters.items() if k.startswith("buffer.admit.")
        }

    def _answer(
        self,
        q: Question,
        cutoff: int | None,
        buffer: SpatialFrameBuffer,
        done: set[tuple[str, str]],
        sink: Any,
        bar: Any,
        results_path: Path,
    ) -> None:
        cfg = self.config
        n_frames = len(buffer.snapshot(cutoff))
        for strategy in cfg.strategies:
            if (str(q.id), strategy) in done:
                continue
            request = QuestionRequest(
                query_id=0,
                question=q.question,
                question_type=q.question_type,
                options=q.options or (),
                frame_budget=cfg.frame_budget,
                strategy=strategy,
                received_s=time.monotonic(),
                until_stamp_ns=cutoff,
            )
            calls_before, secs_before = self.answerer.calls, self.answerer.seconds
            record: AnswerRecord = self.pipeline.answer(request, buffer)
            line = self._result_line(q, strategy, cutoff, n_frames, record)
            line["model_s"] = self.answerer.seconds - secs_before
            line["answerer_calls"] = self.answerer.calls - calls_before
            if cfg.thumbnails and record.frame_stamps_ns:
                line["thumbnail"] = self._thumbnail(
                    q, strategy, record, buffer, results_path.parent
                )
            sink.write(json.dumps(line, default=_json_default, allow_nan=False) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
            done.add((str(q.id), strategy))
            self._n_answered += 1
            bar.update(1)

    def _result_line(
        self, q: Question, strategy: str, cutoff: int | None, n_frames: int, r: AnswerRecord
    ) -> dict[str, Any]:
        score = score_one(q.question_type, r.answer, q.ground_truth, self.config.thresholds,
                          question_id=q.id)
        rec = r.to_json()
        return {
            "id": q.id,
            "strategy": strategy,
            "question_type": q.question_type,
            "question": q.question,
            "options": list(q.options) if q.options else None,
            "ground_truth": q.ground_truth,
            "cutoff_stamp_ns": cutoff,
            "buffer_frames": n_frames,
            "status": rec["status"],
            "answer": r.answer,
            "error": r.error,
            "score": score.to_dict(),
            "frame_stamps_ns": rec["frame_stamps_ns"],
            "coverage": rec["coverage"],
            "uniform_coverage": rec["uniform_coverage"],
            "timings_s": rec["timings_s"],
            "boxes": rec["boxes"],
        }

    def _thumbnail(
        self, q: Question, strategy: str, record: AnswerRecord, buffer: SpatialFrameBuffer,
        out: Path,
    ) -> str | None:
        from spatial_mllm_ros.evaluation.report import write_contact_sheet

        stamps = set(record.frame_stamps_ns)
        frames = [f for f in buffer.snapshot().frames if f.stamp_ns in stamps]
        if not frames:
            return None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(q.id))
        rel = f"{THUMBS_DIR}/{safe}__{strategy}.png"
        write_contact_sheet(frames, out / rel, self.config.thumb_height)
        return rel


def answered_pairs(results: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(id, strategy) pairs present in result lines."""
    return {(str(r["id"]), str(r["strategy"])) for r in results}
