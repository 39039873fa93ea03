"""Console entry point ``spatial-mllm-checkpoint`` -> :func:`checkpoint_main` (``tiny``,
``layout``, ``inspect``, ``export-onnx``).

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

from spatial_mllm_ros.model.errors import ModelError


def _checkpoint_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spatial-mllm-checkpoint", description="Spatial-MLLM checkpoint tools"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    tiny = sub.add_parser(
        "tiny", help="write a tiny checkpoint in the released format (random weights)"
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
    inspect = sub.add_parser("inspect", help="describe a checkpoint directory and try to load it")
    inspect.add_argument("dir", type=Path)
    inspect.add_argument("--vggt-checkpoint", type=Path, default=None)
    export = sub.add_parser(
        "export-onnx",
        help="export the 2D and spatial vision encoders to ONNX (fixed shapes) for TensorRT",
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
    try:
        if args.command == "tiny":
            import torch

            from spatial_mllm_ros.model.tiny import write_checkpoint

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
            return _export_onnx(args)
        return _inspect(args.dir, args.vggt_checkpoint)
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _export_onnx(args: argparse.Namespace) -> int:
    """Write ``vision_encoder.onnx``, ``spatial_encoder.onnx`` and ``manifest.json``."""
    from spatial_mllm_ros.model import export as onnx_export
    from spatial_mllm_ros.model.engine import load_model

    model, _ = load_model(args.dir)
    shape = onnx_export.clip_shape(model, args.frames, args.height, args.width)
    size = (args.frames, args.height, args.width)
    out: Path = args.out_dir
    graphs = {
        "vision_encoder": onnx_export.export_vision_encoder(
            model, out / "vision_encoder.onnx", *size, opset=args.opset
        ),
        "spatial_encoder": onnx_export.export_spatial_encoder(
            model, out / "spatial_encoder.onnx", *size, opset=args.opset
        ),
    }
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
            entry["max_abs_diff_onnxruntime"] = onnx_export.max_abs_difference(
                modules[name], graph.path, {key: inputs[key]}
            )
        manifest["graphs"][name] = entry
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(manifest, indent=2))
    return 0


def _inspect(directory: Path, vggt_checkpoint: Path | None) -> int:
    from spatial_mllm_ros.model.engine import load_model
    from spatial_mllm_ros.model.layout import describe, detect_layout
    from spatial_mllm_ros.model.loading import tensor_names, weight_files

    info: dict[str, Any] = {"dir": str(directory)}
    info["files"] = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    try:
        info["weight_files"] = [p.name for p in weight_files(directory)]
        names = tensor_names(directory)
        info["num_tensors"] = len(names)
        info["num_parameters"] = int(sum(math.prod(s) for s, _ in names.values()))
        info["dtypes"] = sorted({d for _, d in names.values()})
        info["layout"] = detect_layout(names)
        info["prefixes"] = describe(names.items())
        extra = [vggt_checkpoint] if vggt_checkpoint else []
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
    except ModelError as err:
        info["loads"] = False
        info["error"] = f"{type(err).__name__}: {err}"
        status = 1
    print(json.dumps(info, indent=2))
    return status


def _run(main: Any, argv: Sequence[str] | None = None) -> None:  # pragma: no cover - console glue
    raise SystemExit(main(list(argv) if argv is not None else None))


if __name__ == "__main__":  # pragma: no cover
    _run(checkpoint_main)
