"""Transformer building blocks shared by the DINOv2 backbone, the aggregator and the camera head.

Parameter names (``qkv``, ``q_norm``, ``proj``, ``ls1.gamma``, ``mlp.fc1`` ...) are those of the
released VGGT checkpoint.  Shapes: B batch, N tokens, C channels, h heads, d = C / h.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerScale(nn.Module):
    """Per-channel learned scale ``x * gamma`` (CaiT); ``gamma`` has shape (C,)."""

    def __init__(self, dim: int, init_values: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: Tensor) -> Tensor:
        """(..., C) -> (..., C)."""
        return x * self.gamma


class Mlp(nn.Module):
    """Two-layer perceptron ``fc2(gelu(fc1(x)))``: (..., in) -> (..., out)."""

    def __init__(
        self, in_features: int, hidden_features: int, out_features: int | None = None
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def patch_positions(batch: int, grid_h: int, grid_w: int, device: torch.device) -> Tensor:
    """Integer (row, column) of every patch in row-major order: (batch, grid_h * grid_w, 2)."""
    rows = torch.arange(grid_h, device=device)
    cols = torch.arange(grid_w, device=device)
    pos = torch.cartesian_prod(rows, cols)
    return pos.view(1, grid_h * grid_w, 2).expand(batch, -1, -1).clone()


class RotaryPositionEmbedding2D(nn.Module):
    """2D rotary embedding: the first half of each head's channels rotates with the row,
    the second half with the column (rotate-half convention, base frequency ``frequency``).

    No parameters.
    """

    def __init__(self, frequency: float = 100.0) -> None:
        super().__init__()
        self.frequency = float(frequency)

    def _cos_sin(self, dim: int, length: int, x: Tensor) -> tuple[Tensor, Tensor]:
        exponents = torch.arange(0, dim, 2, device=x.device).float() / dim
        inv_freq = 1.0 / (self.frequency**exponents)
        angles = torch.outer(torch.arange(length, device=x.device, dtype=inv_freq.dtype), inv_freq)
        angles = angles.to(x.dtype)
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos(), angles.sin()

    @staticmethod
    def _rotate_half(x: Tensor) -> Tensor:
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    def _rotate_1d(self, x: Tensor, pos: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        cos_p = F.embedding(pos, cos)[:, None]
        sin_p = F.embedding(pos, sin)[:, None]
        return x * cos_p + self._rotate_half(x) * sin_p

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        """x: (B, h, N, d), d % 4 == 0; positions: (B, N, 2) integer (row, col) -> (B, h, N, d)."""
        half = x.shape[-1] // 2
        length = int(positions.max()) + 1
        cos, sin = self._cos_sin(half, length, x)
        rows, cols = x.chunk(2, dim=-1)
        rows = self._rotate_1d(rows, positions[..., 0], cos, sin)
        cols = self._rotate_1d(cols, positions[..., 1], cos, sin)
        return torch.cat((rows, cols), dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention with optional per-head q/k LayerNorm and 2D RoPE.

    (B, N, C) -> (B, N, C); ``qkv`` weight (3C, C), ``q_norm``/``k_norm`` over d = C / h.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qk_norm: bool = False,
        rope: RotaryPositionEmbedding2D | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm: nn.Module = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm: nn.Module = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        """x: (B, N, C); pos: (B, N, 2) patch (row, col) when RoPE is used."""
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None and pos is not None:
            q = self.rope(q, pos)
            k = self.rope(k, pos)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale:
    ``x += ls1(attn(norm1(x))); x += ls2(mlp(norm2(x)))``; (B, N, C) -> (B, N, C).

    ``norm_eps`` is 1e-6 in the DINOv2 backbone and 1e-5 (PyTorch default) in the aggregator
    and camera head, as in the released model.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        init_values: float | None = None,
        qk_norm: bool = False,
        rope: RotaryPositionEmbedding2D | None = None,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm, rope=rope)
        self.ls1: nn.Module = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2: nn.Module = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), pos=pos))
        return x + self.ls2(self.mlp(self.norm2(x)))
