"""Console entry point ``spatial-mllm-checkpoint`` -> :func:`checkpoint_main` (``tiny``,
``layout``, ``inspect``, ``export-onnx``, ``build-engines``; the last two:
:mod:`spatial_mllm_ros.model.vision_commands`).

JSON and paths go to stdout; ``tiny``, ``inspect`` and ``export-onnx`` print a line per stage
on stderr (``--no-progress``: none).  ``inspect`` diagnoses a checkpoint that does not load
-- a corrupt or truncated safetensors file, a file that is not safetensors, a missing shard,
pickle weights, tensors that do not fit the model -- as ``"loads": false`` with the
``error`` (and the ``error_file`` whose header cannot be read), exit status NOT_OK (1), never a
traceback.

Exit codes are :class:`~spatial_mllm_ros.exitcodes.ExitCode`: USAGE for a wrong flag, INPUT for
a checkpoint path that does not exist, MODEL for a model that cannot be loaded or exported,
OUTPUT for an output that cannot be written, NOT_OK for a checkpoint that ``inspect`` finds
unloadable or engines that ``build-engines`` leaves inactive.

``spatial-mllm-infer`` runs the answering pipeline, so it lives above the model:
:mod:`spatial_mllm_ros.cli.infer`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spatial_mllm_ros.core.progress import StageLog
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.model import vision_commands as engines
from spatial_mllm_ros.model.errors import CheckpointNotFoundError, ModelError
from spatial_mllm_ros.model.plan_command import add_plan_arguments, run_plan

PROG = "spatial-mllm-checkpoint"
LAYOUTS = ("v1.0", "v1.1", "vggt", "qwen2.5-vl")
"""Layouts ``tiny`` writes and ``layout`` prints (:data:`spatial_mllm_ros.model.layout.LAYOUTS`)."""


def _checkpoint_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Spatial-MLLM checkpoint tools")
    sub = parser.add_subparsers(dest="command", required=True)
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("--no-progress", action="store_true",
                       help="no stage lines on stderr")
    tiny = sub.add_parser(
        "tiny", help="write a tiny checkpoint in the released format (random weights)",
        parents=[quiet],
    )
    tiny.add_argument("out_dir", type=Path)
    tiny.add_argument("--layout", choices=LAYOUTS, default="v1.1")
    tiny.add_argument(
        "--size",
        choices=("tiny", "medium"),
        default="tiny",
        help="'medium' (~300 MB) is for the loading-memory benchmark",
    )
    tiny.add_argument(
        "--shards", type=int, default=1, help="number of safetensors shards (index written if > 1)"
    )
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument(
        "--no-heads", action="store_true", help="omit the VGGT heads (as a file lacking them)"
    )
    tiny.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    layout = sub.add_parser(
        "layout", help="print name<TAB>shape of the real-size model (meta device)"
    )
    layout.add_argument("--layout", choices=LAYOUTS, default="v1.1")
    inspect = sub.add_parser(
        "inspect", parents=[quiet],
        help="describe a checkpoint (directory or safetensors file) and try to load it",
    )
    inspect.add_argument("dir", type=Path, metavar="DIR_OR_FILE")
    inspect.add_argument("--vggt-checkpoint", type=Path, default=None)
    export = sub.add_parser(
        "export-onnx",
        help="export the 2D and spatial vision encoders to ONNX (one input size, any number "
             "of frames) for onnxruntime and TensorRT",
        parents=[quiet],
    )
    engines.add_export_arguments(export)
    build = sub.add_parser(
        "build-engines",
        help="prepare a profile's accelerated vision encoders (export, build, parity check) "
             "into the engine cache ahead of time",
        parents=[quiet],
    )
    engines.add_build_arguments(build)
    planner = sub.add_parser(
        "plan", help="memory plan on a device: weights, peak, what fits (JSON; exit 1 if it "
                     "does not fit)")
    add_plan_arguments(planner)
    return parser


def checkpoint_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-checkpoint {tiny,layout,inspect,export-onnx,build-engines}``; returns the
    exit status."""
    args = _checkpoint_parser().parse_args(argv)
    log = StageLog(PROG, enabled=not getattr(args, "no_progress", False))
    missing = _missing_input(args)
    if missing is not None:
        return _refuse(ExitCode.INPUT, f"{missing} does not exist; pass an existing checkpoint "
                                       "folder (spatial-mllm-checkpoint tiny DIR makes one)")
    try:
        if args.command == "tiny":
            import torch

            from spatial_mllm_ros.model.tiny import write_checkpoint

            with log.stage(f"writing a {args.size} {args.layout} checkpoint to {args.out_dir}"):
                out = write_checkpoint(
                    args.out_dir,
                    args.layout,
                    size=args.size,
                    shards=args.shards,
                    seed=args.seed,
                    with_heads=not args.no_heads,
                    dtype=getattr(torch, args.dtype),
                )
            print(out)
            return ExitCode.OK
        if args.command == "layout":
            from spatial_mllm_ros.model.layout import format_layout, real_layout

            sys.stdout.write(format_layout(real_layout(args.layout)))
            return ExitCode.OK
        if args.command == "plan":
            return run_plan(args)
        if args.command == "export-onnx":
            return _status(engines.export_onnx(args, log))
        if args.command == "build-engines":
            return _status(engines.build_engines(args, log))
        return _inspect(args.dir, args.vggt_checkpoint, log)
    except CheckpointNotFoundError as err:  # e.g. the checkpoint a profile names
        return _refuse(ExitCode.INPUT, f"{err}; pass an existing checkpoint folder "
                                       "(spatial-mllm-checkpoint tiny DIR makes one)")
    except ModelError as err:
        return _refuse(ExitCode.MODEL, str(err))
    except OSError as err:  # an output that cannot be written (a file in the way, no space)
        return _refuse(ExitCode.OUTPUT, f"cannot write: {err}")


def _refuse(code: ExitCode, message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _status(code: int) -> ExitCode:
    """A command's 0 / 1 as :class:`ExitCode` (OK, or NOT_OK: it ran, but not all is well)."""
    return ExitCode.OK if code == 0 else ExitCode.NOT_OK


def _missing_input(args: argparse.Namespace) -> Path | None:
    """The checkpoint path the command reads that does not exist, if one does not."""
    paths = {"inspect": ("dir", "vggt_checkpoint"), "export-onnx": ("dir",),
             "build-engines": ("dir",)}.get(args.command, ())
    for name in paths:
        path = getattr(args, name, None)
        if path is not None and not Path(path).exists():
            return Path(path)
    return None


def _inspect(directory: Path, vggt_checkpoint: Path | None, log: StageLog) -> int:
    """Print what ``directory`` (or one safetensors file) holds and whether it loads."""
    from safetensors import SafetensorError

    from spatial_mllm_ros.model.engine import load_model
    from spatial_mllm_ros.model.layout import describe, detect_layout
    from spatial_mllm_ros.model.loading import tensor_names, weight_files

    info: dict[str, Any] = {"dir": str(directory)}
    info["files"] = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    # what a damaged checkpoint raises: ours, safetensors' (bad header, truncated data, not
    # safetensors), unreadable files, bad JSON, torch's storage errors
    damaged = (ModelError, SafetensorError, OSError, ValueError, RuntimeError)
    try:
        files = weight_files(directory)
        info["weight_files"] = [p.name for p in files]
        names: dict[str, tuple[tuple[int, ...], str]] = {}
        for path in files:
            info["error_file"] = path.name  # the file whose header fails, if one does
            names.update(tensor_names(path))
        del info["error_file"]
        info["num_tensors"] = len(names)
        info["num_parameters"] = int(sum(math.prod(s) for s, _ in names.values()))
        info["dtypes"] = sorted({d for _, d in names.values()})
        info["layout"] = detect_layout(names)
        info["prefixes"] = describe(names.items())
        extra = [vggt_checkpoint] if vggt_checkpoint else []
        with log.stage(f"loading the model from {directory}"):
            model, report = load_model(directory, extra_sources=extra)
        info["loads"] = True
        info["model_layout"] = model.config.layout  # v1.0, v1.1 or qwen2.5-vl (config.json)
        info["load_report"] = {
            "loaded": len(report.loaded),
            "missing": report.missing,
            "missing_optional": len(report.missing_optional),
            "unexpected": report.unexpected,
            "tied": report.tied,
            "heads_dropped": report.dropped_heads,
        }
        status = ExitCode.OK
    except damaged as err:
        info["loads"] = False
        info["error"] = f"{type(err).__name__}: {err}"
        status = ExitCode.NOT_OK
    print(json.dumps(info, indent=2))
    return status


def _run(main: Any, argv: Sequence[str] | None = None) -> None:  # pragma: no cover - console glue
    raise SystemExit(main(list(argv) if argv is not None else None))


if __name__ == "__main__":  # pragma: no cover
    _run(checkpoint_main)
