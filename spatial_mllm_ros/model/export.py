"""ONNX export of the two vision encoders of Spatial-MLLM (the standard path to TensorRT).

Both graphs have FIXED shapes for one clip size (``frames`` x ``height`` x ``width``; TensorRT
builds one engine per shape profile anyway).  With ``S = frames``, ``T = S / 2`` (temporal patch
size 2), ``gh = height / 14``, ``gw = width / 14``, ``N = T * gh/2 * gw/2`` video tokens and
``D`` = the LLM hidden size:

* spatial encoder (:func:`export_spatial_encoder`) -- VGGT aggregator up to the layer the
  connector reads, then the connector's merge + projection (not the fusion add):
  input ``video_tchw`` float32 (S, 3, H, W) in [0, 1] -> output ``spatial_embeds`` (N, D).
* 2D vision encoder (:func:`export_vision_encoder`) -- Qwen2.5-VL ``model.visual`` (patch
  embedding, windowed/full attention blocks, patch merger): input ``pixel_values`` float32
  (T*gh*gw, 3*2*14*14) as the Qwen2.5-VL processor emits them -> output ``video_embeds`` (N, D).
  ``grid_thw`` = [[T, gh, gw]] is baked into the graph (window indices, rotary positions and
  attention segment lengths are computed from it in Python, so the trace fixes them).

The fused video tokens of :meth:`SpatialMLLMForConditionalGeneration.encode_video` are
``video_embeds + spatial_embeds`` (the released ``mlp_add``/v1.0 connectors are additive).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spatial_mllm_ros.model.errors import ExportError
from spatial_mllm_ros.model.modeling import SpatialMLLMForConditionalGeneration

#: Default ONNX opset (>= 17 for LayerNormalization; TensorRT 8.6+/10 parse it).
DEFAULT_OPSET = 17




@dataclass(frozen=True)
class ClipShape:
    """Derived fixed shapes of one clip (see the module docstring)."""

    frames: int
    height: int
    width: int
    grid_t: int
    grid_h: int
    grid_w: int
    num_tokens: int
    hidden: int
    patch_dim: int

    @property
    def grid_thw(self) -> list[int]:
        return [self.grid_t, self.grid_h, self.grid_w]


def clip_shape(
    model: SpatialMLLMForConditionalGeneration, frames: int, height: int, width: int
) -> ClipShape:
    """Validate a clip size against ``model``'s vision config and derive the graph shapes."""
    vision: Any = model.config.vision_config
    text: Any = model.config.text_config
    patch, tps, merge = (
        int(vision.patch_size),
        int(vision.temporal_patch_size),
        int(vision.spatial_merge_size),
    )
    unit = patch * merge
    if frames <= 0 or frames % tps:
        raise ExportError(f"frames={frames} must be a positive multiple of {tps}")
    if height <= 0 or width <= 0 or height % unit or width % unit:
        raise ExportError(f"height x width {height}x{width} must be multiples of {unit}")
    gt, gh, gw = frames // tps, height // patch, width // patch
    return ClipShape(
        frames=frames,
        height=height,
        width=width,
        grid_t=gt,
        grid_h=gh,
        grid_w=gw,
        num_tokens=gt * gh * gw // (merge * merge),
        hidden=int(text.hidden_size),
        patch_dim=int(vision.in_channels) * tps * patch * patch,
    )


class SpatialEncoder(nn.Module):
    """(S, 3, H, W) frames in [0, 1] -> merged, projected spatial tokens (N, hidden)."""

    def __init__(self, model: SpatialMLLMForConditionalGeneration, grid_hw: tuple[int, int]):
        super().__init__()
        self.aggregator = model.spatial_encoder.aggregator
        self.connector = model.connector
        spatial: Any = model.config.spatial_config
        self.layer = self.connector.layer_idx % int(spatial.depth)
        self.grid_hw = grid_hw

    def forward(self, video_tchw: torch.Tensor) -> torch.Tensor:
        dtype = self.aggregator.camera_token.dtype
        kept, start = self.aggregator.forward_layers(
            video_tchw.unsqueeze(0).to(dtype), [self.layer]
        )
        return self.connector.spatial_embeds(kept[self.layer], int(start), self.grid_hw)


@contextlib.contextmanager
def fixed_position_table(module: SpatialEncoder, grid_hw: tuple[int, int]) -> Iterator[None]:
    """Replace DINOv2's position-table resize by its precomputed result for ``grid_hw``.

    The resize (antialiased bicubic ``F.interpolate``, ``aten::_upsample_bicubic2d_aa``) has no
    ONNX symbolic; it depends only on weights, so at a fixed resolution it is a constant.
    """
    dino: Any = module.aggregator.patch_embed
    with torch.no_grad():
        table = dino.position_table(*grid_hw).detach().clone()

    def constant(grid_h: int, grid_w: int) -> torch.Tensor:
        if (grid_h, grid_w) != grid_hw:
            raise ExportError(f"graph fixed at grid {grid_hw}, got {(grid_h, grid_w)}")
        return table

    dino.position_table = constant
    try:
        yield
    finally:
        del dino.position_table


def _grid_positions(batch: int, grid_h: int, grid_w: int, device: torch.device) -> torch.Tensor:
    """Same values as :func:`vggt.layers.patch_positions`, without ``aten::cartesian_prod``."""
    rows = torch.arange(grid_h, device=device).repeat_interleave(grid_w)
    cols = torch.arange(grid_w, device=device).repeat(grid_h)
    pos = torch.stack((rows, cols), dim=-1)
    return pos.view(1, grid_h * grid_w, 2).expand(batch, -1, -1).clone()


@contextlib.contextmanager
def exportable_positions() -> Iterator[None]:
    """Swap the aggregator's patch-position helper for an ONNX-exportable equivalent.

    ``torch.cartesian_prod`` has no ONNX symbolic (opset 17).  Changing
    ``vggt.layers.patch_positions`` itself the same way would make this unnecessary.
    """
    from spatial_mllm_ros.model.vggt import aggregator as agg_module

    original = agg_module.patch_positions
    agg_module.patch_positions = _grid_positions
    try:
        yield
    finally:
        agg_module.patch_positions = original


class VisionEncoder(nn.Module):
    """Qwen2.5-VL vision tower at a fixed grid: pixel_values (L, patch_dim) -> (N, hidden)."""

    def __init__(self, model: SpatialMLLMForConditionalGeneration, grid_thw: list[int]) -> None:
        super().__init__()
        self.visual = model.model.visual
        self.grid_thw: torch.Tensor
        self.register_buffer("grid_thw", torch.tensor([grid_thw], dtype=torch.long), False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        dtype = next(self.visual.parameters()).dtype
        out = self.visual(pixel_values.to(dtype), grid_thw=self.grid_thw, return_dict=True)
        pooled: torch.Tensor = out.pooler_output
        return pooled


@dataclass(frozen=True)
class ExportedGraph:
    """One exported ONNX file: its path, input/output names and fixed shapes."""

    path: str
    inputs: dict[str, list[int]]
    outputs: dict[str, list[int]]
    opset: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def trtexec_command(self, engine_path: str | None = None) -> str:
        """The ``trtexec`` command building an FP16 engine of this graph (fixed shapes)."""
        engine = engine_path or str(Path(self.path).with_suffix(".engine"))
        return f"trtexec --onnx={self.path} --saveEngine={engine} --fp16"


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    out_path: Path,
    input_names: list[str],
    output_names: list[str],
    opset: int,
) -> ExportedGraph:
    module.eval()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings: the shapes are fixed on purpose
            outputs = module(*args)
            torch.onnx.export(
                module,
                args,
                str(out_path),
                input_names=input_names,
                output_names=output_names,
                opset_version=opset,
                dynamo=False,
                do_constant_folding=True,
            )
    except Exception as err:  # the exporter raises many unrelated types
        raise ExportError(f"ONNX export to {out_path} failed: {type(err).__name__}: {err}") from err
    outs = outputs if isinstance(outputs, tuple) else (outputs,)
    return ExportedGraph(
        path=str(out_path),
        inputs={n: list(a.shape) for n, a in zip(input_names, args, strict=True)},
        outputs={n: list(o.shape) for n, o in zip(output_names, outs, strict=True)},
        opset=opset,
    )


def example_inputs(shape: ClipShape, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of both graphs: ``video_tchw`` in [0, 1] and normalised ``pixel_values``."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "video_tchw": torch.rand(shape.frames, 3, shape.height, shape.width, generator=gen),
        "pixel_values": torch.randn(
            shape.grid_t * shape.grid_h * shape.grid_w, shape.patch_dim, generator=gen
        ),
    }


def export_spatial_encoder(
    model: SpatialMLLMForConditionalGeneration,
    out_path: str | Path,
    frames: int,
    height: int,
    width: int,
    opset: int = DEFAULT_OPSET,
) -> ExportedGraph:
    """Export the spatial path: ``video_tchw`` (S, 3, H, W) -> ``spatial_embeds`` (N, hidden)."""
    shape = clip_shape(model, frames, height, width)
    module = SpatialEncoder(model, (shape.grid_h, shape.grid_w))
    x = example_inputs(shape)["video_tchw"]
    vggt_patch = int(module.aggregator.patch_size)
    grid = (height // vggt_patch, width // vggt_patch)
    with fixed_position_table(module, grid), exportable_positions():
        return _export(module, (x,), Path(out_path), ["video_tchw"], ["spatial_embeds"], opset)


def export_vision_encoder(
    model: SpatialMLLMForConditionalGeneration,
    out_path: str | Path,
    frames: int,
    height: int,
    width: int,
    opset: int = DEFAULT_OPSET,
) -> ExportedGraph:
    """Export the Qwen2.5-VL vision tower: ``pixel_values`` (T*gh*gw, 1176) -> ``video_embeds``
    (N, hidden), with ``grid_thw`` = [[T, gh, gw]] fixed in the graph.
    """
    shape = clip_shape(model, frames, height, width)
    module = VisionEncoder(model, shape.grid_thw)
    x = example_inputs(shape)["pixel_values"]
    return _export(module, (x,), Path(out_path), ["pixel_values"], ["video_embeds"], opset)


def run_onnx(path: str | Path, inputs: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
    """Run an exported graph with onnxruntime on the CPU (needs ``onnxruntime``)."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ExportError("onnxruntime is not installed (pip install onnxruntime)") from err
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {k: v.detach().cpu().float().numpy() for k, v in inputs.items()}
    return [torch.from_numpy(o) for o in session.run(None, feeds)]


def max_abs_difference(
    module: nn.Module, path: str | Path, inputs: Mapping[str, torch.Tensor]
) -> float:
    """Largest |PyTorch - onnxruntime| over the first output of ``module`` and its graph."""
    with torch.no_grad():
        expected = module(*inputs.values()).float()
    got = run_onnx(path, inputs)[0]
    if got.shape != expected.shape:
        raise ExportError(f"ONNX output {tuple(got.shape)} != PyTorch {tuple(expected.shape)}")
    return float((got - expected).abs().max())
