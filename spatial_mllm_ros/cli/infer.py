"""``spatial-mllm-infer``: answer one question about a directory of frames, offline.

The frames (``real_rgbd_shelf`` convention, see :mod:`spatial_mllm_ros.core.rgbd_dir`)
go through the node's answering code (:func:`.commands.answer_frames`: the buffer's admission,
the sampling strategy, the model, boxes on the last selected frame) and the answer is printed
as ``AnswerRecord.to_json()``, the form ``spatial-mllm-ask --json`` prints for the node.

Exit status: 0 for an OK answer, 1 for any other answer status (a model that fails to load
is a MODEL_ERROR answer, as on the node), 2 when no answer could be made (bad arguments, an
unreadable frame directory).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from spatial_mllm_ros.answering.commands import answer_frames
from spatial_mllm_ros.answering.pipeline import PipelineConfig
from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus, QuestionRequest
from spatial_mllm_ros.core.errors import RgbdDirError
from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir
from spatial_mllm_ros.sampling.budget import VIDEO_MIN_PIXELS
from spatial_mllm_ros.sampling.online import BufferConfig
from spatial_mllm_ros.sampling.strategies import available_strategies

EXIT_OK, EXIT_NOT_OK, EXIT_NO_ANSWER = 0, 1, 2
_DEFAULTS = PipelineConfig()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def infer_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spatial-mllm-infer",
        description="Answer one spatial question about a directory of frames with the node's "
                    "answering pipeline; prints the answer as JSON.",
    )
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="Spatial-MLLM checkpoint directory (safetensors)")
    p.add_argument("--frames", type=Path, required=True,
                   help="directory of frames (real_rgbd_shelf convention)")
    p.add_argument("--question", required=True)
    p.add_argument("--type", dest="question_type", default="",
                   help="question type (VSI-Bench type or 'open'); default: inferred")
    p.add_argument("--options", nargs="+", default=[],
                   help="choices of a multiple-choice question (lettered A, B, ...)")
    p.add_argument("--frame-budget", type=_positive_int, default=_DEFAULTS.frame_budget,
                   help="frames given to the model (default %(default)s)")
    p.add_argument("--strategy", choices=available_strategies(), default=_DEFAULTS.strategy,
                   help="frame sampling strategy (default %(default)s)")
    p.add_argument("--max-new-tokens", type=_positive_int, default=_DEFAULTS.max_new_tokens,
                   help="answer length in tokens (default %(default)s)")
    p.add_argument("--no-grounding", action="store_true",
                   help="skip the box-grounding generation")
    p.add_argument("--timeout", type=float, default=0.0,
                   help="deadline in seconds (default 0: none)")
    p.add_argument("--rate", type=float, default=30.0,
                   help="frame rate that stamps the frames when the directory has no "
                        "scene.json, Hz (default %(default)s)")
    p.add_argument("--max-pixels", type=_positive_int, default=None,
                   help="pixels per frame of the model's input (default: Qwen2.5-VL's)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--vggt-checkpoint", type=Path, default=None,
                   help="VGGT-1B safetensors supplying the geometry heads")
    return p


def pipeline_settings(args: argparse.Namespace) -> PipelineConfig:
    """The pipeline's settings from the parsed arguments (``PipelineConfig``'s defaults for the
    rest; no deadline unless ``--timeout``)."""
    return PipelineConfig(
        frame_budget=args.frame_budget,
        max_frame_budget=max(args.frame_budget, _DEFAULTS.max_frame_budget),
        strategy=args.strategy,
        timeout_s=args.timeout if args.timeout > 0 else math.inf,
        max_new_tokens=args.max_new_tokens,
        grounding=not args.no_grounding,
    )


def _load_engine(args: argparse.Namespace) -> tuple[Any | None, str]:
    """The engine, or ``(None, reason)`` when it cannot load (never raises, as the node)."""
    options: dict[str, Any] = {}
    if args.max_pixels is not None:
        options = {"max_pixels": args.max_pixels,
                   "min_pixels": min(VIDEO_MIN_PIXELS, args.max_pixels)}
    try:
        from spatial_mllm_ros.model.engine import SpatialMLLMEngine

        engine = SpatialMLLMEngine.from_pretrained(
            args.checkpoint, device=args.device, dtype=args.dtype,
            vggt_checkpoint=args.vggt_checkpoint, **options,
        )
    except Exception as err:  # any load failure is the answer's MODEL_ERROR
        reason = f"{type(err).__name__}: {err}"
        return None, f"model failed to load from {str(args.checkpoint)!r}: {reason}"
    return engine, ""


def infer_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-infer``: print ``AnswerRecord.to_json()``; returns the exit status."""
    args = infer_parser().parse_args(argv)
    try:
        frames = load_rgbd_dir(args.frames, rate_hz=args.rate)
    except RgbdDirError as err:
        print(f"spatial-mllm-infer: {err}", file=sys.stderr)
        return EXIT_NO_ANSWER
    request = QuestionRequest(
        query_id=0, question=args.question, question_type=args.question_type,
        options=tuple(args.options),
    )
    engine, error = _load_engine(args)
    if engine is None:
        record = AnswerRecord.failure(request, AnswerStatus.MODEL_ERROR, error)
    else:
        record = answer_frames(engine, frames, request, pipeline_settings(args), BufferConfig())
    print(json.dumps(record.to_json(), indent=2, allow_nan=False))
    return EXIT_OK if record.status is AnswerStatus.OK else EXIT_NOT_OK


if __name__ == "__main__":
    raise SystemExit(infer_main())
