"""Which model to load and how: :class:`EngineSpec`, and :func:`load_engine`, which never raises.

The spec is plain data (picklable, no torch): the node builds it from its parameters
(:class:`spatial_mllm_ros.settings.Settings`) and hands it to the model process, which loads the
engine from it; the evaluator and the CLIs do the same, so every caller gets the same model with
the same inputs and decoding.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from spatial_mllm_ros import params as P
from spatial_mllm_ros.model.backends.config import VisionSpec
from spatial_mllm_ros.model.decoding import DecodingSpec
from spatial_mllm_ros.model.errors import require_checkpoint
from spatial_mllm_ros.model.limits import PromptLimits, prompt_limits

if TYPE_CHECKING:  # the engine imports torch; the spec itself does not
    from spatial_mllm_ros.model.engine import SpatialMLLMEngine

__all__ = [
    "DEFAULT_CHECKPOINT_ENV",
    "EngineSpec",
    "VisionSpec",
    "check_checkpoint",
    "default_checkpoint_dir",
    "load_engine",
    "load_prompt_limits",
    "resolve_checkpoint",
]

#: Environment variable that overrides where the embedded tiny checkpoint is generated.
DEFAULT_CHECKPOINT_ENV = "SPATIAL_MLLM_TINY_CHECKPOINT"


@dataclass(frozen=True)
class EngineSpec:
    """Everything that selects and loads the model (parameters ``model.*`` and the decoding
    ones of ``answer.*``, bound by field metadata: :func:`spatial_mllm_ros.params.bound`).
    No defaults here: they live in the parameter schema.

    Attributes:
        checkpoint: checkpoint directory; "" = the embedded tiny checkpoint.
        vggt_checkpoint: VGGT-1B safetensors supplying the geometry heads; "" = none.
        device: torch device.
        dtype: weights dtype name.
        quantization: the decoder's weight-only quantization (``none``, ``int8_weight``,
            ``int4_weight``; :mod:`spatial_mllm_ros.model.quantization`).
        geometry_heads: load the VGGT heads (colour-only sampling); False also keeps the
            aggregator only up to the connector's layer.
        num_threads: CPU threads torch may use; 0 = torch's default.
        min_pixels, max_pixels: per-frame model input size bounds, pixels.
        video_fps: frame rate the model is told (``second_per_grid_ts`` = 2 / fps).
        decoding: overrides of the checkpoint's ``generation_config.json``.
        vision: how the two vision encoders run (``model.vision_*``: torch, onnxruntime or
            tensorrt; see :mod:`spatial_mllm_ros.model.backends`).
    """

    checkpoint: str = field(metadata=P.binding("model.checkpoint"))
    vggt_checkpoint: str = field(metadata=P.binding("model.vggt_checkpoint"))
    device: str = field(metadata=P.binding("model.device"))
    dtype: str = field(metadata=P.binding("model.dtype"))
    quantization: str = field(metadata=P.binding("model.quantization"))
    geometry_heads: bool = field(metadata=P.binding("model.geometry_heads"))
    num_threads: int = field(metadata=P.binding("model.num_threads"))
    min_pixels: int  # both derived from model.max_pixels (0 = Qwen2.5-VL's default)
    max_pixels: int
    video_fps: float = field(metadata=P.binding("model.video_fps"))
    decoding: DecodingSpec
    vision: VisionSpec

    @property
    def description(self) -> str:
        """The checkpoint as a person would name it in a log line or an error."""
        return self.checkpoint or "the embedded tiny checkpoint"


def default_checkpoint_dir() -> Path:
    """Where the embedded tiny checkpoint lives: ``$SPATIAL_MLLM_TINY_CHECKPOINT``, else
    ``$XDG_CACHE_HOME/spatial_mllm_ros/tiny-v1.1`` (``~/.cache`` by default)."""
    override = os.environ.get(DEFAULT_CHECKPOINT_ENV)
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "spatial_mllm_ros" / "tiny-v1.1"


def resolve_checkpoint(spec: EngineSpec) -> Path:
    """The checkpoint directory of ``spec``; "" is the embedded tiny checkpoint, generated on
    first use into :func:`default_checkpoint_dir`."""
    if spec.checkpoint:
        return Path(spec.checkpoint)
    from spatial_mllm_ros.model.tiny import ensure_checkpoint

    return ensure_checkpoint(default_checkpoint_dir())


def check_checkpoint(spec: EngineSpec) -> None:
    """Check, before any load, that the checkpoint and VGGT checkpoint ``spec`` names exist
    (the embedded default, "", is generated on first use and never missing).  Torch-free and
    fast: a command calls it first and refuses a mistyped path in one line.

    Raises:
        CheckpointNotFoundError: "checkpoint directory DIR does not exist" (or "VGGT
            checkpoint PATH ...").
    """
    if spec.checkpoint:
        require_checkpoint(spec.checkpoint)
    if spec.vggt_checkpoint:
        require_checkpoint(spec.vggt_checkpoint, "VGGT checkpoint")


def load_engine(spec: EngineSpec) -> tuple[SpatialMLLMEngine | None, str]:
    """Load the engine of ``spec``; never raises.

    Applies ``num_threads``. Returns ``(engine, "")`` or ``(None, reason)``: a node whose
    model failed to load stays up and answers MODEL_ERROR with the reason; the evaluator
    reports it and exits.  A checkpoint that does not exist is reported as such
    (:func:`check_checkpoint`) before torch is imported.
    """
    try:
        check_checkpoint(spec)
        import torch

        from spatial_mllm_ros.model.engine import SpatialMLLMEngine

        if spec.num_threads > 0:
            torch.set_num_threads(spec.num_threads)
        engine = SpatialMLLMEngine.from_pretrained(
            resolve_checkpoint(spec),
            device=spec.device,
            dtype=spec.dtype,
            vggt_checkpoint=spec.vggt_checkpoint or None,
            min_pixels=spec.min_pixels,
            max_pixels=spec.max_pixels,
            video_fps=spec.video_fps,
            decoding=spec.decoding,
            vision=spec.vision,
            quantization=spec.quantization,
            geometry_heads=spec.geometry_heads,
        )
    except Exception as err:  # any failure leaves the node answering MODEL_ERROR
        return None, f"model failed to load from {spec.description!r}: {type(err).__name__}: {err}"
    return engine, ""


def load_prompt_limits(spec: EngineSpec) -> tuple[PromptLimits | None, str]:
    """The prompt limits of ``spec``'s checkpoint (read from its files; the embedded default
    is not generated here), or ``(None, reason)``; never raises."""
    path = Path(spec.checkpoint) if spec.checkpoint else default_checkpoint_dir()
    try:
        return prompt_limits(path), ""
    except Exception as err:  # a missing or odd checkpoint: the model load reports it too
        return None, f"prompt limits of {spec.description!r} unknown: {err}"
