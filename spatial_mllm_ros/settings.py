"""From validated parameters (``spatial_mllm_ros.params``) to the core's configurations.

One place for these rules, so that the node and the offline evaluator build the same
ingestion, buffer and answering set-up from the same profile. Pure: never imports rclpy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from spatial_mllm_ros.answering.pipeline import PipelineConfig
from spatial_mllm_ros.core.convert import ConvertLimits
from spatial_mllm_ros.core.ingest import IngestConfig
from spatial_mllm_ros.core.pairing import PairingConfig, PartnerMode, PartnerSpec
from spatial_mllm_ros.params import ParamValue
from spatial_mllm_ros.sampling.budget import VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, BudgetConfig
from spatial_mllm_ros.sampling.online import BufferConfig

__all__ = [
    "DEFAULT_CHECKPOINT_ENV",
    "budget_config",
    "buffer_config",
    "default_checkpoint_dir",
    "engine_options",
    "ingest_config",
    "load_answerer",
    "load_engine",
    "model_pixels",
    "pipeline_config",
    "resolve_checkpoint",
]

#: Environment variable that overrides where the embedded tiny checkpoint is generated.
DEFAULT_CHECKPOINT_ENV = "SPATIAL_MLLM_TINY_CHECKPOINT"


def ingest_config(v: Mapping[str, ParamValue]) -> IngestConfig:
    """Pairing partners and conversion limits from ``topics.*``, ``pairing.*``, ``image.*``."""
    partners: list[PartnerSpec] = []
    if v["topics.depth"]:
        partners.append(PartnerSpec("depth", "consume"))
    if v["topics.pose"] or v["topics.odometry"]:
        partners.append(PartnerSpec("pose", "reuse"))
    if v["topics.camera_info"]:
        mode: PartnerMode = "latest" if v["pairing.camera_info"] == "latest" else "reuse"
        partners.append(PartnerSpec("camera_info", mode, wait=mode != "latest"))
    pairing = PairingConfig(
        slop_ns=int(float(v["pairing.slop_s"]) * 1e9),
        wait_ns=int(float(v["pairing.wait_s"]) * 1e9),
        queue_size=int(v["pairing.queue_size"]),
        partners=tuple(partners),
    )
    limits = ConvertLimits(
        max_pixels=int(v["image.max_pixels"]),
        quaternion_tolerance=float(v["pose.quaternion_tolerance"]),
    )
    return IngestConfig(limits=limits, pairing=pairing)


def buffer_config(v: Mapping[str, ParamValue]) -> BufferConfig:
    """The space-aware buffer from ``buffer.*``."""
    return BufferConfig(
        max_frames=int(v["buffer.max_frames"]),
        max_bytes=int(v["buffer.max_bytes"]),
        voxel_size_m=float(v["buffer.voxel_size_m"]),
        depth_stride=int(v["buffer.depth_stride"]),
        min_new_voxels=int(v["buffer.min_new_voxels"]),
        max_interval_s=float(v["buffer.max_interval_s"]),
        max_depth_m=float(v["buffer.max_depth_m"]),
        color_only_share=float(v["buffer.color_only_share"]),
    )


def pipeline_config(v: Mapping[str, ParamValue]) -> PipelineConfig:
    """Answering settings from ``sampling.*``, ``queue.timeout_s``, ``question.*``,
    ``answer.*``."""
    return PipelineConfig(
        frame_budget=int(v["sampling.frame_budget"]),
        max_frame_budget=int(v["sampling.max_frame_budget"]),
        strategy=str(v["sampling.strategy"]),
        timeout_s=float(v["queue.timeout_s"]),
        max_question_chars=int(v["question.max_chars"]),
        max_new_tokens=int(v["answer.max_new_tokens"]),
        grounding=bool(v["answer.grounding"]),
        grounding_max_new_tokens=int(v["answer.grounding_max_new_tokens"]),
        monocular_candidates=int(v["sampling.monocular_candidates"]),
        adaptive_budget=budget_config(v) if v["sampling.adaptive_budget"] else None,
        prompt_template=str(v["answer.prompt_template"]),
    )


def budget_config(v: Mapping[str, ParamValue]) -> BudgetConfig:
    """The adaptive budget's token cap at the model's input size (``model.max_pixels``)."""
    min_pixels, max_pixels = model_pixels(v)
    return BudgetConfig(
        max_video_tokens=int(v["sampling.max_video_tokens"]),
        min_pixels=min_pixels,
        max_pixels=max_pixels,
    )


def model_pixels(v: Mapping[str, ParamValue]) -> tuple[int, int]:
    """(min, max) pixels per frame of the model's input from ``model.max_pixels`` (0 = the
    Qwen2.5-VL video default)."""
    max_pixels = int(v["model.max_pixels"]) or VIDEO_MAX_PIXELS
    return min(VIDEO_MIN_PIXELS, max_pixels), max_pixels


def default_checkpoint_dir() -> Path:
    """Where the embedded tiny checkpoint lives: ``$SPATIAL_MLLM_TINY_CHECKPOINT``, else
    ``$XDG_CACHE_HOME/spatial_mllm_ros/tiny-v1.1`` (``~/.cache`` by default)."""
    override = os.environ.get(DEFAULT_CHECKPOINT_ENV)
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "spatial_mllm_ros" / "tiny-v1.1"


def engine_options(v: Mapping[str, ParamValue]) -> dict[str, Any]:
    """Keyword arguments of ``SpatialMLLMEngine.from_pretrained`` (all but the checkpoint)
    from ``model.*`` and ``answer.decoding``/``answer.repetition_penalty``: device, dtype, VGGT
    checkpoint, the per-frame input size bounds, the video timing and the decoding overrides.

    The node (:func:`load_engine`) and the offline evaluator both use this, so a profile's
    ``model.max_pixels`` gives the model the same inputs on the robot and offline.
    """
    from spatial_mllm_ros.model.decoding import DecodingSpec

    min_pixels, max_pixels = model_pixels(v)
    return {
        "device": str(v["model.device"]),
        "dtype": str(v["model.dtype"]),
        "vggt_checkpoint": str(v["model.vggt_checkpoint"]) or None,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
        "video_fps": float(v["model.video_fps"]),
        "decoding": DecodingSpec(
            mode=cast(Any, str(v["answer.decoding"])),
            repetition_penalty=float(v["answer.repetition_penalty"]),
        ),
    }


def resolve_checkpoint(v: Mapping[str, ParamValue]) -> Path:
    """The checkpoint directory of ``model.checkpoint``; '' is the embedded tiny checkpoint,
    generated on first use into :func:`default_checkpoint_dir`."""
    path = str(v["model.checkpoint"])
    if path:
        return Path(path)
    from spatial_mllm_ros.model.tiny import ensure_checkpoint

    return ensure_checkpoint(default_checkpoint_dir())


def load_engine(v: Mapping[str, ParamValue]) -> tuple[Any | None, str]:
    """Load the Spatial-MLLM engine named by ``model.*``; never raises.

    Applies ``model.num_threads`` and :func:`engine_options`. Returns ``(engine, "")`` or
    ``(None, reason)``: a node whose model failed to load stays up and answers MODEL_ERROR
    with the reason; the evaluator reports it and exits.
    """
    try:
        import torch

        from spatial_mllm_ros.model.engine import SpatialMLLMEngine

        threads = int(v["model.num_threads"])
        if threads > 0:
            torch.set_num_threads(threads)
        engine = SpatialMLLMEngine.from_pretrained(resolve_checkpoint(v), **engine_options(v))
    except Exception as err:  # any failure leaves the node answering MODEL_ERROR
        where = v["model.checkpoint"] or "the embedded tiny checkpoint"
        return None, f"model failed to load from {where!r}: {type(err).__name__}: {err}"
    return engine, ""


def load_answerer(v: Mapping[str, ParamValue]) -> tuple[Any | None, str]:
    """The node's answerer: the engine in a child process when ``model.process`` is set
    (:class:`~spatial_mllm_ros.answering.process.ProcessAnswerer`), else in this process
    (:func:`load_engine`). Never raises; ``(None, reason)`` when the model cannot load."""
    if not v["model.process"]:
        return load_engine(v)
    from spatial_mllm_ros.answering.errors import ModelProcessError
    from spatial_mllm_ros.answering.process import ProcessAnswerer

    try:
        return ProcessAnswerer(v), ""
    except ModelProcessError as err:
        return None, str(err)
