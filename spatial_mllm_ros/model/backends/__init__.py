"""Accelerated vision encoders: ONNX Runtime and TensorRT runs of Qwen2.5-VL's vision tower and
VGGT's aggregator, with a self-healing engine cache and a parity check against PyTorch.

The model calls its encoders through :class:`~spatial_mllm_ros.model.modeling.VisionEncoders`
(``run_2d``, ``run_spatial``); :class:`.accelerated.AcceleratedVision` implements it, running
an accelerated graph per model input size once it is prepared (exported, built, checked) and
the model's own torch encoders otherwise. Modules: ``config`` (:class:`VisionSpec`),
``status`` (:class:`VisionStatus`), ``errors``, ``cache`` (engine cache), ``onnxrt``,
``tensorrt``, ``parity``, ``accelerated``. This package module and ``config``/``status``/``errors``
import no torch; the others are imported on use.
"""

from __future__ import annotations

from spatial_mllm_ros.model.backends.config import BACKENDS, PRECISIONS, VisionSpec, parse_sizes
from spatial_mllm_ros.model.backends.errors import (
    BackendError,
    BackendUnavailableError,
    EngineBuildError,
    EngineCacheError,
    OutsideProfileError,
)
from spatial_mllm_ros.model.backends.status import SizeStatus, VisionStatus

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "BackendError",
    "BackendUnavailableError",
    "EngineBuildError",
    "EngineCacheError",
    "OutsideProfileError",
    "SizeStatus",
    "VisionSpec",
    "VisionStatus",
    "parse_sizes",
]
