"""Console entry point ``spatial-mllm-checkpoint`` -> :func:`checkpoint_main` (``tiny``,
``layout``, ``inspect``, ``export-onnx``).

JSON and paths go to stdout; ``tiny``, ``inspect`` and ``export-onnx`` print a line per stage
on stderr (``--no-progress``: none).  ``inspect`` diagnoses a checkpoint that does not load
-- a corrupt or truncated safetensors file, a file that is not safetensors, a missing shard,
pickle weights, tensors that do not fit the model -- as ``"loads": false`` with the
``error`` (and the ``error_file`` whose header cannot be read), exit status 1, never a
traceback.

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
from spatial_mllm_ros.model.errors import ModelError

PROG = "spatial-mllm-checkpoint"


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
    tiny.add_argument("--layout", choices=("v1.0", "v1.1", "vggt"), default="v1.1")
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
    layout.add_argument("--layout", choices=("v1.0", "v1.1", "vggt"), default="v1.1")
    inspect = sub.add_parser(
        "inspect", parents=[quiet],
        help="describe a checkpoint (directory or safetensors file) and try to load it",
    )
    inspect.add_argument("dir", type=Path, metavar="DIR_OR_FILE")
    inspect.add_argument("--vggt-checkpoint", type=Path, default=None)
    export = sub.add_parser(
        "export-onnx",
        help="export the 2D and spatial vision encoders to ONNX (fixed shapes) for TensorRT",
        parents=[quiet],
    )
    export.add_argument("dir", type=Path)
    export.add_argument("out_dir", type=Path)
    export.add_argument("--frames", type=int, default=2, help="clip length S (even)")
    export.add_argument("--height", type=int, default=112, help="model input height (x28)")
    export.add_argument("--width", type=int, default=140, help="model input width (x28)")
    export.add_argument("--opset", type=int, default=17)
    export.add_argument(
        "--no-verify", action="store_true", help="skip the onnxruntime comparison with PyTorch"
    )
    return parser


def checkpoint_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-checkpoint {tiny,layout,inspect,export-onnx}``; returns the exit status."""
    args = _checkpoint_parser().parse_args(argv)
    log = StageLog(PROG, enabled=not getattr(args, "no_progress", False))
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
            return 0
        if args.command == "layout":
            from spatial_mllm_ros.model.layout import format_layout, real_layout

            sys.stdout.write(format_layout(real_layout(args.layout)))
            return 0
        if args.command == "export-onnx":
            return _export_onnx(args, log)
        return _inspect(args.dir, args.vggt_checkpoint, log)
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _export_onnx(args: argparse.Namespace, log: StageLog) -> int:
    """Write ``vision_encoder.onnx``, ``spatial_encoder.onnx`` and ``manifest.json``."""
    from spatial_mllm_ros.model import export as onnx_export
    from spatial_mllm_ros.model.engine import load_model

    with log.stage(f"loading the model from {args.dir}"):
        model, _ = load_model(args.dir)
    shape = onnx_export.clip_shape(model, args.frames, args.height, args.width)
    size = (args.frames, args.height, args.width)
    out: Path = args.out_dir
    clip = f"{args.frames} frames {args.width}x{args.height}"
    with log.stage(f"exporting the vision encoder ({clip}) to {out / 'vision_encoder.onnx'}"):
        vision = onnx_export.export_vision_encoder(
            model, out / "vision_encoder.onnx", *size, opset=args.opset
        )
    with log.stage(f"exporting the spatial encoder to {out / 'spatial_encoder.onnx'}"):
        spatial = onnx_export.export_spatial_encoder(
            model, out / "spatial_encoder.onnx", *size, opset=args.opset
        )
    graphs = {"vision_encoder": vision, "spatial_encoder": spatial}
    manifest: dict[str, Any] = {
        "checkpoint": str(args.dir),
        "clip": {"frames": args.frames, "height": args.height, "width": args.width},
        "grid_thw": shape.grid_thw,
        "fused_video_tokens": "video_embeds + spatial_embeds",
        "graphs": {},
    }
    inputs = onnx_export.example_inputs(shape)
    modules = {
        "vision_encoder": onnx_export.VisionEncoder(model, shape.grid_thw),
        "spatial_encoder": onnx_export.SpatialEncoder(model, (shape.grid_h, shape.grid_w)),
    }
    for name, graph in graphs.items():
        entry = graph.to_dict()
        entry["trtexec"] = graph.trtexec_command()
        if not args.no_verify:
            key = next(iter(graph.inputs))
            with log.stage(f"comparing {Path(graph.path).name} with PyTorch (onnxruntime)"):
                entry["max_abs_diff_onnxruntime"] = onnx_export.max_abs_difference(
                    modules[name], graph.path, {key: inputs[key]}
                )
        manifest["graphs"][name] = entry
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(manifest, indent=2))
    return 0


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
            _, report = load_model(directory, extra_sources=extra)
        info["loads"] = True
        info["load_report"] = {
            "loaded": len(report.loaded),
            "missing": report.missing,
            "missing_optional": len(report.missing_optional),
            "unexpected": report.unexpected,
            "tied": report.tied,
            "heads_dropped": report.dropped_heads,
        }
        status = 0
    except damaged as err:
        info["loads"] = False
        info["error"] = f"{type(err).__name__}: {err}"
        status = 1
    print(json.dumps(info, indent=2))
    return status


def _run(main: Any, argv: Sequence[str] | None = None) -> None:  # pragma: no cover - console glue
    raise SystemExit(main(list(argv) if argv is not None else None))


if __name__ == "__main__":  # pragma: no cover
    _run(checkpoint_main)
