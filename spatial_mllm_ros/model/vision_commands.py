"""The ``export-onnx`` and ``build-engines`` subcommands of ``spatial-mllm-checkpoint``.

``export-onnx DIR OUT_DIR --height H --width W``: both encoder graphs at one model input size
(dynamic frame axis) into OUT_DIR with a ``manifest.json`` (shapes, an equivalent ``trtexec``
line per graph, the onnxruntime-vs-PyTorch difference).

``build-engines [DIR] --config PROFILE``: prepares the vision backend of a parameter profile
ahead of time, exactly as the node will on first use -- the same cache directory, key, frame
profile and parity check -- for the profile's ``model.vision_sizes`` (or ``--size HxW``), and
prints every size's status as JSON. Exit status 0 when every size is active, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from spatial_mllm_ros.core.progress import StageLog
from spatial_mllm_ros.param_flags import ParamFlag, add_param_flags, param_overrides

__all__ = ["add_build_arguments", "add_export_arguments", "build_engines", "export_onnx"]


def _frames(text: str) -> tuple[int, int, int]:
    parts = tuple(int(p) for p in text.split(","))
    if len(parts) != 3 or any(p <= 0 or p % 2 for p in parts) or sorted(parts) != list(parts):
        raise argparse.ArgumentTypeError(f"expected MIN,OPT,MAX even frame counts, got {text}")
    return parts[0], parts[1], parts[2]


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--height", type=int, default=112, help="model input height (x28)")
    parser.add_argument("--width", type=int, default=140, help="model input width (x28)")
    parser.add_argument("--frames", type=_frames, default=(2, 16, 32),
                        help="MIN,OPT,MAX clip lengths of the trtexec lines (default 2,16,32)")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--external-data-threshold", type=int, default=None, metavar="BYTES",
                        help="weights above this go to one .onnx.data file (default 1.5 GiB)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the onnxruntime comparison with PyTorch")


def export_onnx(args: argparse.Namespace, log: StageLog) -> int:
    """Write ``vision_encoder.onnx``, ``spatial_encoder.onnx`` and ``manifest.json``."""
    from spatial_mllm_ros.model import export as onnx_export
    from spatial_mllm_ros.model.engine import load_model

    with log.stage(f"loading the model from {args.dir}"):
        model, _ = load_model(args.dir)
    size = onnx_export.graph_size(model, args.height, args.width)
    threshold = args.external_data_threshold
    if threshold is None:
        threshold = onnx_export.EXTERNAL_DATA_THRESHOLD
    with log.stage(f"exporting both encoders at {size.label} to {args.out_dir}"):
        graphs = onnx_export.export_encoders(model, args.out_dir, args.height, args.width,
                                             opset=args.opset, external_data_threshold=threshold)
    manifest: dict[str, Any] = {
        "checkpoint": str(args.dir),
        "size": {"height": args.height, "width": args.width},
        "fused_video_tokens": "connector(video_embeds, layer_tokens)",
        "graphs": {},
    }
    inputs = onnx_export.example_inputs(size)
    for name, graph in graphs.items():
        entry = graph.to_dict()
        entry["trtexec"] = graph.trtexec_command(size, args.frames)
        if not args.no_verify:
            key = next(iter(graph.inputs))
            module = onnx_export.reference_module(model, name, size)
            with log.stage(f"comparing {Path(graph.path).name} with PyTorch (onnxruntime)"):
                entry["max_abs_diff_onnxruntime"] = onnx_export.max_abs_difference(
                    module, graph.path, {key: inputs[key]}
                )
        manifest["graphs"][name] = entry
    text = json.dumps(manifest, indent=2) + "\n"
    (Path(args.out_dir) / "manifest.json").write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


#: The parameter flags of ``build-vision`` (:mod:`spatial_mllm_ros.param_flags`): torch needs
#: no engines, so ``--backend`` takes the accelerated backends only.
BUILD_FLAGS: tuple[ParamFlag, ...] = (
    ParamFlag("--backend", "model.vision_backend", "what runs the vision encoders",
              choices=("onnxruntime", "tensorrt")),
    ParamFlag("--precision", "model.vision_precision", "precision of the TensorRT engines"),
    ParamFlag("--cache-dir", "model.vision_cache_dir", "where the graphs and engines are cached"),
)


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, nargs="?", default=None,
                        help="checkpoint directory (default: the profile's model.checkpoint)")
    parser.add_argument("--config", default="cpu_tiny",
                        help="parameter profile: config/<NAME>.yaml or a YAML path")
    parser.add_argument("--size", action="append", default=[], metavar="HxW",
                        help="model input size to prepare (repeatable; default: the "
                             "profile's model.vision_sizes)")
    add_param_flags(parser, BUILD_FLAGS)


def build_engines(args: argparse.Namespace, log: StageLog) -> int:
    """Prepare the profile's accelerated encoders; print their status; 0 if all active."""
    from spatial_mllm_ros.model.backends.config import VisionSpec, parse_sizes
    from spatial_mllm_ros.model.decoding import DecodingSpec
    from spatial_mllm_ros.model.errors import ModelError
    from spatial_mllm_ros.model.spec import EngineSpec, check_checkpoint, resolve_checkpoint
    from spatial_mllm_ros.params import ParamError, bound_values, load_profile

    try:
        values: dict[str, Any] = dict(load_profile(args.config))
    except ParamError as err:
        raise ModelError(str(err)) from err
    values.update(param_overrides(args, BUILD_FLAGS))
    try:
        vision = VisionSpec.from_values(values)
        sizes = parse_sizes(",".join(args.size)) if args.size else vision.sizes
    except ValueError as err:
        raise ModelError(str(err)) from err
    if not vision.accelerated:
        raise ModelError(f"{args.config}: model.vision_backend is torch; pass --backend")
    if not sizes:
        raise ModelError("no input size: pass --size HxW or set model.vision_sizes")
    vision = dataclasses.replace(vision, sizes=())
    bound = bound_values(EngineSpec, values)  # the profile's model.* (its checkpoint: DIR)
    if args.dir:
        bound["checkpoint"] = str(args.dir)
    spec = EngineSpec(**bound, min_pixels=0, max_pixels=0, decoding=DecodingSpec(),
                      vision=vision)
    check_checkpoint(spec)  # CheckpointNotFoundError before anything loads
    from spatial_mllm_ros.model.engine import SpatialMLLMEngine  # torch: after the check

    with log.stage(f"loading the model from {spec.description}"):
        engine = SpatialMLLMEngine.from_pretrained(
            resolve_checkpoint(spec), device=spec.device, dtype=spec.dtype,
            vggt_checkpoint=spec.vggt_checkpoint or None, vision=vision)
    try:
        for height, width in sizes:
            label = f"{vision.backend} {vision.precision} {height}x{width}"
            with log.stage(f"preparing {label} (frames {vision.min_frames}.."
                           f"{vision.max_frames})"):
                engine.prepare_vision(height, width, wait_s=None)
        status = engine.vision_backend_status
    finally:
        engine.close()
    print(json.dumps(dataclasses.asdict(status), indent=2))
    return 0 if all(s.state == "active" for s in status.sizes) else 1

