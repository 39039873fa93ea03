"""Spatial-MLLM dual-encoder model (Qwen2.5-VL + VGGT spatial encoder + connector), pure PyTorch.

Main entry points::

    from spatial_mllm_ros.model.engine import SpatialMLLMEngine
    engine = SpatialMLLMEngine.from_pretrained(checkpoint_dir, device="cpu", dtype="float32")
    result = engine.answer(frames, prompt, max_new_tokens=64)

Submodules: ``configuration`` (SpatialMLLMConfig), ``connector``, ``modeling``
(SpatialMLLMForConditionalGeneration), ``loading`` (safetensors-only loader), ``layout``,
``processing``, ``engine``, ``tiny`` (checkpoint generator), ``cli`` (console entry points),
``vggt`` (the VGGT geometry model).  Heavy modules are imported on use.
"""

from __future__ import annotations

from spatial_mllm_ros.model.errors import (
    CheckpointError,
    ConfigError,
    GeometryUnavailableError,
    InputError,
    MissingShardError,
    MissingTensorError,
    ModelError,
    ShapeMismatchError,
    UnexpectedTensorError,
    UnsafeCheckpointError,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "GeometryUnavailableError",
    "InputError",
    "MissingShardError",
    "MissingTensorError",
    "ModelError",
    "ShapeMismatchError",
    "UnexpectedTensorError",
    "UnsafeCheckpointError",
]
