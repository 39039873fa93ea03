"""ONNX Runtime runs of an exported encoder graph (CPU provider; CUDA provider where installed).

On the CPU the input is handed over as a NumPy view and the output comes back the same way;
on CUDA (``onnxruntime-gpu``) input and output stay on the GPU through an I/O binding of the
torch tensors' memory. The session uses torch's thread count (``model.num_threads``).
onnxruntime runs the float32 graph as it is (``model.vision_precision`` is TensorRT's).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from spatial_mllm_ros.model.backends.errors import BackendUnavailableError, EngineBuildError

__all__ = ["OnnxRuntimeRunner", "availability", "providers_for"]

ShapeOf = Callable[[tuple[int, ...]], tuple[int, ...]]


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendUnavailableError(
            "onnxruntime is not installed (pip install onnxruntime, or onnxruntime-gpu)"
        ) from err
    return onnxruntime


def providers_for(device: torch.device) -> list[Any]:
    """Execution providers for a model on ``device``: CUDA (then CPU) on a GPU, CPU otherwise.

    Raises:
        BackendUnavailableError: onnxruntime is missing, or has no CUDA provider for a GPU model.
    """
    ort = _ort()
    if device.type != "cuda":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise BackendUnavailableError(
            "this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)"
        )
    index = device.index if device.index is not None else torch.cuda.current_device()
    return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]


def availability(device: torch.device) -> str:
    """"" when onnxruntime can run on ``device``, else why not."""
    try:
        providers_for(device)
    except BackendUnavailableError as err:
        return str(err)
    return ""


class OnnxRuntimeRunner:
    """One graph in an ``InferenceSession``: ``runner(x)`` -> the graph's single output.

    Args:
        path: the ``.onnx`` file (its external data beside it).
        output_shape: input shape -> output shape (to bind a CUDA output buffer).
        device: the model's device; inputs and outputs live there.
    """

    backend = "onnxruntime"

    def __init__(self, path: str | Path, output_shape: ShapeOf, device: torch.device) -> None:
        ort = _ort()
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(torch.get_num_threads(), 1)
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=providers_for(device)
            )
        except BackendUnavailableError:
            raise
        except Exception as err:  # onnxruntime's own exception types are not public
            raise EngineBuildError(f"onnxruntime cannot load {path}: {err}") from err
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.output_shape = output_shape
        self.device = device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x on the model's device, any float dtype -> float32 output on the same device."""
        x = x.detach().to(self.device, torch.float32).contiguous()
        if self.device.type != "cuda":
            out = self.session.run([self.output_name], {self.input_name: x.numpy()})[0]
            return torch.from_numpy(out)
        import numpy as np

        index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        result = torch.empty(self.output_shape(tuple(x.shape)), dtype=torch.float32,
                             device=self.device)
        binding = self.session.io_binding()
        binding.bind_input(self.input_name, "cuda", index, np.float32, tuple(x.shape),
                           x.data_ptr())
        binding.bind_output(self.output_name, "cuda", index, np.float32, tuple(result.shape),
                            result.data_ptr())
        torch.cuda.current_stream(self.device).synchronize()
        self.session.run_with_iobinding(binding)
        return result
