"""Spatial-MLLM: transformers' Qwen2.5-VL composed with a VGGT spatial encoder and a connector.

The Qwen2.5-VL classes are used as they are (subclassed, not forked).  The fusion happens where
Qwen2.5-VL scatters video features into the input embeddings (``masked_scatter`` at the video
tokens): the 2D video features from ``model.visual`` and the connector's spatial tokens are summed
first and handed to Qwen2.5-VL as pre-computed ``mm_encoder_outputs["video"]``.

Parameter names (transformers-5 form): ``model.visual.*``, ``model.language_model.*``,
``lm_head.weight``, ``spatial_encoder.*`` (a VGGT: ``aggregator``, ``*_head``), ``connector.*``.
:mod:`spatial_mllm_ros.model.layout` maps them to and from the released names.

A plain Qwen2.5-VL checkpoint (:class:`~spatial_mllm_ros.model.configuration.PlainQwenConfig`,
layout ``qwen2.5-vl``) runs through the same class without a connector: its answers use the 2D
video features alone (the ``spatial`` and ``connector`` stages stay at zero), and its
``spatial_encoder`` is None unless a geometry VGGT is asked for (``geometry_encoder=True``),
which then serves :attr:`has_geometry_heads` only, never the answers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from transformers import Qwen2_5_VLForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutputWithPooling

from spatial_mllm_ros.model.configuration import SpatialConnectorConfig, SpatialMLLMConfig
from spatial_mllm_ros.model.connector import SpatialConnector, build_connector
from spatial_mllm_ros.model.errors import InputError
from spatial_mllm_ros.model.vggt import VGGT


class EncoderCalls:
    """How many times each vision encoder ran on each backend (``torch``, ``onnxruntime``,
    ``tensorrt``), counted by whatever ran it: the model's torch path or the accelerated
    encoders (their torch fallback included).  Only clips of answers count, not the parity
    probe or geometry.  Updated under the engine's lock."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, int]] = {}

    def add(self, encoder: str, backend: str) -> None:
        """One call of ``encoder`` on ``backend``."""
        per = self._counts.setdefault(encoder, {})
        per[backend] = per.get(backend, 0) + 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        """encoder -> backend -> calls (a copy)."""
        return {encoder: dict(per) for encoder, per in self._counts.items()}


class VisionEncoders(Protocol):
    """The two vision encoders as :meth:`SpatialMLLMForConditionalGeneration.encode_video`
    calls them; implemented by :class:`spatial_mllm_ros.model.backends.accelerated.
    AcceleratedVision` (which falls back to the model's own ``torch_*`` methods).  Each call
    is counted in the model's ``encoder_calls`` under the backend that actually ran it."""

    def run_2d(self, pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor
               ) -> torch.Tensor:
        """As :meth:`SpatialMLLMForConditionalGeneration.torch_vision_2d`."""
        ...

    def run_spatial(self, video_tchw: torch.Tensor) -> torch.Tensor:
        """As :meth:`SpatialMLLMForConditionalGeneration.torch_spatial_tokens`."""
        ...


#: Stage names of :class:`StageTimer` (seconds, wall clock, summed over calls).
STAGES = ("vision_2d", "spatial", "connector", "prefill", "decode")


@dataclass
class StageTimer:
    """Per-stage wall-clock seconds and call counts, readable by an engine after a call."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))

    def reset(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.calls = dict.fromkeys(STAGES, 0)

    @contextlib.contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
            self.calls[stage] = self.calls.get(stage, 0) + 1


class SpatialMLLMForConditionalGeneration(Qwen2_5_VLForConditionalGeneration):
    """Qwen2.5-VL with a VGGT spatial encoder whose connector output is added to the video tokens.

    Extra inputs to ``forward``/``generate``: ``video_tchw`` -- (B, S, 3, H, W) or (S, 3, H, W)
    float frames in [0, 1], the same frames and resolution as ``pixel_values_videos`` (H, W
    multiples of 28, S even).
    """

    config_class = SpatialMLLMConfig

    def __init__(self, config: SpatialMLLMConfig, geometry_encoder: bool = False) -> None:
        """``geometry_encoder``: for a configuration without a spatial encoder (plain
        Qwen2.5-VL), build a VGGT of ``config.spatial_config`` for geometry only."""
        super().__init__(config)
        vision: Any = config.vision_config
        spatial: Any = config.spatial_config
        text: Any = config.text_config
        self.spatial_encoder: VGGT | None = None
        self.connector: SpatialConnector | None = None
        if isinstance(config.connector_config, SpatialConnectorConfig):
            self.spatial_encoder = VGGT(spatial)
            self.connector = build_connector(
                config.connector_config.connector_type,
                vggt_dim=int(spatial.embed_dim),
                hidden=int(text.hidden_size),
                layer_idx=int(config.connector_config.spatial_embeds_layer_idx),
                temporal=int(vision.temporal_patch_size),
                spatial=int(vision.spatial_merge_size),
            )
        elif geometry_encoder:
            self.spatial_encoder = VGGT(spatial)
        self.stage_timer = StageTimer()
        self.vision_backend: VisionEncoders | None = None
        """Accelerated encoders (:mod:`spatial_mllm_ros.model.backends`); None = PyTorch."""
        self.encoder_calls = EncoderCalls()
        """What ran each encoder of :meth:`encode_video` (torch here, the accelerated
        encoders count their own calls)."""
        self.post_init()

    # -- encoders -------------------------------------------------------------------------------
    def spatial_parts(self) -> tuple[VGGT, SpatialConnector]:
        """The spatial encoder and the connector answers fuse through.

        Raises:
            InputError: the checkpoint has none (a plain Qwen2.5-VL layout).
        """
        if self.spatial_encoder is None or self.connector is None:
            raise InputError(
                f"a {self.config.layout} checkpoint has no spatial encoder or connector"
            )
        return self.spatial_encoder, self.connector

    def encode_video(
        self,
        pixel_values_videos: torch.Tensor,
        video_grid_thw: torch.Tensor,
        video_tchw: torch.Tensor | None,
    ) -> torch.Tensor:
        """Fused video-token embeddings (N, hidden): 2D features + connector(spatial tokens);
        the 2D features alone without a connector (``video_tchw`` is then not used)."""
        if self.connector is None:
            return self._vision_2d(pixel_values_videos, video_grid_thw)
        if video_tchw is None:
            raise InputError(
                "video_tchw (frames for the spatial encoder) must accompany pixel_values_videos"
            )
        if video_tchw.dim() == 4:
            video_tchw = video_tchw.unsqueeze(0)
        grids = {tuple(int(v) for v in row) for row in video_grid_thw.tolist()}
        if len(grids) != 1:
            raise InputError(f"all videos of a batch must share one grid, got {sorted(grids)}")
        t, gh, gw = next(iter(grids))
        _, s, _, h, w = video_tchw.shape
        vision: Any = self.config.vision_config
        patch = int(vision.patch_size)
        if (h // patch, w // patch) != (gh, gw) or s != t * int(vision.temporal_patch_size):
            raise InputError(
                f"spatial input {s}x{h}x{w} does not match the video grid t={t} h={gh} w={gw}"
            )
        backend = self.vision_backend
        video_embeds = self._vision_2d(pixel_values_videos, video_grid_thw)
        with self.stage_timer.measure("spatial"):
            if backend is None:
                tokens = self.torch_spatial_tokens(video_tchw)
                self.encoder_calls.add("spatial", "torch")
            else:
                tokens = backend.run_spatial(video_tchw)
        with self.stage_timer.measure("connector"):
            fused = self.connector(video_embeds, tokens, 0, (gh, gw))
        return fused

    def _vision_2d(
        self, pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor
    ) -> torch.Tensor:
        """The 2D video embeddings (N, hidden), timed as ``vision_2d``, on the accelerated
        backend when there is one."""
        backend = self.vision_backend
        with self.stage_timer.measure("vision_2d"):
            if backend is None:
                video_embeds = self.torch_vision_2d(pixel_values_videos, video_grid_thw)
                self.encoder_calls.add("vision_2d", "torch")
            else:
                video_embeds = backend.run_2d(pixel_values_videos, video_grid_thw)
        return video_embeds

    def torch_vision_2d(
        self, pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor
    ) -> torch.Tensor:
        """Qwen2.5-VL's vision tower in PyTorch: pixel_values (sum T*gh*gw, 1176) -> video
        embeddings (N, hidden), N = sum T*gh*gw/4 over the videos."""
        out = self.model.get_video_features(pixel_values_videos, video_grid_thw, return_dict=True)
        return torch.cat(list(out.pooler_output), dim=0)

    def torch_spatial_tokens(self, video_tchw: torch.Tensor) -> torch.Tensor:
        """VGGT's aggregator in PyTorch: frames (B, S, 3, H, W) in [0, 1] -> the patch tokens
        (B, S, gh*gw, 2*embed_dim) of the layer the connector reads (aggregator dtype)."""
        encoder, connector = self.spatial_parts()
        aggregator = encoder.aggregator
        dtype = next(aggregator.parameters()).dtype
        spatial: Any = self.config.spatial_config
        layer = connector.layer_idx % int(spatial.depth)
        kept, patch_start_idx = aggregator.forward_layers(video_tchw.to(dtype), [layer])
        return kept[layer][:, :, int(patch_start_idx):]

    def _fused_outputs(
        self,
        pixel_values_videos: torch.Tensor,
        video_grid_thw: torch.Tensor,
        video_tchw: torch.Tensor | None,
    ) -> dict[str, BaseModelOutputWithPooling]:
        fused = self.encode_video(pixel_values_videos, video_grid_thw, video_tchw)
        # Qwen2.5-VL expects one tensor per video in ``pooler_output``.
        output = BaseModelOutputWithPooling(pooler_output=(fused,))  # type: ignore[arg-type]
        return {"video": output}

    # -- forward / generate ---------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        mm_token_type_ids: torch.IntTensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        mm_encoder_outputs: dict[str, BaseModelOutputWithPooling] | None = None,
        video_tchw: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        if pixel_values_videos is not None:
            if video_grid_thw is None:
                raise InputError("video_grid_thw is required with pixel_values_videos")
            mm_encoder_outputs = {
                **(mm_encoder_outputs or {}),
                **self._fused_outputs(pixel_values_videos, video_grid_thw, video_tchw),
            }
            pixel_values_videos = None
        cached = past_key_values is not None and past_key_values.get_seq_length() > 0
        with self.stage_timer.measure("decode" if cached else "prefill"):
            return super().forward(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=past_key_values,
                inputs_embeds=inputs_embeds,
                labels=labels,
                use_cache=use_cache,
                pixel_values=pixel_values,
                pixel_values_videos=pixel_values_videos,
                image_grid_thw=image_grid_thw,
                video_grid_thw=video_grid_thw,
                mm_token_type_ids=mm_token_type_ids,
                second_per_grid_ts=second_per_grid_ts,
                logits_to_keep=logits_to_keep,
                mm_encoder_outputs=mm_encoder_outputs,
                **kwargs,
            )

    @torch.no_grad()
    def generate(self, *args: Any, video_tchw: torch.Tensor | None = None, **kwargs: Any) -> Any:
        """``GenerationMixin.generate`` with the spatial stream; decoding follows
        ``generation_config`` (the engine passes the checkpoint's, with its overrides).

        The fused video embeddings are computed once, before prefill, and passed to Qwen2.5-VL as
        ``mm_encoder_outputs``; decoding then runs with the KV cache (``use_cache`` default True).
        """
        pixel_values_videos = kwargs.pop("pixel_values_videos", None)
        if pixel_values_videos is not None:
            grid = kwargs.get("video_grid_thw")
            if grid is None:
                raise InputError("video_grid_thw is required with pixel_values_videos")
            kwargs["mm_encoder_outputs"] = self._fused_outputs(
                pixel_values_videos, grid, video_tchw
            )
        return super().generate(*args, **kwargs)  # type: ignore[misc]

    # -- geometry -------------------------------------------------------------------------------
    @property
    def has_geometry_heads(self) -> bool:
        """True when the VGGT camera, depth and point heads hold loaded weights."""
        if self.spatial_encoder is None:
            return False
        for name in ("camera_head", "depth_head", "point_head"):
            head = getattr(self.spatial_encoder, name, None)
            if head is None or any(p.is_meta for p in head.parameters()):
                return False
        return True
