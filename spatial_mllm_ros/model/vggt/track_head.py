"""Track head: DPT feature extractor + iterative point tracker (CoTracker/VGGSfM style).

Shapes: B batch, S frames, N query points, C = latent (feature) width, (h, w) feature map size.
Query points and predicted tracks are pixel (x, y) coordinates of the input images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spatial_mllm_ros.model.vggt.dpt_head import DPTHead
from spatial_mllm_ros.model.vggt.layers import Mlp

TokenLayers = Sequence[Tensor] | Mapping[int, Tensor]


def bilinear_sample(values: Tensor, xy: Tensor, padding_mode: str = "border") -> Tensor:
    """Sample (N, C, H, W) at pixel ``xy`` (N, ..., 2), align_corners -> (N, C, ...)."""
    h, w = values.shape[-2:]
    scale = torch.tensor(
        [2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=values.dtype, device=values.device
    )
    grid = xy.detach().to(values.dtype) * scale - 1
    return F.grid_sample(values, grid, align_corners=True, padding_mode=padding_mode)


def sample_points(fmap: Tensor, xy: Tensor) -> Tensor:
    """Features of (B, C, H, W) at points (B, N, 2) -> (B, N, C)."""
    feats = bilinear_sample(fmap, xy.unsqueeze(2))
    return feats.squeeze(-1).permute(0, 2, 1)


def sincos_grid_embedding(dim: int, height: int, width: int) -> Tensor:
    """2D sin-cos table (1, dim, height, width): first half from x (column), second from y (row)."""

    def one_d(d: int, pos: Tensor) -> Tensor:
        omega = torch.arange(d // 2, dtype=torch.float64) / (d / 2.0)
        angles = torch.outer(pos.reshape(-1).double(), 1.0 / 10000**omega)
        return torch.cat((angles.sin(), angles.cos()), dim=1).float()

    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    emb = torch.cat((one_d(dim // 2, xs), one_d(dim // 2, ys)), dim=1)
    return emb.reshape(1, height, width, dim).permute(0, 3, 1, 2)


def flow_embedding(xy: Tensor, dim: int) -> Tensor:
    """(M, T, 2) displacements -> (M, T, 2*dim): interleaved sin/cos of x, then of y
    (frequencies 2k * 1000 / dim)."""
    freqs = torch.arange(0, dim, 2, device=xy.device, dtype=torch.float32) * (1000.0 / dim)
    out = []
    for comp in (xy[..., 0:1], xy[..., 1:2]):
        angles = comp.float() * freqs
        out.append(torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2))
    return torch.cat(out, dim=-1)


class CorrBlock:
    """Multi-scale correlation between track features and every frame's feature map.

    Pyramid of ``levels`` maps (2x average pooling each); at each level the correlation map is
    sampled on a (2r+1)^2 window around the current track position.
    """

    def __init__(self, fmaps: Tensor, levels: int, radius: int) -> None:
        self.radius = radius
        self.pyramid = [fmaps]
        for _ in range(levels - 1):
            b, s, c, h, w = self.pyramid[-1].shape
            pooled = F.avg_pool2d(self.pyramid[-1].reshape(b * s, c, h, w), 2, stride=2)
            self.pyramid.append(pooled.reshape(b, s, c, *pooled.shape[-2:]))
        r = torch.arange(-radius, radius + 1, dtype=fmaps.dtype, device=fmaps.device)
        # Window offsets as in the released tracker: the first window axis moves x, the second y.
        a, bb = torch.meshgrid(r, r, indexing="ij")
        self.offsets = torch.stack((a, bb), dim=-1)

    def sample(self, targets: Tensor, coords: Tensor) -> Tensor:
        """targets (B, S, N, C), coords (B, S, N, 2) at level 0 -> (B, S, N, levels*(2r+1)^2)."""
        b, s, n, c = targets.shape
        side = 2 * self.radius + 1
        out = []
        for level, fmaps in enumerate(self.pyramid):
            h, w = fmaps.shape[-2:]
            corr = torch.matmul(targets, fmaps.reshape(b, s, c, h * w)) / math.sqrt(c)
            centre = coords.reshape(b * s * n, 1, 1, 2) / (2**level)
            window = centre + self.offsets.to(coords.dtype).view(1, side, side, 2)
            sampled = bilinear_sample(
                corr.reshape(b * s * n, 1, h, w), window, padding_mode="zeros"
            )
            out.append(sampled.view(b, s, n, -1))
        return torch.cat(out, dim=-1)


class AttnBlock(nn.Module):
    """``x = norm1(x); x += mha(x, x, x); x += mlp(norm2(x))`` (released form); (M, T, D)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x)
        x = x + self.attn(x, x, x, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class CrossAttnBlock(nn.Module):
    """``x = norm1(x); ctx = norm_context(ctx); x += mha(x, ctx, ctx); x += mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        x = self.norm1(x)
        context = self.norm_context(context)
        x = x + self.cross_attn(x, context, context, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class EfficientUpdateFormer(nn.Module):
    """Time attention per track and space attention through ``num_virtual_tracks`` learned
    virtual tracks: (B, N, T, input_dim) -> (B, N, T, output_dim)."""

    def __init__(
        self,
        depth: int,
        input_dim: int,
        hidden_size: int,
        output_dim: int,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        num_virtual_tracks: int = 64,
    ) -> None:
        super().__init__()
        self.num_virtual_tracks = num_virtual_tracks
        self.input_norm = nn.LayerNorm(input_dim)
        self.input_transform = nn.Linear(input_dim, hidden_size)
        self.output_norm = nn.LayerNorm(hidden_size)
        self.flow_head = nn.Linear(hidden_size, output_dim)
        self.virual_tracks = nn.Parameter(torch.randn(1, num_virtual_tracks, 1, hidden_size))
        self.time_blocks = nn.ModuleList(
            AttnBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.space_virtual_blocks = nn.ModuleList(
            AttnBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.space_point2virtual_blocks = nn.ModuleList(
            CrossAttnBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.space_virtual2point_blocks = nn.ModuleList(
            CrossAttnBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.input_transform(self.input_norm(x))
        init = tokens
        b, _, t, d = tokens.shape
        tokens = torch.cat((tokens, self.virual_tracks.repeat(b, 1, t, 1)), dim=1)
        n = tokens.shape[1]
        n_points = n - self.num_virtual_tracks
        for i, time_block in enumerate(self.time_blocks):
            tokens = time_block(tokens.reshape(b * n, t, d)).view(b, n, t, d)
            space = tokens.permute(0, 2, 1, 3).reshape(b * t, n, d)
            points, virtual = space[:, :n_points], space[:, n_points:]
            virtual = self.space_virtual2point_blocks[i](virtual, points)
            virtual = self.space_virtual_blocks[i](virtual)
            points = self.space_point2virtual_blocks[i](points, virtual)
            tokens = torch.cat((points, virtual), dim=1).view(b, t, n, d).permute(0, 2, 1, 3)
        tokens = tokens[:, :n_points] + init
        return self.flow_head(self.output_norm(tokens))


class BaseTrackerPredictor(nn.Module):
    """Iterative tracker: correlation + flow embedding + track features -> coordinate and
    feature updates through :class:`EfficientUpdateFormer`."""

    def __init__(
        self,
        latent_dim: int = 128,
        hidden_size: int = 384,
        depth: int = 6,
        num_heads: int = 8,
        num_virtual_tracks: int = 64,
        corr_levels: int = 7,
        corr_radius: int = 4,
        stride: int = 2,
        max_scale: float = 518.0,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.corr_levels = corr_levels
        self.corr_radius = corr_radius
        self.stride = stride
        self.max_scale = max_scale
        self.transformer_dim = 3 * latent_dim + 4
        self.corr_mlp = Mlp(corr_levels * (2 * corr_radius + 1) ** 2, hidden_size, latent_dim)
        self.query_ref_token = nn.Parameter(torch.randn(1, 2, self.transformer_dim))
        self.updateformer = EfficientUpdateFormer(
            depth,
            self.transformer_dim,
            hidden_size,
            latent_dim + 2,
            num_heads,
            4.0,
            num_virtual_tracks,
        )
        self.fmap_norm = nn.LayerNorm(latent_dim)
        self.ffeat_norm = nn.GroupNorm(1, latent_dim)
        self.ffeat_updater = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(latent_dim, 1))
        self.conf_predictor = nn.Sequential(nn.Linear(latent_dim, 1))

    def forward(
        self, query_points: Tensor, fmaps: Tensor, iters: int = 4
    ) -> tuple[list[Tensor], Tensor, Tensor]:
        """query_points (B, N, 2) pixels of frame 0; fmaps (B, S, C, h, w) at 1/stride scale.

        Returns (per-iteration tracks (B, S, N, 2) in pixels, visibility (B, S, N),
        confidence (B, S, N)).
        """
        b, n, _ = query_points.shape
        _, s, c, hh, ww = fmaps.shape
        fmaps = self.fmap_norm(fmaps.permute(0, 1, 3, 4, 2)).permute(0, 1, 4, 2, 3)
        coords = (query_points / float(self.stride)).reshape(b, 1, n, 2).repeat(1, s, 1, 1)
        query_feat = sample_points(fmaps[:, 0], coords[:, 0])
        track_feats = query_feat.unsqueeze(1).repeat(1, s, 1, 1)
        start = coords[:, 0].clone()
        corr = CorrBlock(fmaps, self.corr_levels, self.corr_radius)
        pos_table = sincos_grid_embedding(self.transformer_dim, hh, ww).to(
            fmaps.device, fmaps.dtype
        )
        pos_emb = sample_points(pos_table.expand(b, -1, -1, -1), coords[:, 0]).reshape(b * n, 1, -1)
        ref = torch.cat(
            (self.query_ref_token[:, :1], self.query_ref_token[:, 1:2].expand(-1, s - 1, -1)), dim=1
        )
        preds: list[Tensor] = []
        for _ in range(iters):
            coords = coords.detach()
            fcorr = corr.sample(track_feats, coords)
            fcorr = self.corr_mlp(fcorr.permute(0, 2, 1, 3).reshape(b * n, s, -1))
            flows = (coords - coords[:, :1]).permute(0, 2, 1, 3).reshape(b * n, s, 2)
            flow_emb = torch.cat(
                (
                    flow_embedding(flows, self.latent_dim // 2),
                    flows / self.max_scale,
                    flows / self.max_scale,
                ),
                dim=-1,
            )
            feats = track_feats.permute(0, 2, 1, 3).reshape(b * n, s, c)
            x = torch.cat((flow_emb, fcorr, feats), dim=2) + pos_emb + ref.to(fmaps.dtype)
            delta = self.updateformer(x.reshape(b, n, s, -1)).reshape(b * n * s, -1)
            feats = self.ffeat_updater(self.ffeat_norm(delta[:, 2:])) + feats.reshape(b * n * s, c)
            track_feats = feats.reshape(b, n, s, c).permute(0, 2, 1, 3)
            coords = coords + delta[:, :2].reshape(b, n, s, 2).permute(0, 2, 1, 3)
            coords = torch.cat((start.unsqueeze(1), coords[:, 1:]), dim=1)
            preds.append(coords * self.stride)
        flat = track_feats.reshape(b * s * n, c)
        vis = torch.sigmoid(self.vis_predictor(flat).reshape(b, s, n))
        conf = torch.sigmoid(self.conf_predictor(flat).reshape(b, s, n))
        return preds, vis, conf


class TrackHead(nn.Module):
    """``feature_extractor`` (feature-only DPT at half resolution, no position embedding) and
    ``tracker`` (:class:`BaseTrackerPredictor`)."""

    def __init__(
        self,
        dim_in: int,
        patch_size: int = 14,
        features: int = 128,
        out_channels: Sequence[int] = (256, 512, 1024, 1024),
        intermediate_layer_idx: Sequence[int] = (4, 11, 17, 23),
        iters: int = 4,
        tracker: BaseTrackerPredictor | None = None,
    ) -> None:
        super().__init__()
        self.iters = iters
        self.feature_extractor = DPTHead(
            dim_in,
            patch_size=patch_size,
            features=features,
            out_channels=out_channels,
            intermediate_layer_idx=intermediate_layer_idx,
            output_dim=None,
            pos_embed=False,
            down_ratio=2,
        )
        self.tracker = tracker if tracker is not None else BaseTrackerPredictor(latent_dim=features)

    def forward(
        self,
        token_layers: TokenLayers,
        image_hw: tuple[int, int],
        patch_start_idx: int,
        query_points: Tensor,
        iters: int | None = None,
    ) -> tuple[list[Tensor], Tensor, Tensor]:
        """query_points (B, N, 2) pixel (x, y) in frame 0 -> ([tracks (B, S, N, 2)], vis, conf)."""
        fmaps = self.feature_extractor.features(token_layers, image_hw, patch_start_idx)
        return self.tracker(query_points, fmaps, iters or self.iters)
