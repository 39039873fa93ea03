"""High-level inference engine: load a checkpoint directory, answer questions, predict geometry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from transformers import Qwen2_5_VLProcessor

from spatial_mllm_ros.answering.types import GenerationResult as AnswerResult
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.model.configuration import SpatialMLLMConfig, load_config
from spatial_mllm_ros.model.errors import GeometryUnavailableError, InputError
from spatial_mllm_ros.model.layout import parameters_on_meta
from spatial_mllm_ros.model.loading import LoadReport, load_weights, resolve_dtype
from spatial_mllm_ros.model.modeling import STAGES, SpatialMLLMForConditionalGeneration
from spatial_mllm_ros.model.processing import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    PreparedClip,
    build_inputs,
    prepare_clip,
)
from spatial_mllm_ros.model.vggt import FrameGeometry, vggt_geometry

TIED = {"lm_head.weight": "model.language_model.embed_tokens.weight"}


@dataclass(frozen=True)
class GenerationResult(AnswerResult):
    """One answer: the answering stage's result plus what the engine knows besides.

    Attributes (beyond :class:`spatial_mllm_ros.answering.types.GenerationResult`, whose
    ``text`` is decoded with special tokens skipped and ``raw_text`` with them kept):
        original_size: (W, H) of the first input frame.
        token_ids: the generated token ids.
        num_video_tokens: video tokens in the prompt (= merged spatial tokens).
    """

    original_size: tuple[int, int] = (0, 0)
    token_ids: list[int] = field(default_factory=list)
    num_video_tokens: int = 0


def load_model(
    checkpoint_dir: str | Path,
    dtype: str | torch.dtype = "float32",
    extra_sources: Sequence[str | Path] = (),
    config: SpatialMLLMConfig | None = None,
    strict: bool = True,
) -> tuple[SpatialMLLMForConditionalGeneration, LoadReport]:
    """Build the model of ``checkpoint_dir/config.json`` on meta and load its safetensors.

    ``extra_sources`` (e.g. a VGGT-1B conversion) fill what the main checkpoint lacks.
    """
    config = config or load_config(checkpoint_dir)
    with parameters_on_meta():
        model = SpatialMLLMForConditionalGeneration(config)
    tied = TIED if config.tie_word_embeddings else {}
    report = load_weights(
        model, [checkpoint_dir, *extra_sources], dtype=dtype, tied=tied, strict=strict
    )
    target = resolve_dtype(dtype)
    for sub in model.spatial_encoder.modules():
        for name, buf in list(sub._buffers.items()):
            if buf is not None and buf.is_floating_point():
                sub._buffers[name] = buf.to(target)
    model.eval()
    return model, report


class SpatialMLLMEngine:
    """Spatial-MLLM question answering over a clip of frames (any size; numpy RGB inside Frame)."""

    def __init__(
        self,
        model: SpatialMLLMForConditionalGeneration,
        processor: Any,
        report: LoadReport,
        device: str = "cpu",
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.model = model
        self.processor = processor
        self.report = report
        self.device = torch.device(device)
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels

    @classmethod
    def from_pretrained(
        cls,
        checkpoint_dir: str | Path,
        device: str = "cpu",
        dtype: str = "float32",
        vggt_checkpoint: str | Path | None = None,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> SpatialMLLMEngine:
        """Load a local checkpoint directory (safetensors only, no remote code).

        ``vggt_checkpoint``: a VGGT-1B safetensors directory/file supplying the geometry heads
        when the Spatial-MLLM checkpoint lacks them.
        """
        extra = [vggt_checkpoint] if vggt_checkpoint is not None else []
        model, report = load_model(checkpoint_dir, dtype=dtype, extra_sources=extra)
        model.to(device)  # type: ignore[arg-type]
        processor = Qwen2_5_VLProcessor.from_pretrained(str(checkpoint_dir))
        return cls(model, processor, report, device, min_pixels, max_pixels)

    # -- question answering ---------------------------------------------------------------------
    def prepare(self, images: Sequence[npt.NDArray[np.uint8]]) -> PreparedClip:
        vision: Any = self.model.config.vision_config
        return prepare_clip(
            images, self.min_pixels, self.max_pixels, int(vision.temporal_patch_size)
        )

    @torch.no_grad()
    def answer_images(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        prompt: str,
        max_new_tokens: int = 64,
        use_cache: bool = True,
    ) -> GenerationResult:
        """Answer ``prompt`` (already in its VSI-Bench form) about (H, W, 3) uint8 RGB images."""
        clip = self.prepare(images)
        inputs = build_inputs(self.processor, clip, prompt)
        dtype = next(self.model.parameters()).dtype
        batch: dict[str, Any] = {}
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device)
                if key in ("pixel_values_videos", "video_tchw"):
                    value = value.to(dtype)
            batch[key] = value
        self.model.stage_timer.reset()
        out = self.model.generate(**batch, max_new_tokens=max_new_tokens, use_cache=use_cache)
        new = out[0, batch["input_ids"].shape[1] :].tolist()
        tokenizer = self.processor.tokenizer
        text = tokenizer.decode(new, skip_special_tokens=True)
        raw = tokenizer.decode(new, skip_special_tokens=False)
        for end in ("<|im_end|>", "<|endoftext|>"):
            raw = raw.replace(end, "")
        timings = {k: float(self.model.stage_timer.seconds.get(k, 0.0)) for k in STAGES}
        n_video = int((batch["input_ids"] == self.model.config.video_token_id).sum())
        return GenerationResult(
            text=text,
            timings_s=timings,
            num_new_tokens=len(new),
            resized_size=clip.resized_size,
            raw_text=raw,
            original_size=clip.original_size,
            token_ids=new,
            num_video_tokens=n_video,
        )

    def answer(
        self, frames: Sequence[Frame], prompt: str, max_new_tokens: int = 64
    ) -> GenerationResult:
        """Answer ``prompt`` about ``frames`` (their ``rgb`` images, in order)."""
        if not frames:
            raise InputError("no frames given")
        return self.answer_images([f.rgb for f in frames], prompt, max_new_tokens)

    # -- geometry -------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_geometry(
        self, frames: Sequence[Frame] | Sequence[npt.NDArray[np.uint8]]
    ) -> list[FrameGeometry]:
        """Per-frame world points (frame 0's camera as world), confidence, pose and intrinsics
        from the VGGT heads, at the model input resolution (see ``FrameGeometry``).

        Raises:
            GeometryUnavailableError: the camera/depth/point heads were not loaded.
        """
        if not self.model.has_geometry_heads:
            raise GeometryUnavailableError(
                "the VGGT camera/depth/point heads are not loaded: pass vggt_checkpoint= "
                "(a VGGT-1B safetensors conversion) to SpatialMLLMEngine.from_pretrained"
            )
        images = [f.rgb if isinstance(f, Frame) else f for f in frames]
        if not images:
            raise InputError("no frames given")
        clip = prepare_clip(images, self.min_pixels, self.max_pixels, temporal_patch_size=1)
        dtype = next(self.model.spatial_encoder.parameters()).dtype
        x = clip.spatial_tensor().to(self.device, dtype)
        output = self.model.spatial_encoder(x)
        return vggt_geometry(output)
