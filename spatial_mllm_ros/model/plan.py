"""A memory plan: will a checkpoint, at a precision, answer a question of ``frame_budget``
frames at ``max_pixels`` within a device's memory -- and if not, what fits.

Everything is computed from tensor shapes (a checkpoint's safetensors headers, or the released
layout built on the meta device: no download, nothing loaded) and the model's sizes; no torch
kernel runs.  The model of the memory, per stage (the stages run one after another, so the
peak is the weights plus the largest stage, plus a fixed runtime overhead):

weights
    Every tensor answering keeps resident: the vision tower, the language model (tied
    ``lm_head`` counted once), the VGGT aggregator and the connector at ``model.dtype``; the
    VGGT heads only where colour-only sampling needs them (``model.geometry_heads``; without
    them the aggregator's blocks past the connector's layer are not loaded either).
    Quantization (:mod:`spatial_mllm_ros.model.quantization`) replaces the language model's
    decoder ``Linear`` weights by ``int8`` (1 B per weight + one float32 scale per output
    channel) or ``int4`` (0.5 B per weight + a scale and a zero point at ``model.dtype`` per
    group of 128); embeddings, norms and the tied ``lm_head`` stay at ``model.dtype``.
vision tower (2D encoder)
    ``T2 = frames/2 * (H/14) * (W/14)`` patch tokens; per token, ``VISION_ACT_WIDTHS`` hidden
    widths alive at once (the residual, norm, qkv, the MLP's gate and up, its output).
spatial encoder (VGGT aggregator)
    ``TS = frames * ((H/14) * (W/14) + 5)`` tokens of width ``embed_dim``: the transient of
    one block (``SPATIAL_ACT_WIDTHS`` widths) plus the connector's layer kept (2 widths:
    frame and global tokens concatenated).  Attention runs in memory-efficient kernels
    (PyTorch SDPA): no ``tokens^2`` term.
language model (prefill; decoding reuses its cache)
    ``T = text + frames/2 * (H/28) * (W/28)`` tokens: the KV cache (``2 * layers *
    kv_heads * head_dim`` per token), ``LM_ACT_WIDTHS`` hidden widths and the MLP
    (``LM_MLP_WIDTHS`` intermediate widths) per token, and the last token's logits
    (float32).
geometry (only with the VGGT heads: colour-only sampling)
    ``candidates`` frames at 518 px wide through the aggregator, keeping the four layers the
    DPT heads read (8 widths), plus the DPT heads on ``GEOMETRY_DPT_CHUNK`` frames at a time
    (``DPT_MAPS`` maps of ``dpt_features`` channels at a quarter of the pixels).  VGGT's
    published H100 figures (3.2 GB at 8 frames, 5.6 at 20, 21 at 100) are for the stock
    model, which keeps all 24 layers: 24 x 2048 widths per token, about 0.15 GB per 518x392
    frame in bfloat16; this path keeps what it reads.
runtime
    ``OVERHEAD_GB``: the CUDA context, cuBLAS/cuDNN workspaces and the allocator's slack.

The constants are stated, not fitted in secret; ``benchmarks/bench_memory.py`` measures the
peak beside this model's prediction and prints the ratio (README, "Fit the device").
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from spatial_mllm_ros.model.errors import CheckpointError
from spatial_mllm_ros.sampling.qwen_grid import (
    FACTOR,
    PATCH_SIZE,
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
    smart_resize,
)

__all__ = [
    "OVERHEAD_GB",
    "MemoryPlan",
    "ModelSizes",
    "PlanRequest",
    "Quantization",
    "WeightGroups",
    "fit",
    "plan",
    "sizes_for_layout",
    "weight_groups",
]

GB = 1e9
"""Bytes per GB (decimal, as device specifications state memory)."""

OVERHEAD_GB = 1.0
"""Runtime memory besides tensors: the CUDA context (about 0.3-0.5 GB), cuBLAS and cuDNN
workspaces, the caching allocator's fragmentation."""
VISION_ACT_WIDTHS = 10.0
"""Hidden widths alive per 2D-encoder token in a block: residual, norm, q, k, v, attention
output, and the SwiGLU MLP's gate, up and product (intermediate 3420 ~ 2.7 widths each)."""
SPATIAL_ACT_WIDTHS = 10.0
"""Widths alive per VGGT token in one block: residual, norm, q, k, v, attention output, the
MLP's hidden (4 widths) and its output."""
SPATIAL_KEPT_WIDTHS = 2.0
"""Widths kept per VGGT token until the connector reads them: the layer's frame and global
tokens concatenated."""
LM_ACT_WIDTHS = 6.0
"""Hidden widths alive per language-model token in a decoder layer (residual, norm, q, o and
the rotary copies)."""
LM_MLP_WIDTHS = 3.0
"""Intermediate widths alive per language-model token in the SwiGLU MLP (gate, up, product)."""
TEXT_TOKENS = 256
"""Prompt tokens besides the video: the chat template, question, options and post-prompt."""
SPATIAL_EXTRA_TOKENS = 5
"""VGGT's camera token and four register tokens per frame."""
GEOMETRY_KEPT_WIDTHS = 8.0
"""Widths kept per VGGT token for the heads: four layers, frame and global tokens each."""
GEOMETRY_WIDTH_PX = 518
"""Width of the frames VGGT sees when it predicts geometry (``processing.SAMPLING_WIDTH``)."""
GEOMETRY_DPT_CHUNK = 8
"""Frames the DPT heads process at once (VGGT's ``frames_chunk_size``)."""
DPT_MAPS = 4
"""DPT feature maps alive at once per quarter-resolution pixel (of ``dpt_features`` channels:
256 in VGGT-1B)."""
INT4_GROUP = 128
"""Weights per int4 quantization group (one scale and one zero point at the model's dtype)."""
INT8_SCALE_BYTES = 4
"""Bytes of int8's per-output-channel scale (torchao keeps it in float32)."""

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
"""Bytes per element of each ``model.dtype``."""


class Quantization(StrEnum):
    """``model.quantization``: how the language model's decoder weights are stored."""

    NONE = "none"
    INT8_WEIGHT = "int8_weight"
    INT4_WEIGHT = "int4_weight"

    def bytes_per_weight(self, dtype_bytes: int) -> float:
        """Bytes per quantizable weight, int4's scales and zero points included (per group of
        128, at the model's dtype); int8's one float32 scale per output channel is counted
        per row by :func:`_weights_gb`."""
        if self is Quantization.INT8_WEIGHT:
            return 1.0
        if self is Quantization.INT4_WEIGHT:
            return 0.5 + 2.0 * dtype_bytes / INT4_GROUP
        return float(dtype_bytes)


@dataclass(frozen=True)
class WeightGroups:
    """Parameter counts (elements) of each part of a checkpoint, as answering holds them.

    ``lm_linear``: the decoder layers' 2D ``Linear`` weights (what quantization replaces), with
    ``lm_linear_rows`` their output channels summed; ``lm_other``: the rest of the language
    model (embeddings -- the tied ``lm_head`` counted once --, norms, biases).
    ``aggregator_tail``: the aggregator blocks past the connector's layer (loaded only with
    the heads, which read them).
    """

    vision: int = 0
    lm_linear: int = 0
    lm_linear_rows: int = 0
    lm_other: int = 0
    aggregator: int = 0
    aggregator_tail: int = 0
    heads: int = 0
    connector: int = 0

    @property
    def total(self) -> int:
        return (self.vision + self.lm_linear + self.lm_other + self.aggregator
                + self.aggregator_tail + self.heads + self.connector)


@dataclass(frozen=True)
class ModelSizes:
    """The sizes the activation model needs (the released Qwen2.5-VL-3B and VGGT-1B by default).

    ``spatial``: whether the model has a spatial encoder (False: a plain Qwen2.5-VL layout).
    ``spatial_layers_read``: aggregator layers up to the one the connector reads (0 = all).
    ``lm_head_held``: the checkpoint holds an ``lm_head.weight`` of its own: the loader loads
    it as is (untied, as transformers 5 does), so it counts beside the embeddings.
    """

    vision_hidden: int = 1280
    lm_hidden: int = 2048
    lm_intermediate: int = 11008
    lm_layers: int = 36
    lm_kv_heads: int = 2
    lm_head_dim: int = 128
    vocab: int = 151936
    spatial_dim: int = 1024
    spatial: bool = True
    spatial_layers_read: int = 0
    lm_head_held: bool = False
    dpt_features: int = 256


@dataclass(frozen=True)
class PlanRequest:
    """What is asked of the device.

    memory_gb: the memory the model may use on the device (GB; a Jetson's is shared with the
        OS and the cameras: give what is left for this process).
    frame_budget: frames per question.  max_pixels: model input pixels per frame (0 = the
        processor's default).  camera: the camera's (width, height), px, for the aspect.
    heads: whether VGGT's heads are loaded (colour-only sampling predicts geometry), and
        then ``candidates``: the frames of one geometry pass (``sampling.monocular_candidates``).
    """

    memory_gb: float
    dtype: str = "bfloat16"
    quantization: Quantization = Quantization.NONE
    frame_budget: int = 16
    max_pixels: int = 0
    camera: tuple[int, int] = (640, 480)
    heads: bool = False
    candidates: int = 32
    overhead_gb: float = OVERHEAD_GB
    frames_param: str = "sampling.frame_budget"
    """The parameter the advice names for the frame budget (the node's check:
    ``sampling.max_frame_budget``)."""


@dataclass(frozen=True)
class MemoryPlan:
    """The plan of one configuration: weights, the largest stage, the peak; whether it fits;
    and, for the device's memory, the largest frame budget (at these pixels) and the largest
    pixels (at this frame budget) that fit (0 where none does)."""

    memory_gb: float
    dtype: str
    quantization: str
    frame_budget: int
    max_pixels: int
    model_size: tuple[int, int]
    weights_gb: float
    weights_by_part_gb: dict[str, float]
    activations_by_stage_gb: dict[str, float]
    overhead_gb: float
    peak_gb: float
    fits: bool
    max_frame_budget_that_fits: int
    max_pixels_that_fit: int
    advice: str = ""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (GB rounded to 3 decimals)."""
        out = asdict(self)
        out["model_size"] = {"width": self.model_size[0], "height": self.model_size[1]}
        return out


# --- weights --------------------------------------------------------------------------------

def _part(name: str) -> str:
    """Which part a released (or internal) tensor name belongs to."""
    for prefix in ("spatial_encoder.vggt_model.", "spatial_encoder.", "vggt."):
        if name.startswith(prefix):
            rest = name[len(prefix):]
            return "aggregator" if rest.startswith("aggregator.") else "heads"
    if name.startswith(("connector.", "vggt_embedding_merger.")):
        return "connector"
    if name.startswith(("visual.", "model.visual.")):
        return "vision"
    if name.startswith(("aggregator.",)):
        return "aggregator"
    if name.startswith(("camera_head.", "depth_head.", "point_head.", "track_head.")):
        return "heads"
    if name == "lm_head.weight":
        return "lm_head"
    if name.startswith(("model.", "model.language_model.")):
        return "lm"
    return "other"


_AGGREGATOR_BLOCK = re.compile(r"aggregator\.(?:frame|global)_blocks\.(\d+)\.")


def weight_groups(shapes: Iterable[tuple[str, Sequence[int]]],
                  tie_word_embeddings: bool = True, layers_read: int = 0) -> WeightGroups:
    """Count the elements of each part from (name, shape) pairs; aggregator blocks from
    ``layers_read`` on (0 = none) count as ``aggregator_tail``."""
    counts = {"vision": 0, "lm_linear": 0, "lm_linear_rows": 0, "lm_other": 0,
              "aggregator": 0, "aggregator_tail": 0, "heads": 0, "connector": 0}
    for name, shape in shapes:
        n = math.prod(int(s) for s in shape)
        part = _part(name)
        block = _AGGREGATOR_BLOCK.search(name) if part == "aggregator" else None
        if layers_read and block is not None and int(block.group(1)) >= layers_read:
            part = "aggregator_tail"
        if part == "lm_head":
            if not tie_word_embeddings:
                counts["lm_other"] += n
        elif part == "lm":
            if ".layers." in name and name.endswith(".weight") and len(shape) == 2:
                counts["lm_linear"] += n
                counts["lm_linear_rows"] += int(shape[0])
            else:
                counts["lm_other"] += n
        elif part in counts:
            counts[part] += n
    return WeightGroups(**counts)


def _weights_gb(groups: WeightGroups, req: PlanRequest) -> dict[str, float]:
    b = DTYPE_BYTES[req.dtype]
    q = req.quantization
    lm = groups.lm_linear * q.bytes_per_weight(b) + groups.lm_other * b
    if q is Quantization.INT8_WEIGHT:
        lm += groups.lm_linear_rows * INT8_SCALE_BYTES  # one scale per output channel
    heads = groups.heads + groups.aggregator_tail
    return {
        "vision": groups.vision * b / GB,
        "language_model": lm / GB,
        "spatial_encoder": groups.aggregator * b / GB,
        "connector": groups.connector * b / GB,
        "vggt_heads": (heads * b / GB) if req.heads else 0.0,
    }


# --- activations ----------------------------------------------------------------------------

def model_size(req: PlanRequest) -> tuple[int, int]:
    """(W, H) the frames are resized to (both multiples of 28)."""
    w, h = req.camera
    max_pixels = req.max_pixels or VIDEO_MAX_PIXELS
    hh, ww = smart_resize(h, w, FACTOR, min(VIDEO_MIN_PIXELS, max_pixels), max_pixels)
    return int(ww), int(hh)


def _activations_gb(sizes: ModelSizes, req: PlanRequest) -> dict[str, float]:
    b = DTYPE_BYTES[req.dtype]
    w, h = model_size(req)
    frames = req.frame_budget + req.frame_budget % 2
    patches = (h // PATCH_SIZE) * (w // PATCH_SIZE)
    t2d = frames // 2 * patches
    stages = {"vision_2d": t2d * sizes.vision_hidden * VISION_ACT_WIDTHS * b / GB}
    if sizes.spatial:
        ts = frames * (patches + SPATIAL_EXTRA_TOKENS)
        stages["spatial"] = ts * sizes.spatial_dim * (SPATIAL_ACT_WIDTHS + SPATIAL_KEPT_WIDTHS) \
            * b / GB
    if sizes.spatial and req.heads:
        gw, gh = req.camera
        gh = max(PATCH_SIZE, round(GEOMETRY_WIDTH_PX * gh / gw / PATCH_SIZE) * PATCH_SIZE)
        gp = (GEOMETRY_WIDTH_PX // PATCH_SIZE) * (gh // PATCH_SIZE) + SPATIAL_EXTRA_TOKENS
        trunk = req.candidates * gp * sizes.spatial_dim * (SPATIAL_ACT_WIDTHS
                                                           + GEOMETRY_KEPT_WIDTHS)
        dpt = (min(req.candidates, GEOMETRY_DPT_CHUNK) * GEOMETRY_WIDTH_PX * gh // 4
               * DPT_MAPS * sizes.dpt_features)
        stages["geometry"] = (trunk + dpt) * b / GB
    t = TEXT_TOKENS + frames // 2 * patches // 4
    kv = 2 * sizes.lm_layers * sizes.lm_kv_heads * sizes.lm_head_dim * t * b
    act = t * (sizes.lm_hidden * LM_ACT_WIDTHS + sizes.lm_intermediate * LM_MLP_WIDTHS) * b
    stages["prefill"] = (kv + act + sizes.vocab * 4) / GB
    return stages


# --- the plan -------------------------------------------------------------------------------

def _peak(groups: WeightGroups, sizes: ModelSizes, req: PlanRequest
          ) -> tuple[dict[str, float], dict[str, float], float]:
    weights = _weights_gb(groups, req)
    stages = _activations_gb(sizes, req)
    return weights, stages, sum(weights.values()) + max(stages.values()) + req.overhead_gb


def _fits(groups: WeightGroups, sizes: ModelSizes, req: PlanRequest) -> bool:
    return _peak(groups, sizes, req)[2] <= req.memory_gb


def fit(groups: WeightGroups, sizes: ModelSizes, req: PlanRequest, max_frames: int = 256
        ) -> tuple[int, int]:
    """(largest even frame budget at ``req.max_pixels``, largest max_pixels -- a multiple of
    28 x 28 -- at ``req.frame_budget``) that fit in ``req.memory_gb``; 0 where none does."""
    best_frames = 0
    for frames in range(2, max_frames + 1, 2):
        if not _fits(groups, sizes, _with(req, frame_budget=frames)):
            break
        best_frames = frames
    best_pixels = 0
    w, h = req.camera  # past the camera's own size (rounded to 28 px) nothing is gained
    native = max(FACTOR, round(h / FACTOR) * FACTOR) * max(FACTOR, round(w / FACTOR) * FACTOR)
    lo, hi = 1, native // (FACTOR * FACTOR)
    while lo <= hi:  # peak grows with pixels: bisect on units of 28 x 28
        mid = (lo + hi) // 2
        if _fits(groups, sizes, _with(req, max_pixels=mid * FACTOR * FACTOR)):
            best_pixels, lo = mid * FACTOR * FACTOR, mid + 1
        else:
            hi = mid - 1
    return best_frames, best_pixels


def _with(req: PlanRequest, **changes: Any) -> PlanRequest:
    from dataclasses import replace

    return replace(req, **changes)


def _advice(groups: WeightGroups, sizes: ModelSizes, req: PlanRequest, fits: bool,
            frames: int, pixels: int) -> str:
    """What to lower ("" when it fits): the frame budget or the pixels where that suffices;
    else the weights' precision, the geometry pass, or the device."""
    if fits:
        return ""
    if frames >= 2:
        return (f"lower {req.frames_param} to {frames} or less (or model.max_pixels to "
                f"{pixels} or less at {req.frame_budget} frames)" if pixels else
                f"lower {req.frames_param} to {frames} or less")
    if pixels:
        return f"lower model.max_pixels to {pixels} or less"
    weights = sum(_weights_gb(groups, req).values())
    if weights + req.overhead_gb > req.memory_gb:
        base = (f"the weights ({weights:.2f} GB) and the runtime overhead "
                f"({req.overhead_gb:.1f} GB) alone exceed {req.memory_gb:g} GB")
        order = list(Quantization)
        for q in order[order.index(req.quantization) + 1:]:
            if _fits(groups, sizes, _with(req, quantization=q, frame_budget=2)):
                return f"{base}: set model.quantization to {q.value}"
        return f"{base}: use a device with more memory"
    stages = _activations_gb(sizes, _with(req, frame_budget=2))
    if stages.get("geometry", 0.0) >= max(stages.values()):
        return ("VGGT's geometry pass for colour-only sampling does not fit: lower "
                "sampling.monocular_candidates, or set model.geometry_heads to false (a "
                "depth camera)")
    return "even 2 frames at the smallest input do not fit: use a device with more memory"


def plan(groups: WeightGroups, sizes: ModelSizes, req: PlanRequest, max_frames: int = 64
         ) -> MemoryPlan:
    """The memory plan of ``req`` for a model of these weights and sizes (frame budgets
    searched up to ``max_frames``)."""
    if req.dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {req.dtype!r}; one of {', '.join(DTYPE_BYTES)}")
    weights, stages, peak = _peak(groups, sizes, req)
    fits = peak <= req.memory_gb
    frames, pixels = fit(groups, sizes, req, max_frames)
    notes = []
    if not sizes.spatial:
        notes.append("plain Qwen2.5-VL layout: no spatial encoder")
    if not req.heads:
        notes.append("VGGT heads not loaded (sensor depth): colour-only sampling needs them")
    return MemoryPlan(
        memory_gb=req.memory_gb, dtype=req.dtype, quantization=str(req.quantization),
        frame_budget=req.frame_budget, max_pixels=req.max_pixels or VIDEO_MAX_PIXELS,
        model_size=model_size(req),
        weights_gb=round(sum(weights.values()), 3),
        weights_by_part_gb={k: round(v, 3) for k, v in weights.items()},
        activations_by_stage_gb={k: round(v, 3) for k, v in stages.items()},
        overhead_gb=req.overhead_gb, peak_gb=round(peak, 3), fits=fits,
        max_frame_budget_that_fits=frames, max_pixels_that_fit=pixels,
        advice=_advice(groups, sizes, req, fits, frames, pixels), notes=notes)


# --- where the shapes come from -------------------------------------------------------------

LAYOUT_CHOICES = ("v1.0", "v1.1", "qwen2.5-vl")
"""Released layouts the planner knows without a download."""


def sizes_for_layout(layout: str) -> tuple[list[tuple[str, tuple[int, ...]]], ModelSizes]:
    """(name, shape) of a released layout (built on the meta device) and its sizes."""
    from spatial_mllm_ros.model.layout import real_layout

    if layout not in LAYOUT_CHOICES:
        raise ValueError(f"unknown layout {layout!r}; one of {', '.join(LAYOUT_CHOICES)}")
    if layout == "qwen2.5-vl":
        shapes = [(n, s) for n, s in real_layout("v1.1")
                  if _part(n) in ("vision", "lm", "lm_head")]
        return shapes, ModelSizes(spatial=False)
    return list(real_layout(layout)), ModelSizes()


def safetensors_shapes(directory: Path) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor of the ``*.safetensors`` files in ``directory`` (or of
    the one file ``directory`` names), read from their JSON headers (nothing is loaded)."""
    files = [directory] if directory.is_file() else sorted(directory.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"no *.safetensors files in {directory}")
    out: list[tuple[str, tuple[int, ...]]] = []
    for path in files:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        out.extend((name, tuple(int(s) for s in info["shape"]))
                   for name, info in header.items() if name != "__metadata__")
    return out


def sizes_for_checkpoint(directory: Path) -> tuple[list[tuple[str, tuple[int, ...]]], ModelSizes]:
    """(name, shape) of a checkpoint directory's tensors and its sizes (from config.json)."""
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"no config.json in {directory}")
    cfg = json.loads(config_path.read_text())
    text = cfg.get("text_config", cfg)
    vision = cfg.get("vision_config", {})
    shapes = safetensors_shapes(directory)
    spatial = any(_part(n) in ("aggregator",) for n, _ in shapes)
    spatial_cfg = cfg.get("spatial_config") or {}
    depth = int(spatial_cfg.get("depth", 24))
    layer = int((cfg.get("connector_config") or {}).get("spatial_embeds_layer_idx", -1))
    heads = int(text.get("num_attention_heads", 16))
    hidden = int(text.get("hidden_size", 2048))
    sizes = ModelSizes(
        vision_hidden=int(vision.get("hidden_size", 1280)),
        lm_hidden=hidden,
        lm_intermediate=int(text.get("intermediate_size", 11008)),
        lm_layers=int(text.get("num_hidden_layers", 36)),
        lm_kv_heads=int(text.get("num_key_value_heads", 2)),
        lm_head_dim=hidden // heads,
        vocab=int(text.get("vocab_size", 151936)),
        spatial_dim=int(spatial_cfg.get("embed_dim", 1024)),
        spatial=spatial, spatial_layers_read=layer % depth + 1,
        lm_head_held=any(n == "lm_head.weight" for n, _ in shapes),
        dpt_features=int(spatial_cfg.get("dpt_features", 256)))
    return shapes, sizes
