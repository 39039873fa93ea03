"""Console entry points.

``spatial-mllm-checkpoint`` -> :func:`checkpoint_main` (``tiny``, ``layout``, ``inspect``,
``export-onnx``);
``spatial-mllm-infer`` -> :func:`infer_main` (answer one question about a folder of frames).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame
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


# -- spatial-mllm-infer --------------------------------------------------------------------------
def read_frames(directory: Path, max_frames: int = 0) -> list[Frame]:
    """Frames of a folder in the ``real_rgbd_shelf`` convention.

    ``frame-NNNNNN.color.png`` (RGB), optional ``frame-NNNNNN.depth.png`` (uint16 mm, 0 = none),
    ``frame-NNNNNN.pose.txt`` (4x4 camera-to-world, metres) and ``camera_intrinsics.txt`` (3x3 K).
    ``max_frames`` > 0 keeps that many frames evenly spread over the sequence.
    """
    import cv2

    colors = sorted(directory.glob("*.color.png")) or sorted(directory.glob("*.png")) + sorted(
        directory.glob("*.jpg")
    )
    if not colors:
        raise FileNotFoundError(f"no frames (*.color.png) in {directory}")
    if 0 < max_frames < len(colors):
        idx = np.linspace(0, len(colors) - 1, max_frames).round().astype(int)
        colors = [colors[i] for i in idx]
    k_path = directory / "camera_intrinsics.txt"
    k = np.loadtxt(k_path).reshape(3, 3) if k_path.is_file() else None
    frames = []
    for seq, path in enumerate(colors):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"cannot read {path}")
        rgb: npt.NDArray[np.uint8] = np.ascontiguousarray(bgr[:, :, ::-1]).astype(np.uint8)
        stem = path.name.split(".")[0]
        depth_path = directory / f"{stem}.depth.png"
        depth = None
        if depth_path.is_file():
            raw = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED)
            if raw is not None:
                depth = raw.astype(np.float32) / 1000.0
        pose_path = directory / f"{stem}.pose.txt"
        pose = np.loadtxt(pose_path).reshape(4, 4) if pose_path.is_file() else None
        intr = (
            CameraIntrinsics.from_matrix(k, rgb.shape[1], rgb.shape[0]) if k is not None else None
        )
        frames.append(
            Frame(
                stamp_ns=seq,
                frame_id="camera",
                rgb=rgb,
                depth_m=depth,
                intrinsics=intr,
                pose=pose,
                world_frame_id="world" if pose is not None else "",
                seq=seq,
            )
        )
    return frames


def _infer_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spatial-mllm-infer", description="answer one spatial question offline"
    )
    parser.add_argument(
        "--checkpoint", type=Path, required=True, help="checkpoint directory (safetensors)"
    )
    parser.add_argument(
        "--frames", type=Path, required=True, help="folder of frames (real_rgbd_shelf convention)"
    )
    parser.add_argument("--question", required=True)
    parser.add_argument(
        "--type",
        dest="question_type",
        default=None,
        help="VSI-Bench question type (default: inferred)",
    )
    parser.add_argument(
        "--options", nargs="+", default=None, help="choices of a multiple-choice question"
    )
    parser.add_argument("--max-frames", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-pixels", type=int, default=None)
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--vggt-checkpoint", type=Path, default=None)
    return parser


def _finite(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else float(x)


def infer_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-infer``: print the answer as JSON; returns the exit status."""
    args = _infer_parser().parse_args(argv)
    from spatial_mllm_ros.vsibench.boxes import box_position, parse_boxes
    from spatial_mllm_ros.vsibench.parsing import parse_answer
    from spatial_mllm_ros.vsibench.prompts import build_prompt, infer_question_type
    from spatial_mllm_ros.model.engine import SpatialMLLMEngine
    from spatial_mllm_ros.model.processing import DEFAULT_MAX_PIXELS

    try:
        frames = read_frames(args.frames, args.max_frames)
        qtype = args.question_type or infer_question_type(args.question, args.options)
        prompt = build_prompt(args.question, qtype, args.options)
        engine = SpatialMLLMEngine.from_pretrained(
            args.checkpoint,
            device=args.device,
            dtype=args.dtype,
            vggt_checkpoint=args.vggt_checkpoint,
            max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
        )
        result = engine.answer(frames, prompt, args.max_new_tokens)
        parsed = parse_answer(result.text, qtype, args.options)
        boxes = parse_boxes(
            result.raw_text or result.text, result.resized_size, result.original_size
        )
        box_dicts = []
        for box in boxes:
            frame = frames[box.frame_index] if 0 <= box.frame_index < len(frames) else frames[0]
            d = box.to_dict()
            if frame.depth_m is not None and frame.intrinsics is not None:
                pos = box_position(box, frame.depth_m, frame.intrinsics, frame.pose)
                d["position"] = None if pos is None else [float(v) for v in pos]
            box_dicts.append(d)
    except (ModelError, FileNotFoundError, ValueError) as err:
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        return 1
    print(
        json.dumps(
            {
                "question": args.question,
                "question_type": qtype,
                "options": args.options,
                "prompt": prompt,
                "answer": result.text,
                "numeric_value": _finite(parsed.numeric_value),
                "option": parsed.option,
                "boxes": box_dicts,
                "num_frames": len(frames),
                "num_new_tokens": result.num_new_tokens,
                "num_video_tokens": result.num_video_tokens,
                "resized_size": list(result.resized_size),
                "original_size": list(result.original_size),
                "timings_s": result.timings_s,
                "checkpoint": str(args.checkpoint),
            },
            indent=2,
        )
    )
    return 0


def _run(main: Any, argv: Sequence[str] | None = None) -> None:  # pragma: no cover - console glue
    raise SystemExit(main(list(argv) if argv is not None else None))


if __name__ == "__main__":  # pragma: no cover
    _run(checkpoint_main)
