"""VGGT (Wang et al., CVPR 2025): aggregator + camera, depth, point and track heads.

``VGGT(config).state_dict()`` uses exactly the tensor names of the released ``facebook/VGGT-1B``
checkpoint (``aggregator.*``, ``camera_head.*``, ``depth_head.*``, ``point_head.*``,
``track_head.*``).
"""

from __future__ import annotations

from typing import TypedDict

import torch
from torch import Tensor, nn

from spatial_mllm_ros.model.vggt.aggregator import Aggregator
from spatial_mllm_ros.model.vggt.camera_head import CameraHead
from spatial_mllm_ros.model.vggt.config import VGGTConfig
from spatial_mllm_ros.model.vggt.dpt_head import DPTHead
from spatial_mllm_ros.model.vggt.errors import VGGTInputError
from spatial_mllm_ros.model.vggt.track_head import BaseTrackerPredictor, TrackHead


class VGGTOutput(TypedDict, total=False):
    """Predictions of :meth:`VGGT.forward` (B batch, S frames, H x W input pixels, N queries).

    pose_enc: (B, S, 9) absT_quaR_FoV of the world-to-camera transform (frame 0 = world).
    pose_enc_list: one (B, S, 9) per camera-head refinement iteration.
    depth: (B, S, H, W, 1) depth along the optical axis (units of the scene's normalised scale).
    depth_conf: (B, S, H, W) confidence >= 1.
    world_points: (B, S, H, W, 3) point map in frame 0's camera coordinates.
    world_points_conf: (B, S, H, W) confidence >= 1.
    track, vis, conf: (B, S, N, 2) pixel tracks, (B, S, N) visibility and confidence in [0, 1].
    aggregated_tokens: depth x (B, S, P, 2C) aggregator layer outputs (on request).
    patch_start_idx: index of the first patch token in P.
    image_hw: (H, W) of the input.
    """

    pose_enc: Tensor
    pose_enc_list: list[Tensor]
    depth: Tensor
    depth_conf: Tensor
    world_points: Tensor
    world_points_conf: Tensor
    track: Tensor
    vis: Tensor
    conf: Tensor
    aggregated_tokens: list[Tensor]
    patch_start_idx: int
    image_hw: tuple[int, int]


def as_clip(images: Tensor) -> Tensor:
    """(S, 3, H, W) or (B, S, 3, H, W) -> (B, S, 3, H, W)."""
    if images.ndim == 4:
        images = images.unsqueeze(0)
    if images.ndim != 5 or images.shape[2] != 3:
        raise VGGTInputError(
            f"expected images (S, 3, H, W) or (B, S, 3, H, W), got {tuple(images.shape)}"
        )
    return images


class VGGT(nn.Module):
    """The VGGT geometry model; heads disabled in the config are ``None``."""

    def __init__(self, config: VGGTConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        dim = c.output_dim
        self.aggregator = Aggregator(c)
        self.camera_head = (
            CameraHead(
                dim,
                layer_idx=c.depth - 1,
                trunk_depth=c.camera_trunk_depth,
                num_heads=c.camera_num_heads,
                mlp_ratio=c.mlp_ratio,
                init_values=c.init_values,
                num_iterations=c.camera_iterations,
            )
            if c.enable_camera
            else None
        )
        self.point_head = (
            self._dpt(c, output_dim=4, activation="inv_log") if c.enable_point else None
        )
        self.depth_head = self._dpt(c, output_dim=2, activation="exp") if c.enable_depth else None
        self.track_head = (
            TrackHead(
                dim,
                patch_size=c.patch_size,
                features=c.track_features,
                out_channels=c.dpt_out_channels,
                intermediate_layer_idx=c.intermediate_layer_idx,
                iters=c.track_iters,
                tracker=BaseTrackerPredictor(
                    latent_dim=c.track_features,
                    hidden_size=c.track_hidden_size,
                    depth=c.track_depth,
                    num_heads=c.track_num_heads,
                    num_virtual_tracks=c.track_num_virtual_tracks,
                    corr_levels=c.track_corr_levels,
                    corr_radius=c.track_corr_radius,
                    stride=c.track_stride,
                    max_scale=c.track_max_scale,
                ),
            )
            if c.enable_track
            else None
        )

    @staticmethod
    def _dpt(c: VGGTConfig, output_dim: int, activation: str) -> DPTHead:
        return DPTHead(
            c.output_dim,
            patch_size=c.patch_size,
            features=c.dpt_features,
            out_channels=c.dpt_out_channels,
            intermediate_layer_idx=c.intermediate_layer_idx,
            output_dim=output_dim,
            activation=activation,
        )

    def needed_layers(self, query: bool = False) -> set[int]:
        """Aggregator layers the enabled heads read (the track head only with queries)."""
        layers: set[int] = set()
        if self.camera_head is not None:
            layers.add(self.camera_head.layer_idx)
        if (
            self.depth_head is not None
            or self.point_head is not None
            or (query and self.track_head is not None)
        ):
            layers.update(self.config.intermediate_layer_idx)
        return layers

    def forward(
        self,
        images: Tensor,
        query_points: Tensor | None = None,
        return_tokens: bool = False,
        frames_chunk_size: int | None = 8,
    ) -> VGGTOutput:
        """Run the aggregator and the enabled heads.

        Args:
            images: (S, 3, H, W) or (B, S, 3, H, W) RGB in [0, 1]; H, W multiples of patch_size.
            query_points: (N, 2) or (B, N, 2) pixel (x, y) in frame 0 for the track head.
            return_tokens: also return all aggregator layers (memory: depth x B*S*P*2C values).
            frames_chunk_size: frames per DPT pass (memory bound), None = all at once.
        """
        clip = as_clip(images)
        hw = (int(clip.shape[-2]), int(clip.shape[-1]))
        if return_tokens:
            full, start = self.aggregator(clip)
            layers: dict[int, Tensor] = dict(enumerate(full))
        else:
            layers, start = self.aggregator.forward_layers(
                clip, self.needed_layers(query_points is not None)
            )
        out = VGGTOutput(patch_start_idx=start, image_hw=hw)
        if return_tokens:
            out["aggregated_tokens"] = full
        if self.camera_head is not None:
            poses = self.camera_head(layers)
            out["pose_enc"], out["pose_enc_list"] = poses[-1], poses
        if self.depth_head is not None:
            out["depth"], out["depth_conf"] = self.depth_head(layers, hw, start, frames_chunk_size)
        if self.point_head is not None:
            out["world_points"], out["world_points_conf"] = self.point_head(
                layers, hw, start, frames_chunk_size
            )
        if self.track_head is not None and query_points is not None:
            queries = query_points.unsqueeze(0) if query_points.ndim == 2 else query_points
            tracks, vis, conf = self.track_head(layers, hw, start, queries)
            out["track"], out["vis"], out["conf"] = tracks[-1], vis, conf
        return out


def vggt_layout(config: VGGTConfig) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, shape)`` of every tensor of ``VGGT(config).state_dict()`` (meta device)."""
    with torch.device("meta"):
        model = VGGT(config)
    return [(name, tuple(t.shape)) for name, t in model.state_dict().items()]
