"""``spatial-mllm-checkpoint plan``: the memory plan of a checkpoint (or a released layout) on a
device, as JSON (:mod:`spatial_mllm_ros.model.plan`).

    spatial-mllm-checkpoint plan --layout v1.1 --memory-gb 16 --dtype bfloat16 \\
        --quantization int8_weight --config jetson_orin_nx_16gb

The profile gives the frame budget, the model input pixels, the dtype, the quantization and
whether colour-only sampling loads the VGGT heads; flags override it.  Exit 0 when the
configuration fits, 1 (``NOT_OK``) when it does not (the JSON then says what to lower).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.model.errors import CheckpointError
from spatial_mllm_ros.model.plan import (
    LAYOUT_CHOICES,
    MemoryPlan,
    PlanRequest,
    Quantization,
    plan,
    sizes_for_checkpoint,
    sizes_for_layout,
    weight_groups,
)
from spatial_mllm_ros.param_flags import ParamFlag, add_param_flags, param_overrides

__all__ = ["add_plan_arguments", "plan_from_values", "run_plan"]


def _camera(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: both sides must be positive")
    return w, h


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be above 0")
    return value


#: The parameter flags of ``plan`` (:mod:`spatial_mllm_ros.param_flags`); the frame budget and
#: the pixels are not held to the parameters' ranges (a plan may look beyond them).
PLAN_FLAGS: tuple[ParamFlag, ...] = (
    ParamFlag("--dtype", "model.dtype", "weights dtype (default: the profile's, else bfloat16)"),
    ParamFlag("--quantization", "model.quantization",
              "weight-only quantization (default: the profile's, else none)"),
    ParamFlag("--frame-budget", "sampling.frame_budget",
              "frames per question (default: the profile's)", bounded=False),
    ParamFlag("--max-pixels", "model.max_pixels",
              "model input pixels per frame (default: the profile's)", bounded=False),
)


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``plan`` subcommand's arguments."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("dir", nargs="?", type=Path, default=None,
                       help="checkpoint directory (its safetensors headers are read)")
    where.add_argument("--layout", choices=LAYOUT_CHOICES,
                       help="a released layout, no download: its tensor shapes are known")
    parser.add_argument("--memory-gb", type=_positive, required=True,
                        help="memory the model may use on the device, GB")
    add_param_flags(parser, PLAN_FLAGS[:2])
    parser.add_argument("--config", default=None,
                        help="parameter profile: config/<NAME>.yaml or a YAML path")
    add_param_flags(parser, PLAN_FLAGS[2:])
    parser.add_argument("--camera", type=_camera, default=(640, 480),
                        help="camera WIDTHxHEIGHT, for the aspect (default 640x480)")
    parser.add_argument("--heads", action="store_true",
                        help="count the VGGT heads (colour-only cameras; default: the "
                             "profile's model.geometry_heads, else not)")


def plan_from_values(shapes_and_sizes: tuple[Any, Any], values: dict[str, Any],
                     memory_gb: float, camera: tuple[int, int] = (640, 480),
                     heads: bool = False, frames_param: str = "sampling.frame_budget"
                     ) -> MemoryPlan:
    """The plan of parameter ``values`` (schema names) for a model's (shapes, sizes);
    ``frames_param`` names the frame budget planned (its value in ``values``)."""
    from spatial_mllm_ros import params as P

    shapes, sizes = shapes_and_sizes
    dtype = str(values.get("model.dtype") or "bfloat16")
    req = PlanRequest(
        memory_gb=memory_gb, dtype=dtype,
        quantization=Quantization(str(values.get("model.quantization") or "none")),
        frame_budget=int(values.get(frames_param) or P.default_int(frames_param)),
        max_pixels=int(values.get("model.max_pixels") or 0), camera=camera, heads=heads,
        candidates=int(values.get("sampling.monocular_candidates")
                       or P.default_int("sampling.monocular_candidates")),
        frames_param=frames_param)
    max_frames = int(values.get("sampling.max_frame_budget")
                     or P.default_int("sampling.max_frame_budget"))
    groups = weight_groups(shapes, tie_word_embeddings=not sizes.lm_head_held,
                           layers_read=sizes.spatial_layers_read)
    return plan(groups, sizes, req, max_frames=max_frames)


def run_plan(args: argparse.Namespace) -> int:
    """Print the plan as JSON; 0 if it fits, 1 if not, 2/3 for bad input."""
    from spatial_mllm_ros.params import ParamError, load_profile

    values: dict[str, Any] = {}
    if args.config is not None:
        try:
            values.update(load_profile(args.config))
        except (OSError, ParamError) as err:
            print(f"spatial-mllm-checkpoint: --config {args.config}: {err}", file=sys.stderr)
            return ExitCode.USAGE
    values.update(param_overrides(args, PLAN_FLAGS))
    if args.dir is not None:
        if not args.dir.is_dir():
            print(f"spatial-mllm-checkpoint: checkpoint directory {args.dir} does not exist",
                  file=sys.stderr)
            return ExitCode.INPUT
        try:
            source = sizes_for_checkpoint(args.dir)
        except CheckpointError as err:
            print(f"spatial-mllm-checkpoint: {err}", file=sys.stderr)
            return ExitCode.INPUT
    else:
        source = sizes_for_layout(args.layout)
    heads = bool(args.heads or values.get("model.geometry_heads", False))
    result = plan_from_values(source, values, args.memory_gb, args.camera, heads)
    out = result.to_json()
    out["source"] = str(args.dir) if args.dir is not None else f"layout {args.layout}"
    print(json.dumps(out, indent=2))
    return ExitCode.OK if result.fits else ExitCode.NOT_OK
