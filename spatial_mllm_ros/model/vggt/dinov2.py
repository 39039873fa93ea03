"""DINOv2 ViT with register tokens: the aggregator's patch embedding (``aggregator.patch_embed``).

The released VGGT keeps the whole DINOv2-L/14-reg backbone (conv stem, class token, 4 register
tokens, learned position table for a 37x37 grid, 24 blocks, final norm, unused mask token) and
uses its normalised patch tokens as the per-frame input of the alternating-attention trunk.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spatial_mllm_ros.model.vggt.errors import VGGTInputError
from spatial_mllm_ros.model.vggt.layers import Block


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch x patch`` conv stem: (B, 3, H, W) -> (B, (H/p)*(W/p), C)."""

    def __init__(self, patch_size: int, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise VGGTInputError(
                f"image {h}x{w} is not a multiple of the patch size {self.patch_size}"
            )
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoVisionTransformer(nn.Module):
    """DINOv2 backbone returning the final-normed patch tokens (registers and class token dropped).

    Args:
        img_size: training resolution; the position table has ``(img_size/patch)^2 + 1`` rows.
        patch_size, embed_dim, depth, num_heads, mlp_ratio: ViT sizes.
        num_register_tokens: registers inserted after the class token.
        init_values: LayerScale initial value of the blocks.
    """

    def __init__(
        self,
        img_size: int,
        patch_size: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        num_register_tokens: int = 4,
        init_values: float = 1.0,
    ) -> None:
        super().__init__()
        grid = img_size // patch_size
        self.patch_size = patch_size
        self.num_register_tokens = num_register_tokens
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim), requires_grad=False)
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, init_values=init_values, norm_eps=1e-6)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        nn.init.normal_(self.register_tokens, std=1e-6)

    def position_table(self, grid_h: int, grid_w: int) -> Tensor:
        """Class + patch position embeddings for a ``grid_h x grid_w`` grid: (1, 1 + gh*gw, C).

        The square training table is resized with antialiased bicubic interpolation (float32).
        """
        table = self.pos_embed
        n = table.shape[1] - 1
        side = math.isqrt(n)
        if grid_h == side and grid_w == side:
            return table
        dim = table.shape[-1]
        patch = table[:, 1:].float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
        patch = F.interpolate(patch, size=(grid_h, grid_w), mode="bicubic", antialias=True)
        patch = patch.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)
        return torch.cat((table[:, :1].float(), patch), dim=1).to(table.dtype)

    def forward(self, images: Tensor) -> Tensor:
        """images: (B, 3, H, W) ImageNet-normalised -> patch tokens (B, (H/p)*(W/p), C)."""
        b, _, h, w = images.shape
        x = self.patch_embed(images)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        x = x + self.position_table(h // self.patch_size, w // self.patch_size)
        x = torch.cat((x[:, :1], self.register_tokens.expand(b, -1, -1), x[:, 1:]), dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1 + self.num_register_tokens :]
