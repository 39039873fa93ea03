"""VGGT aggregator: DINOv2 patch tokens + camera/register tokens through alternating
frame-wise and global self-attention (the Spatial-MLLM spatial encoder).

Shapes: B batch, S frames, P tokens per frame = patch_start_idx + (H/14)*(W/14), C = embed_dim.
Each aggregator layer ``i`` outputs ``cat(frame_tokens_i, global_tokens_i)``: (B, S, P, 2C).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from spatial_mllm_ros.model.vggt.config import VGGTConfig
from spatial_mllm_ros.model.vggt.dinov2 import DinoVisionTransformer
from spatial_mllm_ros.model.vggt.errors import VGGTInputError
from spatial_mllm_ros.model.vggt.layers import Block, RotaryPositionEmbedding2D, patch_positions

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def first_and_rest(tokens: Tensor, batch: int, frames: int) -> Tensor:
    """Learned (1, 2, X, C) tokens -> (B*S, X, C): entry 0 for frame 0, entry 1 for the others."""
    first = tokens[:, :1].expand(batch, 1, *tokens.shape[2:])
    rest = tokens[:, 1:2].expand(batch, frames - 1, *tokens.shape[2:])
    return torch.cat((first, rest), dim=1).reshape(batch * frames, *tokens.shape[2:])


class Aggregator(nn.Module):
    """Alternating-attention trunk over all frames of a clip.

    Attributes match the checkpoint: ``patch_embed`` (DINOv2), ``frame_blocks``,
    ``global_blocks``, ``camera_token`` (1, 2, 1, C), ``register_token`` (1, 2, R, C).
    """

    def __init__(self, config: VGGTConfig) -> None:
        super().__init__()
        c = config
        self.patch_size = c.patch_size
        self.depth = c.depth
        self.aa_order = list(c.aa_order)
        self.aa_block_size = c.aa_block_size
        self.patch_start_idx = c.patch_start_idx
        self.patch_embed = DinoVisionTransformer(
            img_size=c.img_size,
            patch_size=c.patch_size,
            embed_dim=c.embed_dim,
            depth=c.patch_embed_depth,
            num_heads=c.patch_embed_num_heads,
            mlp_ratio=c.mlp_ratio,
            num_register_tokens=c.num_register_tokens,
            init_values=c.patch_embed_init_values,
        )
        self.rope = RotaryPositionEmbedding2D(c.rope_freq) if c.rope_freq > 0 else None
        self.frame_blocks = nn.ModuleList(self._block(c) for _ in range(c.depth))
        self.global_blocks = nn.ModuleList(self._block(c) for _ in range(c.depth))
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, c.embed_dim))
        self.register_token = nn.Parameter(torch.zeros(1, 2, c.num_register_tokens, c.embed_dim))
        nn.init.normal_(self.camera_token, std=1e-6)
        nn.init.normal_(self.register_token, std=1e-6)
        self._mean: Tensor
        self._std: Tensor
        self.register_buffer(
            "_mean", torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "_std", torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1), persistent=False
        )

    @property
    def loaded_depth(self) -> int:
        """Layers whose blocks this trunk holds (``depth`` unless :meth:`keep_layers` cut it)."""
        return len(self.frame_blocks)

    def keep_layers(self, count: int) -> list[str]:
        """Keep only the first ``count`` layers' blocks (what a reader of layer ``count - 1``
        needs); returns the dropped blocks' name prefixes (relative to this module).  Layers
        past them can no longer be requested (:meth:`forward_layers` refuses)."""
        if not 0 < count <= self.depth:
            raise ValueError(f"keep_layers({count}): between 1 and {self.depth}")
        dropped = [f"{kind}.{i}." for kind in ("frame_blocks", "global_blocks")
                   for i in range(count, len(self.frame_blocks))]
        self.frame_blocks = nn.ModuleList(list(self.frame_blocks)[:count])
        self.global_blocks = nn.ModuleList(list(self.global_blocks)[:count])
        return dropped

    def _block(self, c: VGGTConfig) -> Block:
        return Block(
            c.embed_dim,
            c.num_heads,
            c.mlp_ratio,
            init_values=c.init_values,
            qk_norm=c.qk_norm,
            rope=self.rope,
        )

    def _initial_tokens(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """images (B, S, 3, H, W) in [0, 1] -> tokens (B*S, P, C), positions (B*S, P, 2) or None."""
        if images.ndim != 5 or images.shape[2] != 3:
            raise VGGTInputError(f"expected images (B, S, 3, H, W), got {tuple(images.shape)}")
        b, s, _, h, w = images.shape
        if h % self.patch_size or w % self.patch_size:
            raise VGGTInputError(
                f"image {h}x{w} is not a multiple of the patch size {self.patch_size}"
            )
        weight_dtype = self.camera_token.dtype
        mean = self._mean.to(device=images.device)
        std = self._std.to(device=images.device)
        normed = ((images.float() - mean) / std).to(weight_dtype).reshape(b * s, 3, h, w)
        patches = self.patch_embed(normed)
        tokens = torch.cat(
            (
                first_and_rest(self.camera_token, b, s),
                first_and_rest(self.register_token, b, s),
                patches,
            ),
            dim=1,
        )
        if self.rope is None:
            return tokens, None
        pos = patch_positions(b * s, h // self.patch_size, w // self.patch_size, images.device) + 1
        special = torch.zeros(b * s, self.patch_start_idx, 2, dtype=pos.dtype, device=pos.device)
        return tokens, torch.cat((special, pos), dim=1)

    def _run(
        self, blocks: nn.ModuleList, start: int, tokens: Tensor, pos: Tensor | None
    ) -> tuple[Tensor, list[Tensor]]:
        outs: list[Tensor] = []
        for i in range(start, start + self.aa_block_size):
            tokens = blocks[i](tokens, pos=pos)
            outs.append(tokens)
        return tokens, outs

    def forward_layers(
        self, images: Tensor, layers: Iterable[int] | None = None
    ) -> tuple[dict[int, Tensor], int]:
        """Run the trunk, keeping only the requested layer outputs.

        Args:
            images: (B, S, 3, H, W) in [0, 1], H and W multiples of the patch size.
            layers: layer indices in [0, depth) (negative counts from the end); None keeps all.
                The trunk stops after the deepest requested layer.
        Returns:
            ({layer: (B, S, P, 2C)}, patch_start_idx).
        """
        wanted = set(range(self.depth)) if layers is None else {i % self.depth for i in layers}
        if max(wanted, default=-1) >= self.loaded_depth:
            raise VGGTInputError(
                f"layer {max(wanted)} requested, but only the first {self.loaded_depth} of "
                f"{self.depth} layers are loaded (the connector's; the VGGT heads were not "
                "loaded)")
        tokens, pos = self._initial_tokens(images)
        b, s = images.shape[:2]
        p, c = tokens.shape[1], tokens.shape[2]
        pos_global = None if pos is None else pos.reshape(b, s * p, 2)
        kept: dict[int, Tensor] = {}
        last = max(wanted, default=-1)
        step = 0
        while step * self.aa_block_size <= last:
            start = step * self.aa_block_size
            per_type: dict[str, list[Tensor]] = {}
            for kind in self.aa_order:
                if kind == "frame":
                    x, per_type[kind] = self._run(
                        self.frame_blocks, start, tokens.reshape(b * s, p, c), pos
                    )
                else:
                    x, per_type[kind] = self._run(
                        self.global_blocks, start, tokens.reshape(b, s * p, c), pos_global
                    )
                tokens = x
            for j in range(self.aa_block_size):
                if start + j in wanted:
                    kept[start + j] = torch.cat(
                        (
                            per_type["frame"][j].reshape(b, s, p, c),
                            per_type["global"][j].reshape(b, s, p, c),
                        ),
                        dim=-1,
                    )
            step += 1
        return kept, self.patch_start_idx

    def forward(self, images: Tensor) -> tuple[list[Tensor], int]:
        """images (B, S, 3, H, W) in [0, 1] -> ([depth x (B, S, P, 2C)], patch_start_idx)."""
        kept, start = self.forward_layers(images)
        return [kept[i] for i in range(self.depth)], start
