"""Connectors: turn VGGT aggregator tokens into Qwen2.5-VL video-token embeddings and fuse them.

All connectors merge each 2x2 block of spatial patches of 2 consecutive frames (Qwen2.5-VL's
``spatial_merge_size`` and ``temporal_patch_size``) into one token, so that a clip of ``S`` frames
(``S`` even) at ``H x W`` pixels gives ``S/2 * H/28 * W/28`` tokens, in the order of Qwen2.5-VL's
video tokens: temporal group, then merged row, then merged column.  The merged feature width is
``2 * embed_dim * 2 * 2 * 2`` (16384 for VGGT-1B).

The two released connectors concatenate the 8 patch vectors in DIFFERENT orders (checked against
the public Spatial-MLLM code, branch ``v1.0`` ``VGGTEmbeddingMerger.merge_tokens`` and branch
``master`` ``MLPAddConnector.preprocess_spatial_embeds``):

* v1.0 ``vggt_embedding_merger``: feature index order (frame-in-pair, row-in-block,
  column-in-block, channel) -- channel fastest;
* v1.1 ``connector`` (``mlp_add``): (row-in-block, column-in-block, channel, frame-in-pair) --
  frame fastest.

Registry: :data:`CONNECTORS` maps ``connector_type`` to a builder.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: Module names the connector's parameters are saved under in each released layout.
RELEASED_PREFIX = {
    "vggt_embedding_merger": "vggt_embedding_merger.",
    "mlp_add": "connector.",
    "gated": "connector.",
}


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned scale, computed in float32 (as Qwen2RMSNorm)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


def _check_grid(
    tokens: torch.Tensor, grid_hw: tuple[int, int], temporal: int, spatial: int
) -> None:
    _, s, p, _ = tokens.shape
    h, w = grid_hw
    if p != h * w:
        raise ValueError(f"spatial tokens have {p} patches per frame, grid is {h}x{w}")
    if s % temporal:
        raise ValueError(f"{s} frames is not a multiple of temporal_patch_size {temporal}")
    if h % spatial or w % spatial:
        raise ValueError(f"patch grid {h}x{w} is not a multiple of spatial_merge_size {spatial}")


def _merge(
    tokens: torch.Tensor,
    grid_hw: tuple[int, int],
    temporal: int,
    spatial: int,
    feature_order: tuple[int, ...],
) -> torch.Tensor:
    """(B, S, h*w, C) -> (B*S/t*h/m*w/m, t*m*m*C): tokens in (group, row, col) order, each
    token's features ordered by ``feature_order`` over the axes (2=t, 4=mh, 6=mw, 7=C)."""
    _check_grid(tokens, grid_hw, temporal, spatial)
    b, s, _, c = tokens.shape
    h, w = grid_hw
    x = tokens.reshape(b, s // temporal, temporal, h // spatial, spatial, w // spatial, spatial, c)
    x = x.permute(0, 1, 3, 5, *feature_order)
    return x.reshape(-1, temporal * spatial * spatial * c)


def merge_v1_0(
    tokens: torch.Tensor, grid_hw: tuple[int, int], temporal: int = 2, spatial: int = 2
) -> torch.Tensor:
    """v1.0 merge: (B, S, h*w, C) -> (B*S/t*h/m*w/m, t*m*m*C), features ordered (t, mh, mw, C)."""
    return _merge(tokens, grid_hw, temporal, spatial, (2, 4, 6, 7))


def merge_v1_1(
    tokens: torch.Tensor, grid_hw: tuple[int, int], temporal: int = 2, spatial: int = 2
) -> torch.Tensor:
    """v1.1 merge: (B, S, h*w, C) -> (B*S/t*h/m*w/m, m*m*C*t), features ordered (mh, mw, C, t)."""
    return _merge(tokens, grid_hw, temporal, spatial, (4, 6, 7, 2))


class SpatialConnector(nn.Module):
    """Base connector: ``forward(video_embeds, layer_tokens, patch_start_idx, grid_hw) -> fused``.

    Shapes: ``video_embeds`` (N, hidden) -- Qwen2.5-VL video tokens of one or more equally sized
    clips; ``layer_tokens`` (B, S, P_total, 2*embed_dim) -- the aggregator layer ``layer_idx``;
    result (N, hidden).
    """

    layer_idx: int = -1
    temporal: int = 2
    spatial: int = 2

    def merge(self, tokens: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError

    def project(self, merged: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def fuse(self, video_embeds: torch.Tensor, spatial_embeds: torch.Tensor) -> torch.Tensor:
        return video_embeds + spatial_embeds.to(video_embeds.dtype)

    def spatial_embeds(
        self, layer_tokens: torch.Tensor, patch_start_idx: int, grid_hw: tuple[int, int]
    ) -> torch.Tensor:
        """Projected spatial tokens (N, hidden), one per Qwen2.5-VL video token.

        ``layer_tokens``: (B, S, P_total, 2*embed_dim), the aggregator layer ``self.layer_idx``.
        """
        return self.project(self.merge(layer_tokens[:, :, patch_start_idx:], grid_hw))

    def forward(
        self,
        video_embeds: torch.Tensor,
        layer_tokens: torch.Tensor,
        patch_start_idx: int,
        grid_hw: tuple[int, int],
    ) -> torch.Tensor:
        spatial = self.spatial_embeds(layer_tokens, patch_start_idx, grid_hw)
        if spatial.shape[0] != video_embeds.shape[0]:
            raise ValueError(
                f"{spatial.shape[0]} merged spatial tokens for {video_embeds.shape[0]} video tokens"
            )
        return self.fuse(video_embeds, spatial)


class VGGTEmbeddingMerger(SpatialConnector):
    """v1.0 ``vggt_embedding_merger`` (last aggregator layer).

    RMSNorm(M) -> Linear(M, M) -> GELU -> Linear(M, hidden), then RMSNorm(hidden) ->
    Linear(hidden, hidden) -> GELU -> Linear(hidden, hidden); M = 8 * 2 * embed_dim.
    """

    def __init__(self, vggt_dim: int, hidden: int, temporal: int = 2, spatial: int = 2) -> None:
        super().__init__()
        self.temporal, self.spatial, self.layer_idx = temporal, spatial, -1
        merged = 2 * vggt_dim * temporal * spatial * spatial
        self.token_merge_ln_q = RMSNorm(merged)
        self.token_merge_mlp = _mlp(merged, merged, hidden)
        self.vgg_to_language_ln_q = RMSNorm(hidden)
        self.vgg_to_language_mlp = _mlp(hidden, hidden, hidden)

    def merge(self, tokens: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
        return merge_v1_0(tokens, grid_hw, self.temporal, self.spatial)

    def project(self, merged: torch.Tensor) -> torch.Tensor:
        x = self.token_merge_mlp(self.token_merge_ln_q(merged))
        return self.vgg_to_language_mlp(self.vgg_to_language_ln_q(x))


class MLPAddConnector(SpatialConnector):
    """v1.1 ``connector`` (``mlp_add``): RMSNorm(M) -> Linear(M, M) -> GELU -> Linear(M, hidden)."""

    def __init__(
        self, vggt_dim: int, hidden: int, layer_idx: int, temporal: int = 2, spatial: int = 2
    ) -> None:
        super().__init__()
        self.temporal, self.spatial, self.layer_idx = temporal, spatial, layer_idx
        merged = 2 * vggt_dim * temporal * spatial * spatial
        self.ln_q = RMSNorm(merged)
        self.mlp = _mlp(merged, merged, hidden)

    def merge(self, tokens: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
        return merge_v1_1(tokens, grid_hw, self.temporal, self.spatial)

    def project(self, merged: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.ln_q(merged))


class GatedConnector(MLPAddConnector):
    """Gated fusion for fine-tuning -- NO RELEASED WEIGHTS EXIST for this connector.

    Spatial tokens are projected as in v1.1 (``s``); with the 2D tokens ``v``:
    ``g_v = sigmoid(gate_visual([v, s]))``, ``g_s = sigmoid(gate_spatial([v, s]))`` and
    ``out = fusion([g_v * v, g_s * s])``.  Gates start at sigmoid(0) = 0.5 and
    ``fusion = [2 I, 2 I]``, so before any training ``out = v + s`` -- the released additive fusion.
    """

    def __init__(
        self, vggt_dim: int, hidden: int, layer_idx: int, temporal: int = 2, spatial: int = 2
    ) -> None:
        super().__init__(vggt_dim, hidden, layer_idx, temporal, spatial)
        self.gate_visual = nn.Linear(2 * hidden, hidden)
        self.gate_spatial = nn.Linear(2 * hidden, hidden)
        self.fusion = nn.Linear(2 * hidden, hidden)
        self.reset_gates()

    @torch.no_grad()
    def reset_gates(self) -> None:
        """Start as the additive fusion: zero gate weights, fusion = [2I, 2I]."""
        if self.fusion.weight.is_meta:
            return
        hidden = self.fusion.out_features
        for gate in (self.gate_visual, self.gate_spatial):
            gate.weight.zero_()
            gate.bias.zero_()
        eye = torch.eye(hidden, dtype=self.fusion.weight.dtype)
        self.fusion.weight.copy_(torch.cat([2 * eye, 2 * eye], dim=1))
        self.fusion.bias.zero_()

    def fuse(self, video_embeds: torch.Tensor, spatial_embeds: torch.Tensor) -> torch.Tensor:
        s = spatial_embeds.to(video_embeds.dtype)
        both = torch.cat([video_embeds, s], dim=-1)
        g_v = torch.sigmoid(self.gate_visual(both))
        g_s = torch.sigmoid(self.gate_spatial(both))
        return self.fusion(torch.cat([g_v * video_embeds, g_s * s], dim=-1))


ConnectorBuilder = Callable[[int, int, int, int, int], SpatialConnector]

CONNECTORS: dict[str, ConnectorBuilder] = {
    "vggt_embedding_merger": lambda d, h, _i, t, m: VGGTEmbeddingMerger(d, h, t, m),
    "mlp_add": lambda d, h, i, t, m: MLPAddConnector(d, h, i, t, m),
    "gated": lambda d, h, i, t, m: GatedConnector(d, h, i, t, m),
}


def build_connector(
    connector_type: str,
    vggt_dim: int,
    hidden: int,
    layer_idx: int = -1,
    temporal: int = 2,
    spatial: int = 2,
) -> SpatialConnector:
    """Build a registered connector (``vggt_dim`` = VGGT embed_dim, ``hidden`` = LLM width)."""
    try:
        builder = CONNECTORS[connector_type]
    except KeyError as err:
        raise ValueError(
            f"unknown connector {connector_type!r}; registered: {sorted(CONNECTORS)}"
        ) from err
    return builder(vggt_dim, hidden, layer_idx, temporal, spatial)
