"""``spatial-mllm-infer``: answer one question about a directory of frames, offline.

The frames (``real_rgbd_shelf`` convention, see :mod:`spatial_mllm_ros.core.rgbd_dir`)
go through the node's answering code (:func:`.commands.answer_frames`: the buffer's admission,
the sampling strategy, the model, boxes on the last selected frame) and the answer is printed
as ``AnswerRecord.to_json()``, the form ``spatial-mllm-ask --json`` prints for the node.

Exit status: 0 for an OK answer, 1 for any other answer status (a model that fails to load
is a MODEL_ERROR answer, as on the node), 2 when no answer could be made (bad arguments, an
unreadable frame directory).  The stages (loading the frames, the model, answering) are
reported on stderr, a line each (``--no-progress``: none); stdout holds only the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spatial_mllm_ros.answering.commands import answer_frames
from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus, QuestionRequest
from spatial_mllm_ros.core.errors import RgbdDirError
from spatial_mllm_ros.core.progress import StageLog
from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir
from spatial_mllm_ros.model.spec import load_engine, load_prompt_limits
from spatial_mllm_ros.params import ParamError
from spatial_mllm_ros.sampling.strategies import available_strategies
from spatial_mllm_ros.settings import Settings, parse_overrides

EXIT_OK, EXIT_NOT_OK, EXIT_NO_ANSWER = 0, 1, 2
#: Deadline of a question without ``--timeout``: none in effect.
NO_DEADLINE_S = 1e9


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


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
    p.add_argument("--checkpoint", default=None,
                   help="Spatial-MLLM checkpoint directory (= -p model.checkpoint:=DIR; "
                        "default: the profile's)")
    p.add_argument("--frame-budget", type=_positive_int, default=None,
                   help="frames given to the model (= -p sampling.frame_budget:=N)")
    p.add_argument("--strategy", choices=available_strategies(), default=None,
                   help="frame sampling strategy (= -p sampling.strategy:=NAME)")
    p.add_argument("--max-new-tokens", type=_positive_int, default=None,
                   help="answer length in tokens (= -p answer.max_new_tokens:=N)")
    p.add_argument("--no-grounding", action="store_true",
                   help="skip the box-grounding generation (= -p answer.grounding:=false)")
    p.add_argument("--max-pixels", type=_positive_int, default=None,
                   help="pixels per frame of the model's input (= -p model.max_pixels:=N)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                   help="weights dtype (= -p model.dtype:=DTYPE)")
    p.add_argument("--device", default=None, help="torch device (= -p model.device:=DEV)")
    p.add_argument("--vision-backend", choices=("torch", "onnxruntime", "tensorrt"),
                   default=None,
                   help="what runs the vision encoders (= -p model.vision_backend:=NAME)")
    p.add_argument("--vggt-checkpoint", default=None,
                   help="VGGT-1B safetensors supplying the geometry heads "
                        "(= -p model.vggt_checkpoint:=PATH)")
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
    flags = {
        "model.checkpoint": args.checkpoint, "sampling.frame_budget": args.frame_budget,
        "sampling.strategy": args.strategy, "answer.max_new_tokens": args.max_new_tokens,
        "answer.grounding": False if args.no_grounding else None,
        "model.max_pixels": args.max_pixels, "model.dtype": args.dtype,
        "model.device": args.device, "model.vggt_checkpoint": args.vggt_checkpoint,
        "model.vision_backend": args.vision_backend,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    overrides.update(parse_overrides(args.param))
    return Settings.from_profile(args.config, overrides)


def infer_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-infer``: print ``AnswerRecord.to_json()``; returns the exit status."""
    args = infer_parser().parse_args(argv)
    log = StageLog("spatial-mllm-infer", enabled=not args.no_progress)
    try:
        settings = settings_from_args(args)
    except ParamError as err:
        print(f"spatial-mllm-infer: {err}", file=sys.stderr)
        return EXIT_NO_ANSWER
    try:
        with log.stage(f"loading the frames of {args.frames}"):
            frames = load_rgbd_dir(args.frames, rate_hz=args.rate)
    except RgbdDirError as err:
        print(f"spatial-mllm-infer: {err}", file=sys.stderr)
        return EXIT_NO_ANSWER
    request = QuestionRequest(
        query_id=0, question=args.question, question_type=args.question_type,
        options=tuple(args.options),
        timeout_s=args.timeout if args.timeout > 0 else NO_DEADLINE_S,
    )
    with log.stage(f"loading the model ({settings.engine.description} on "
                   f"{settings.engine.device})"):
        engine, error = load_engine(settings.engine)
    if engine is None:
        record = AnswerRecord.failure(request, AnswerStatus.MODEL_ERROR, error)
    else:
        limits, _ = load_prompt_limits(settings.engine)
        with log.stage(f"answering over {len(frames)} frames"):
            record = answer_frames(engine, frames, request, settings.pipeline,
                                   settings.buffer, limits=limits)
    print(json.dumps(record.to_json(), indent=2, allow_nan=False))
    return EXIT_OK if record.status is AnswerStatus.OK else EXIT_NOT_OK


if __name__ == "__main__":
    raise SystemExit(infer_main())
