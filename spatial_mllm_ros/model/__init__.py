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

import logging

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


class _TorchaoEnumNotice(logging.Filter):
    """Drops torch's notice that an Enum was registered as a pytree constant.

    Why: importing transformers imports torchao when it is installed (its quantizer), and
    torchao registers its Enums with ``torch.utils._pytree.register_constant``, which torch
    (>= 2.14) reports once per Enum (``<enum 'KernelPreference'> is an Enum subclass and is now
    natively supported by torch.compile ...``) -- two lines on every model load that concern
    torchao's code, not this package's or the user's.  Only that message of that logger is
    dropped; every other warning of torch and transformers stays visible.
    """

    NOTICE = "is an Enum subclass and is now natively supported by torch.compile"

    def filter(self, record: logging.LogRecord) -> bool:
        return self.NOTICE not in str(record.msg)


# installed before any module of this package imports transformers (they all live here)
logging.getLogger("torch.utils._pytree").addFilter(_TorchaoEnumNotice())
