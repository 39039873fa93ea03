"""ONNX export of Spatial-MLLM's two vision encoders, with a dynamic frame axis, per input size.

One pair of graphs per model input size ``H x W`` (multiples of 28); the number of frames is a
dynamic axis (TensorRT then builds one engine per size with a frame-count optimisation profile,
:mod:`spatial_mllm_ros.model.backends`). With ``S`` frames (even), ``T = S / 2``,
``gh = H / 14``, ``gw = W / 14``, ``L = gh * gw``, ``D`` the LLM width and ``C2`` twice VGGT's
embedding width (the traceable modules: :mod:`spatial_mllm_ros.model.exportable`):

* ``spatial_encoder`` (:func:`export_spatial_encoder`): input ``video_tchw`` float32
  (S, 3, H, W) in [0, 1] -> output ``layer_tokens`` (S, L, C2), the patch tokens of the VGGT
  aggregator layer the connector reads. The connector stays in PyTorch.
* ``vision_encoder`` (:func:`export_vision_encoder`): input ``pixel_values`` float32
  (T * L, 1176) as the Qwen2.5-VL processor emits them -> output ``video_embeds``
  (T * L / 4, D).

The fused video tokens of :meth:`SpatialMLLMForConditionalGeneration.encode_video` are
``connector(video_embeds, layer_tokens)``. Graphs are written in float32 whatever the model's
dtype (:func:`float32_encoders`). A graph whose weights exceed ``external_data_threshold`` bytes
(default :data:`EXTERNAL_DATA_THRESHOLD`, below protobuf's 2 GiB cap) keeps them in ONE side
file, ``<name>.onnx.data`` beside it; readers must then load it from its path.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spatial_mllm_ros.model.errors import ExportError
from spatial_mllm_ros.model.exportable import (
    FrameBatchedVision,
    SpatialTokens,
    traceable_aggregator,
)
from spatial_mllm_ros.model.modeling import SpatialMLLMForConditionalGeneration

#: Default ONNX opset (>= 17 for LayerNormalization; TensorRT 8.6+/10 parse it).
DEFAULT_OPSET = 17
#: Weights above this many bytes go to one external data file (protobuf caps a file at 2 GiB).
EXTERNAL_DATA_THRESHOLD = 1536 * 1024 * 1024
#: Frames of the clip the graphs are traced with (> 2, so no axis of size 1 is specialised).
TRACE_FRAMES = 4
#: Graph names, their input and output tensor names.
VISION, SPATIAL = "vision_encoder", "spatial_encoder"
GRAPH_IO: dict[str, tuple[str, str]] = {
    VISION: ("pixel_values", "video_embeds"),
    SPATIAL: ("video_tchw", "layer_tokens"),
}


@dataclass(frozen=True)
class GraphSize:
    """Shapes of both graphs at one input size (see the module docstring for the symbols)."""

    height: int
    width: int
    grid_h: int
    grid_w: int
    temporal: int
    merge_unit: int
    hidden: int
    patch_dim: int
    spatial_dim: int

    @property
    def label(self) -> str:
        """``HxW``, the size's name in cache keys and status reports."""
        return f"{self.height}x{self.width}"

    @property
    def patches_per_group(self) -> int:
        """L: patches of one temporal group (one frame pair)."""
        return self.grid_h * self.grid_w

    def check_frames(self, frames: int) -> None:
        if frames <= 0 or frames % self.temporal:
            raise ExportError(f"frames={frames} must be a positive multiple of {self.temporal}")

    def input_shape(self, graph: str, frames: int) -> tuple[int, ...]:
        """The graph's input shape for a clip of ``frames`` frames."""
        self.check_frames(frames)
        if graph == VISION:
            return (frames // self.temporal * self.patches_per_group, self.patch_dim)
        return (frames, 3, self.height, self.width)

    def frames_of(self, graph: str, first_dim: int) -> int:
        """Frames of a clip whose graph input has ``first_dim`` rows (patches or frames)."""
        if graph == VISION:
            return first_dim // self.patches_per_group * self.temporal
        return first_dim

    def output_shape(self, graph: str, frames: int) -> tuple[int, ...]:
        """The graph's output shape for a clip of ``frames`` frames."""
        self.check_frames(frames)
        groups = frames // self.temporal
        if graph == VISION:
            return (groups * self.patches_per_group // self.merge_unit, self.hidden)
        return (frames, self.patches_per_group, self.spatial_dim)


def graph_size(model: SpatialMLLMForConditionalGeneration, height: int, width: int) -> GraphSize:
    """Validate an input size against ``model``'s vision config and derive the graph shapes.

    Raises:
        ExportError: ``height``/``width`` are not positive multiples of patch x merge (28).
    """
    vision: Any = model.config.vision_config
    text: Any = model.config.text_config
    spatial: Any = model.config.spatial_config
    patch, tps, merge = (
        int(vision.patch_size),
        int(vision.temporal_patch_size),
        int(vision.spatial_merge_size),
    )
    unit = patch * merge
    if height <= 0 or width <= 0 or height % unit or width % unit:
        raise ExportError(f"height x width {height}x{width} must be multiples of {unit}")
    return GraphSize(
        height=height,
        width=width,
        grid_h=height // patch,
        grid_w=width // patch,
        temporal=tps,
        merge_unit=merge * merge,
        hidden=int(text.hidden_size),
        patch_dim=int(vision.in_channels) * tps * patch * patch,
        spatial_dim=2 * int(spatial.embed_dim),
    )


@dataclass(frozen=True)
class ExportedGraph:
    """One exported ONNX graph.

    Attributes:
        name: :data:`VISION` or :data:`SPATIAL`.
        path: the ``.onnx`` file.
        external_data: file name of its weights beside it ("" = inside the ``.onnx``).
        height, width: the input size it is fixed at.
        inputs, outputs: tensor name -> dims; the dynamic axis is named ``frames``
            (spatial) or ``patches``/``tokens`` (vision).
        opset: the ONNX opset.
    """

    name: str
    path: str
    external_data: str
    height: int
    width: int
    inputs: dict[str, list[int | str]]
    outputs: dict[str, list[int | str]]
    opset: int

    @property
    def files(self) -> list[Path]:
        """Every file of the graph (the ``.onnx`` and its external data, if any)."""
        main = Path(self.path)
        return [main] + ([main.parent / self.external_data] if self.external_data else [])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def trtexec_command(
        self, size: GraphSize, frames: tuple[int, int, int], engine_path: str | None = None
    ) -> str:
        """A ``trtexec`` command building an FP16 engine of this graph for ``frames`` =
        (min, opt, max) clip lengths (the same build as ``spatial-mllm-checkpoint
        build-engines``, by hand)."""
        engine = engine_path or str(Path(self.path).with_suffix(".engine"))
        name = next(iter(self.inputs))
        shapes = [
            "x".join(str(d) for d in size.input_shape(self.name, f)) for f in frames
        ]
        return (
            f"trtexec --onnx={self.path} --saveEngine={engine} --fp16 "
            f"--minShapes={name}:{shapes[0]} --optShapes={name}:{shapes[1]} "
            f"--maxShapes={name}:{shapes[2]}"
        )


@contextlib.contextmanager
def float32_encoders(model: SpatialMLLMForConditionalGeneration) -> Iterator[None]:
    """Cast both encoders (vision tower, VGGT aggregator) to float32 in place for the duration,
    then back (a lossless round trip from bf16/fp16). The caller holds the model exclusively."""
    parts: list[nn.Module] = [model.model.visual, model.spatial_parts()[0].aggregator]
    dtypes = [next(p.parameters()).dtype for p in parts]
    try:
        for part in parts:
            part.float()
        yield
    finally:
        for part, dtype in zip(parts, dtypes, strict=True):
            part.to(dtype)


def _weights_bytes(proto: Any) -> int:
    return sum(len(t.raw_data) for t in proto.graph.initializer)


def _save(tmp_file: Path, out_path: Path, threshold: int) -> str:
    """Re-save the exporter's output as ``out_path`` (+ one external data file when the
    weights exceed ``threshold`` bytes); returns the external data file name or ""."""
    import onnx

    proto = onnx.load(str(tmp_file), load_external_data=True)
    for stale in (out_path, out_path.with_name(out_path.name + ".data")):
        stale.unlink(missing_ok=True)
    if _weights_bytes(proto) <= threshold:
        onnx.save_model(proto, str(out_path))
        return ""
    location = out_path.name + ".data"
    onnx.save_model(
        proto, str(out_path), save_as_external_data=True, all_tensors_to_one_file=True,
        location=location, size_threshold=0,
    )
    return location


def _export(
    name: str,
    module: nn.Module,
    example: torch.Tensor,
    out_path: Path,
    size: GraphSize,
    dynamic: tuple[str, str],
    opset: int,
    threshold: int,
) -> ExportedGraph:
    in_name, out_name = GRAPH_IO[name]
    module.eval()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".export-", dir=out_path.parent))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings: the size is fixed on purpose
            output = module(example)
            torch.onnx.export(
                module,
                (example,),
                str(tmp_dir / out_path.name),
                input_names=[in_name],
                output_names=[out_name],
                dynamic_axes={in_name: {0: dynamic[0]}, out_name: {0: dynamic[1]}},
                opset_version=opset,
                dynamo=False,
                do_constant_folding=True,
            )
        external = _save(tmp_dir / out_path.name, out_path, threshold)
    except Exception as err:  # the exporter raises many unrelated types
        raise ExportError(f"ONNX export to {out_path} failed: {type(err).__name__}: {err}") from err
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    in_dims: list[int | str] = [dynamic[0], *example.shape[1:]]
    out_dims: list[int | str] = [dynamic[1], *output.shape[1:]]
    return ExportedGraph(
        name=name, path=str(out_path), external_data=external, height=size.height,
        width=size.width, inputs={in_name: in_dims}, outputs={out_name: out_dims}, opset=opset,
    )


def example_inputs(
    size: GraphSize, frames: int = TRACE_FRAMES, seed: int = 0, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Random float32 inputs of both graphs for ``frames`` frames: ``video_tchw`` in [0, 1]
    and normalised ``pixel_values``."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "video_tchw": torch.rand(size.input_shape(SPATIAL, frames), generator=gen).to(device),
        "pixel_values": torch.randn(size.input_shape(VISION, frames), generator=gen).to(device),
    }


def export_spatial_encoder(
    model: SpatialMLLMForConditionalGeneration,
    out_path: str | Path,
    height: int,
    width: int,
    *,
    opset: int = DEFAULT_OPSET,
    external_data_threshold: int = EXTERNAL_DATA_THRESHOLD,
) -> ExportedGraph:
    """Export the spatial path at ``height x width``: ``video_tchw`` (S, 3, H, W) ->
    ``layer_tokens`` (S, L, C2), S dynamic. The model must be float32 (:func:`float32_encoders`)
    and held exclusively."""
    size = graph_size(model, height, width)
    module = SpatialTokens(model)
    device = next(module.parameters()).device
    x = example_inputs(size, device=device)["video_tchw"]
    with traceable_aggregator(module, height, width):
        return _export(SPATIAL, module, x, Path(out_path), size, ("frames", "frames"), opset,
                       external_data_threshold)


def export_vision_encoder(
    model: SpatialMLLMForConditionalGeneration,
    out_path: str | Path,
    height: int,
    width: int,
    *,
    opset: int = DEFAULT_OPSET,
    external_data_threshold: int = EXTERNAL_DATA_THRESHOLD,
) -> ExportedGraph:
    """Export the Qwen2.5-VL vision tower at ``height x width``: ``pixel_values``
    (T * L, 1176) -> ``video_embeds`` (T * L / 4, D), T dynamic. The model must be float32
    (:func:`float32_encoders`) and held exclusively."""
    size = graph_size(model, height, width)
    module = FrameBatchedVision(model.model.visual, size.grid_h, size.grid_w)
    device = next(module.parameters()).device
    x = example_inputs(size, device=device)["pixel_values"]
    return _export(VISION, module, x, Path(out_path), size, ("patches", "tokens"), opset,
                   external_data_threshold)


def export_encoders(
    model: SpatialMLLMForConditionalGeneration,
    out_dir: str | Path,
    height: int,
    width: int,
    *,
    opset: int = DEFAULT_OPSET,
    external_data_threshold: int = EXTERNAL_DATA_THRESHOLD,
) -> dict[str, ExportedGraph]:
    """Both graphs at ``height x width`` into ``out_dir`` (``vision_encoder.onnx``,
    ``spatial_encoder.onnx``), from a model of any dtype (exported in float32). The caller
    holds the model exclusively (no inference meanwhile)."""
    out = Path(out_dir)
    graph_size(model, height, width)  # validate before casting anything
    with float32_encoders(model):
        return {
            VISION: export_vision_encoder(
                model, out / f"{VISION}.onnx", height, width, opset=opset,
                external_data_threshold=external_data_threshold,
            ),
            SPATIAL: export_spatial_encoder(
                model, out / f"{SPATIAL}.onnx", height, width, opset=opset,
                external_data_threshold=external_data_threshold,
            ),
        }


def reference_module(
    model: SpatialMLLMForConditionalGeneration, name: str, size: GraphSize
) -> nn.Module:
    """The PyTorch module a graph was traced from (for :func:`max_abs_difference`)."""
    if name == VISION:
        return FrameBatchedVision(model.model.visual, size.grid_h, size.grid_w)
    return SpatialTokens(model)


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
        expected = module(*inputs.values()).float().cpu()
    got = run_onnx(path, inputs)[0]
    if got.shape != expected.shape:
        raise ExportError(f"ONNX output {tuple(got.shape)} != PyTorch {tuple(expected.shape)}")
    return float((got - expected).abs().max())
