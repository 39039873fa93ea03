"""DPT head (Ranftl et al. 2021) over four aggregator layers: depth, point map or track features.

Shapes: B batch, S frames, (h, w) = patch grid, (H, W) = image size, F = ``features``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TokenLayers = Sequence[Tensor] | Mapping[int, Tensor]

ACTIVATIONS = ("exp", "inv_log", "norm_exp", "linear")


def inverse_log_transform(y: Tensor) -> Tensor:
    """sign(y) * (exp(|y|) - 1)."""
    return torch.sign(y) * torch.expm1(y.abs())


def activate_head(out: Tensor, activation: str) -> tuple[Tensor, Tensor]:
    """(N, D+1, H, W) -> activated values (N, H, W, D), confidence 1 + exp(c) (N, H, W)."""
    fmap = out.permute(0, 2, 3, 1)
    values, conf = fmap[..., :-1], fmap[..., -1]
    if activation == "exp":
        values = torch.exp(values)
    elif activation == "inv_log":
        values = inverse_log_transform(values)
    elif activation == "norm_exp":
        norm = values.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        values = values / norm * torch.expm1(norm)
    return values, 1 + conf.exp()


def uv_grid(width: int, height: int, aspect_ratio: float, like: Tensor) -> Tensor:
    """Normalised pixel-centre (u, v) on a rectangle of unit diagonal: (height, width, 2)."""
    diag = (aspect_ratio**2 + 1.0) ** 0.5
    span_x, span_y = aspect_ratio / diag, 1.0 / diag
    xs = torch.linspace(
        -span_x * (width - 1) / width,
        span_x * (width - 1) / width,
        width,
        dtype=like.dtype,
        device=like.device,
    )
    ys = torch.linspace(
        -span_y * (height - 1) / height,
        span_y * (height - 1) / height,
        height,
        dtype=like.dtype,
        device=like.device,
    )
    uu, vv = torch.meshgrid(xs, ys, indexing="xy")
    return torch.stack((uu, vv), dim=-1)


def sincos_1d(dim: int, pos: Tensor, omega_0: float = 100.0) -> Tensor:
    """(M,) positions -> (M, dim) [sin | cos], frequencies omega_0^(-2k/dim), float64 math."""
    omega = torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2.0)
    omega = 1.0 / omega_0**omega
    angles = torch.outer(pos.reshape(-1).double(), omega)
    return torch.cat((angles.sin(), angles.cos()), dim=1).float()


def grid_embedding(grid: Tensor, dim: int) -> Tensor:
    """(H, W, 2) grid -> (H, W, dim): first half embeds u, second half v."""
    h, w, _ = grid.shape
    flat = grid.reshape(-1, 2)
    emb = torch.cat((sincos_1d(dim // 2, flat[:, 0]), sincos_1d(dim // 2, flat[:, 1])), dim=-1)
    return emb.view(h, w, dim)


class ResidualConvUnit(nn.Module):
    """``relu(x) + conv2(relu(conv1(relu(x))))`` (the released DPT applies an in-place ReLU to
    its input, so the skip carries ``relu(x)``); (N, F, h, w) -> (N, F, h, w)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        return self.conv2(F.relu(self.conv1(x))) + x


class FeatureFusionBlock(nn.Module):
    """Adds the refined skip, refines, upsamples (bilinear, align_corners), 1x1-projects."""

    def __init__(self, features: int, has_residual: bool = True) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        self.resConfUnit1 = ResidualConvUnit(features) if has_residual else None
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(
        self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None
    ) -> Tensor:
        """x, skip: (N, F, h, w) -> (N, F, size) (twice h, w when ``size`` is None)."""
        if self.resConfUnit1 is not None and skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        target = size if size is not None else (2 * x.shape[-2], 2 * x.shape[-1])
        x = F.interpolate(x, size=target, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class DPTScratch(nn.Module):
    """``scratch``: per-level 3x3 reduction to F channels, 4 fusion blocks, output convs."""

    def __init__(self, out_channels: Sequence[int], features: int, output_dim: int | None) -> None:
        super().__init__()
        self.layer1_rn = nn.Conv2d(out_channels[0], features, 3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(out_channels[1], features, 3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(out_channels[2], features, 3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(out_channels[3], features, 3, padding=1, bias=False)
        self.refinenet1 = FeatureFusionBlock(features)
        self.refinenet2 = FeatureFusionBlock(features)
        self.refinenet3 = FeatureFusionBlock(features)
        self.refinenet4 = FeatureFusionBlock(features, has_residual=False)
        if output_dim is None:
            self.output_conv1 = nn.Conv2d(features, features, 3, padding=1)
            self.output_conv2: nn.Sequential | None = None
        else:
            self.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
            self.output_conv2 = nn.Sequential(
                nn.Conv2d(features // 2, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, output_dim, 1)
            )

    def fuse(self, levels: Sequence[Tensor]) -> Tensor:
        """Four maps at 4x, 2x, 1x, 0.5x patch resolution -> (N, F', 8h, 8w) after output_conv1."""
        l1 = self.layer1_rn(levels[0])
        l2 = self.layer2_rn(levels[1])
        l3 = self.layer3_rn(levels[2])
        l4 = self.layer4_rn(levels[3])
        out = self.refinenet4(l4, size=(l3.shape[-2], l3.shape[-1]))
        out = self.refinenet3(out, l3, size=(l2.shape[-2], l2.shape[-1]))
        out = self.refinenet2(out, l2, size=(l1.shape[-2], l1.shape[-1]))
        out = self.refinenet1(out, l1)
        return self.output_conv1(out)


class DPTHead(nn.Module):
    """Dense head over aggregator layers ``intermediate_layer_idx``.

    With ``output_dim`` set: predictions (B, S, H, W, output_dim - 1) through ``activation`` and
    confidence (B, S, H, W) = 1 + exp(c).  With ``output_dim=None`` (track feature extractor):
    features (B, S, F, H / down_ratio, W / down_ratio).
    """

    def __init__(
        self,
        dim_in: int,
        patch_size: int = 14,
        features: int = 256,
        out_channels: Sequence[int] = (256, 512, 1024, 1024),
        intermediate_layer_idx: Sequence[int] = (4, 11, 17, 23),
        output_dim: int | None = 4,
        activation: str = "inv_log",
        pos_embed: bool = True,
        down_ratio: int = 1,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown DPT activation {activation!r}; expected one of {ACTIVATIONS}"
            )
        self.patch_size = patch_size
        self.intermediate_layer_idx = list(intermediate_layer_idx)
        self.activation = activation
        self.pos_embed = pos_embed
        self.down_ratio = down_ratio
        oc = list(out_channels)
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, c, 1) for c in oc)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(oc[0], oc[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(oc[1], oc[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(oc[3], oc[3], kernel_size=3, stride=2, padding=1),
            ]
        )
        self.scratch = DPTScratch(oc, features, output_dim)

    def _add_pos_embed(self, x: Tensor, image_hw: tuple[int, int], ratio: float = 0.1) -> Tensor:
        h, w = x.shape[-2:]
        grid = uv_grid(w, h, image_hw[1] / image_hw[0], x)
        emb = grid_embedding(grid, x.shape[1]).to(x.dtype) * ratio
        return x + emb.permute(2, 0, 1)[None]

    def _fused(
        self,
        token_layers: TokenLayers,
        image_hw: tuple[int, int],
        patch_start_idx: int,
        frames: slice,
    ) -> Tensor:
        """-> (B*s, F', H / down_ratio, W / down_ratio) for the frames in ``frames``."""
        gh, gw = image_hw[0] // self.patch_size, image_hw[1] // self.patch_size
        levels: list[Tensor] = []
        for level, layer in enumerate(self.intermediate_layer_idx):
            x = token_layers[layer][:, frames, patch_start_idx:]
            x = self.norm(x.reshape(-1, x.shape[-2], x.shape[-1]))
            x = x.permute(0, 2, 1).reshape(x.shape[0], x.shape[-1], gh, gw)
            x = self.projects[level](x)
            if self.pos_embed:
                x = self._add_pos_embed(x, image_hw)
            levels.append(self.resize_layers[level](x))
        out = self.scratch.fuse(levels)
        size = (
            int(gh * self.patch_size / self.down_ratio),
            int(gw * self.patch_size / self.down_ratio),
        )
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        if self.pos_embed:
            out = self._add_pos_embed(out, image_hw)
        return out

    @staticmethod
    def _chunks(frames: int, chunk: int | None) -> list[slice]:
        step = frames if not chunk or chunk >= frames else chunk
        return [slice(i, min(i + step, frames)) for i in range(0, frames, step)]

    def features(
        self,
        token_layers: TokenLayers,
        image_hw: tuple[int, int],
        patch_start_idx: int,
        frames_chunk_size: int | None = 8,
    ) -> Tensor:
        """Feature maps (B, S, F', H / down_ratio, W / down_ratio)."""
        ref = token_layers[self.intermediate_layer_idx[0]]
        b, s = ref.shape[:2]
        outs = []
        for part in self._chunks(s, frames_chunk_size):
            out = self._fused(token_layers, image_hw, patch_start_idx, part)
            outs.append(out.view(b, part.stop - part.start, *out.shape[1:]))
        return torch.cat(outs, dim=1)

    def forward(
        self,
        token_layers: TokenLayers,
        image_hw: tuple[int, int],
        patch_start_idx: int,
        frames_chunk_size: int | None = 8,
    ) -> tuple[Tensor, Tensor]:
        """-> (values (B, S, H, W, D), confidence (B, S, H, W)); requires ``output_dim``."""
        if self.scratch.output_conv2 is None:
            raise RuntimeError("this DPT head is a feature extractor; call features()")
        ref = token_layers[self.intermediate_layer_idx[0]]
        b, s = ref.shape[:2]
        values, confs = [], []
        for part in self._chunks(s, frames_chunk_size):
            n = part.stop - part.start
            out = self.scratch.output_conv2(
                self._fused(token_layers, image_hw, patch_start_idx, part)
            )
            v, c = activate_head(out, self.activation)
            values.append(v.view(b, n, *v.shape[1:]))
            confs.append(c.view(b, n, *c.shape[1:]))
        return torch.cat(values, dim=1), torch.cat(confs, dim=1)
