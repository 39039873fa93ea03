"""``spatial-mllm-infer``: answer one question about a directory of frames, offline.

The frames (``real_rgbd_shelf`` convention, see :mod:`spatial_mllm_ros.core.rgbd_dir`)
go through the node's answering code (:func:`.commands.answer_frames`: the buffer's admission,
the sampling strategy, the model, boxes on the last selected frame) and the answer is printed
as ``AnswerRecord.to_json()``, the form ``spatial-mllm-ask --json`` prints for the node, with
three additions: ``timings_s`` gains ``other`` (the answer's time no stage names, so the
stages add up to ``total``: :func:`.commands.timings_with_other`), ``command_timings_s`` times
the whole command (:class:`CommandTimings`), and ``vision_backend`` says what ran each vision
encoder (:meth:`VisionUsage.to_json`: ``requested``, per encoder ``used`` and ``calls``, and
the backend's status -- torch answers while an accelerated size is still being prepared).

Exit status (:class:`~spatial_mllm_ros.exitcodes.ExitCode`): OK for an OK answer; NOT_OK for
another answer status; MODEL when the model fails to load or fails while answering (a
MODEL_ERROR answer, printed as on the node); USAGE for a bad flag or parameter; INPUT for a
checkpoint directory that does not exist (checked before anything loads) or an unreadable
frame directory.  A failure prints one line on stderr.  The stages (loading the frames, the
model, answering) are reported on stderr, a line each (``--no-progress``: none); stdout holds
only the JSON.  An accelerated engine is closed before the command exits: its background
preparation is stopped and joined, never left running into the interpreter's exit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from spatial_mllm_ros.answering.commands import (
    FirstAnswerTokens,
    answer_frames,
    timings_with_other,
)
from spatial_mllm_ros.answering.handle import EngineHandle, ModelHandle, load_engine_handle
from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus, QuestionRequest
from spatial_mllm_ros.core.errors import RgbdDirError
from spatial_mllm_ros.core.progress import StageLog
from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.model.backends.status import VisionUsage
from spatial_mllm_ros.model.errors import CheckpointNotFoundError
from spatial_mllm_ros.model.fit import check_configuration
from spatial_mllm_ros.model.spec import check_checkpoint, load_prompt_limits
from spatial_mllm_ros.param_flags import ParamFlag, add_param_flags, param_overrides
from spatial_mllm_ros.params import ParamError
from spatial_mllm_ros.settings import Settings, parse_overrides, remote_answerer

PROG = "spatial-mllm-infer"
#: Deadline of a question without ``--timeout``: none in effect.
NO_DEADLINE_S = 1e9


#: The command's parameter flags (each = ``-p NAME:=VALUE`` of the schema).
INFER_FLAGS: tuple[ParamFlag, ...] = (
    ParamFlag("--checkpoint", "model.checkpoint",
              "Spatial-MLLM checkpoint directory (default: the profile's)", "DIR"),
    ParamFlag("--frame-budget", "sampling.frame_budget", "frames given to the model", "N"),
    ParamFlag("--strategy", "sampling.strategy", "frame sampling strategy"),
    ParamFlag("--max-new-tokens", "answer.max_new_tokens", "answer length in tokens", "N"),
    ParamFlag("--no-grounding", "answer.grounding", "skip the box-grounding generation"),
    ParamFlag("--max-pixels", "model.max_pixels", "pixels per frame of the model's input", "N"),
    ParamFlag("--dtype", "model.dtype", "weights dtype"),
    ParamFlag("--device", "model.device", "torch device", "DEV"),
    ParamFlag("--vision-backend", "model.vision_backend", "what runs the vision encoders"),
    ParamFlag("--vggt-checkpoint", "model.vggt_checkpoint",
              "VGGT-1B safetensors supplying the geometry heads", "PATH"),
    ParamFlag("--endpoint", "model.endpoint",
              "ask the model server (spatial-mllm-serve) at URL instead of loading the model "
              "here (token: $SPATIAL_MLLM_TOKEN)", "URL"),
)


def infer_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spatial-mllm-infer",
        description="Answer one spatial question about a directory of frames with the node's "
                    "answering pipeline, configured by a parameter profile as the node is; "
                    "prints the answer as JSON. Flags are parameter overrides.",
    )
    p.add_argument("--frames", type=Path, required=True,
                   help="directory of frames (real_rgbd_shelf convention)")
    p.add_argument("--question", required=True)
    p.add_argument("--type", dest="question_type", default="",
                   help="question type (VSI-Bench type or 'open'); default: inferred")
    p.add_argument("--options", nargs="+", default=[],
                   help="choices of a multiple-choice question (lettered A, B, ...)")
    p.add_argument("--config", default="cpu_tiny",
                   help="parameter profile: config/<NAME>.yaml or a YAML path (default cpu_tiny)")
    add_param_flags(p, INFER_FLAGS)
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="override any parameter of the profile (validated by the schema)")
    p.add_argument("--timeout", type=float, default=0.0,
                   help="deadline in seconds (default 0: none)")
    p.add_argument("--rate", type=float, default=30.0,
                   help="frame rate that stamps the frames when the directory has no "
                        "scene.json, Hz (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no stage lines on stderr")
    return p


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The profile's settings with the flags as parameter overrides.

    Raises:
        ParamError: a flag or ``-p`` value the schema refuses.
    """
    overrides = param_overrides(args, INFER_FLAGS)
    overrides.update(parse_overrides(args.param))
    return Settings.from_profile(args.config, overrides)


@dataclass
class CommandTimings:
    """Seconds of one run of the command, in parts that add up to ``total``.

    Attributes:
        frames_read: reading and decoding the frame folder (colour, depth, poses).
        load: loading the model: config, weights, tokenizer and processors (and generating
            the embedded tiny checkpoint on first use).
        answer: answering: every frame offered to the buffer, then the pipeline (whose own
            breakdown is the answer's ``timings_s``).
        other: the rest: the profile and flags, the checkpoint check, the prompt limits,
            building the JSON.
        total: from the start of :func:`infer_main` until the JSON is printed (the
            interpreter's start-up and imports before it, and closing the engine after it,
            are not counted).
    """

    frames_read: float = 0.0
    load: float = 0.0
    answer: float = 0.0
    other: float = 0.0
    total: float = 0.0

    @contextmanager
    def measure(self, part: str, clock: Callable[[], float] = time.monotonic
                ) -> Iterator[None]:
        """Add the time inside the block to ``part``."""
        t0 = clock()
        try:
            yield
        finally:
            setattr(self, part, getattr(self, part) + clock() - t0)

    def finish(self, started: float, now: float) -> dict[str, float]:
        """Set ``total`` (``now - started``) and ``other`` (its unnamed rest); as a dict."""
        self.total = now - started
        self.other = max(0.0, self.total - self.frames_read - self.load - self.answer)
        return asdict(self)


def _fail(message: str, code: ExitCode) -> int:
    """One line on stderr; ``code``."""
    print(f"{PROG}: {message}", file=sys.stderr)
    return int(code)


def _exit_code(record: AnswerRecord) -> ExitCode:
    if record.status is AnswerStatus.OK:
        return ExitCode.OK
    return ExitCode.MODEL if record.status is AnswerStatus.MODEL_ERROR else ExitCode.NOT_OK


def _usage(handle: ModelHandle | None, settings: Settings, error: str) -> VisionUsage:
    if handle is None:
        return VisionUsage(settings.engine.vision.backend, {}, f"model not loaded: {error}")
    if not isinstance(handle, EngineHandle):  # the server's /v1/health says what runs them
        return VisionUsage(settings.engine.vision.backend, {},
                           f"on the model server {settings.remote.endpoint}")
    return handle.engine.vision_usage


def infer_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-infer``: print the answer's JSON (module docstring); returns the exit
    status (:class:`ExitCode`)."""
    started = time.monotonic()
    args = infer_parser().parse_args(argv)
    log = StageLog(PROG, enabled=not args.no_progress)
    timings = CommandTimings()
    try:
        settings = settings_from_args(args)
    except ParamError as err:
        return _fail(str(err), ExitCode.USAGE)
    try:
        if not settings.remote.endpoint:  # a server's checkpoint is on the server
            check_checkpoint(settings.engine)
    except CheckpointNotFoundError as err:
        return _fail(f"{err}; pass --checkpoint with a Spatial-MLLM checkpoint directory "
                     "(spatial-mllm-checkpoint tiny DIR writes a tiny one)", ExitCode.INPUT)
    fit = "" if settings.remote.endpoint else check_configuration(settings.engine,
                                                                   settings.values).problem
    if fit:  # before anything loads (model.memory_budget_gb, model.quantization)
        return _fail(fit, ExitCode.USAGE)
    try:
        with log.stage(f"loading the frames of {args.frames}"), timings.measure("frames_read"):
            frames = load_rgbd_dir(args.frames, rate_hz=args.rate)
    except RgbdDirError as err:
        return _fail(str(err), ExitCode.INPUT)
    request = QuestionRequest(
        query_id=0, question=args.question, question_type=args.question_type,
        options=tuple(args.options),
        timeout_s=args.timeout if args.timeout > 0 else NO_DEADLINE_S,
    )
    with log.stage(f"loading the model ({settings.engine.description} on "
                   f"{settings.engine.device})"), timings.measure("load"):
        loaded: ModelHandle | None
        loaded, error = (remote_answerer(settings, PROG) if settings.remote.endpoint
                         else load_engine_handle(settings.engine))
        engine = FirstAnswerTokens(loaded) if loaded is not None else None
    try:
        if engine is None:
            record = AnswerRecord.failure(request, AnswerStatus.MODEL_ERROR, error)
        else:
            limits, _ = load_prompt_limits(settings.engine)
            with log.stage(f"answering over {len(frames)} frames"), timings.measure("answer"):
                record = answer_frames(engine, frames, request, settings.pipeline,
                                       settings.buffer, limits=limits)
        doc = record.to_json()
        doc["timings_s"] = timings_with_other(record.timings_s)
        loaded_engine = engine.wrapped if engine is not None else None
        doc["vision_backend"] = _usage(loaded_engine, settings, error).to_json()
        doc["command_timings_s"] = timings.finish(started, time.monotonic())
        doc["token_ids"] = engine.token_ids if engine is not None else []
        print(json.dumps(doc, indent=2, allow_nan=False), flush=True)
    finally:
        if engine is not None:
            engine.close()
    code = _exit_code(record)
    if code is not ExitCode.OK:
        hint = ("; check the checkpoint with: spatial-mllm-checkpoint inspect DIR"
                if engine is None else "")
        return _fail(f"{record.status.name}: {record.error}{hint}", code)
    return int(code)


if __name__ == "__main__":
    raise SystemExit(infer_main())
