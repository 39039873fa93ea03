"""TensorRT engines of an exported encoder graph: build (ONNX -> plan) and run (TensorRT 10).

Build: the ONNX parser reads the graph FROM ITS PATH (so external data beside it is found), one
optimisation profile covers the frame counts (min/opt/max input shapes; a shape outside it is
refused at run time, so the caller checks first), the precision is a builder flag (``fp16`` or
``bf16``; normalisations and reductions are asked to stay float32, as FP16 sums of squares
overflow). Run: tensors are bound by name (``set_input_shape``, ``set_tensor_address`` on the
torch tensors' memory) and the engine is enqueued on torch's current CUDA stream
(``execute_async_v3``), so no host copy and no extra synchronisation happen.

Engines are specific to the TensorRT version and the GPU: :func:`environment` gives both for
the cache key (:class:`~spatial_mllm_ros.model.backends.cache.EngineKey`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from spatial_mllm_ros.model.backends.errors import (
    BackendUnavailableError,
    EngineBuildError,
    OutsideProfileError,
)

__all__ = ["TensorRTRunner", "availability", "build_plan", "environment"]

#: Workspace the builder may use, bytes.
DEFAULT_WORKSPACE = 4 << 30
#: Builder optimisation level (0-5; TensorRT's default is 3; lower builds faster).
DEFAULT_OPTIMIZATION_LEVEL = 3


def _trt() -> Any:
    try:
        import tensorrt
    except ImportError as err:
        raise BackendUnavailableError(
            "tensorrt is not installed (JetPack ships it; on a desktop: pip install tensorrt)"
        ) from err
    return tensorrt


def availability(device: torch.device) -> str:
    """"" when TensorRT can run on ``device``, else why not."""
    if device.type != "cuda":
        return f"tensorrt needs a CUDA device, the model is on {device}"
    if not torch.cuda.is_available():
        return "tensorrt needs a GPU and none is visible to torch"
    try:
        _trt()
    except BackendUnavailableError as err:
        return str(err)
    return ""


def environment(device: torch.device) -> tuple[str, str]:
    """(TensorRT version, compute capability ``major.minor`` of ``device``)."""
    trt = _trt()
    major, minor = torch.cuda.get_device_capability(device)
    return str(trt.__version__), f"{major}.{minor}"


class _Logger:
    """A TensorRT logger keeping errors for the exception message (warnings are dropped)."""

    def __init__(self, trt: Any) -> None:
        self.errors: list[str] = []
        outer = self

        class Log(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)

            def log(self, severity: Any, msg: str) -> None:
                if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR):
                    outer.errors.append(msg)

        self.logger = Log()


def _keep_float32(trt: Any, network: Any) -> None:
    """Ask normalisation, reduction and power layers to run in float32."""
    kinds = {trt.LayerType.NORMALIZATION, trt.LayerType.REDUCE}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        keep = layer.type in kinds
        if layer.type == trt.LayerType.ELEMENTWISE:
            layer.__class__ = trt.IElementWiseLayer
            keep = layer.op == trt.ElementWiseOperation.POW
        floats = all(layer.get_output(j).dtype in (trt.float32, trt.float16, trt.bfloat16)
                     for j in range(layer.num_outputs))
        if keep and floats:  # not the integer shape arithmetic
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)


def build_plan(
    onnx_path: str | Path,
    input_name: str,
    shapes: Sequence[Sequence[int]],
    precision: str,
    workspace_bytes: int | None = None,
    optimization_level: int | None = None,
) -> bytes:
    """A serialised engine of ``onnx_path`` for ``input_name`` in ``shapes`` = (min, opt, max);
    workspace and optimisation level default to :data:`DEFAULT_WORKSPACE` and
    :data:`DEFAULT_OPTIMIZATION_LEVEL` (read at call time, so a benchmark may lower it).

    Raises:
        BackendUnavailableError: tensorrt is not installed.
        EngineBuildError: the parser or the builder failed (their messages included).
    """
    trt = _trt()
    log = _Logger(trt)
    builder = trt.Builder(log.logger)
    network = builder.create_network(0)  # explicit batch: TensorRT 10's only mode
    parser = trt.OnnxParser(network, log.logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(f"TensorRT cannot parse {onnx_path}: {'; '.join(errors)}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE,
                                 workspace_bytes or DEFAULT_WORKSPACE)
    config.builder_optimization_level = (
        DEFAULT_OPTIMIZATION_LEVEL if optimization_level is None else optimization_level
    )
    if precision in ("fp16", "bf16"):
        config.set_flag(trt.BuilderFlag.FP16 if precision == "fp16" else trt.BuilderFlag.BF16)
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
        _keep_float32(trt, network)
    profile = builder.create_optimization_profile()
    low, opt, high = (tuple(int(d) for d in s) for s in shapes)
    profile.set_shape(input_name, low, opt, high)
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildError(f"TensorRT could not build {onnx_path}: {'; '.join(log.errors)}")
    return bytes(plan)


_DTYPES: dict[str, torch.dtype] = {
    "FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16,
}


class TensorRTRunner:
    """A deserialised engine: ``runner(x)`` -> its single output, on ``device``.

    Args:
        plan: the serialised engine.
        device: the CUDA device it runs on (the model's).
        first_dim: the profile's (min, max) of the input's first axis (checked before a run).

    Raises:
        EngineBuildError: the runtime cannot deserialise ``plan`` (the cache then rebuilds it).
    """

    backend = "tensorrt"

    def __init__(self, plan: bytes, device: torch.device, first_dim: tuple[int, int]) -> None:
        trt = _trt()
        self._log = _Logger(trt)
        self.device = device
        self.first_dim = first_dim
        with torch.cuda.device(device):
            self.runtime = trt.Runtime(self._log.logger)
            self.engine = self.runtime.deserialize_cuda_engine(plan)
            if self.engine is None:
                raise EngineBuildError(
                    f"TensorRT cannot deserialise the engine: {'; '.join(self._log.errors)}"
                )
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EngineBuildError(f"expected one input and one output, got {names}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_dtype = self._dtype(trt, self.input_name)
        self.output_dtype = self._dtype(trt, self.output_name)

    def _dtype(self, trt: Any, name: str) -> torch.dtype:
        kind = str(self.engine.get_tensor_dtype(name)).rsplit(".", 1)[-1]
        if kind not in _DTYPES:
            raise EngineBuildError(f"unsupported tensor type {kind} of {name}")
        return _DTYPES[kind]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x on the GPU -> the output (the engine's output dtype) on the same GPU.

        Raises:
            OutsideProfileError: ``x``'s first axis lies outside the engine's profile.
            EngineBuildError: the enqueue failed.
        """
        low, high = self.first_dim
        if not low <= x.shape[0] <= high:
            raise OutsideProfileError(f"first axis {x.shape[0]} outside the profile {low}..{high}")
        x = x.detach().to(self.device, self.input_dtype).contiguous()
        self.context.set_input_shape(self.input_name, tuple(x.shape))
        shape = tuple(self.context.get_tensor_shape(self.output_name))
        out = torch.empty(shape, dtype=self.output_dtype, device=self.device)
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise EngineBuildError(f"TensorRT enqueue failed: {'; '.join(self._log.errors)}")
        return out
