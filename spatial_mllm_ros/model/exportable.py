"""Traceable forms of Spatial-MLLM's two vision encoders, with a dynamic frame axis.

Both modules compute what :meth:`SpatialMLLMForConditionalGeneration.encode_video` computes with
the model's own submodules and weights (nothing is re-trained or copied); they only express it
in operations the ONNX exporter can trace for ANY number of frames at one input resolution
``H x W`` (a "size"; TensorRT then builds one engine per size with a frame-count profile).
With ``S`` frames, ``T = S / 2`` temporal groups, ``gh = H / 14``, ``gw = W / 14``,
``L = gh * gw`` patches per temporal group and ``D`` the LLM width:

* :class:`SpatialTokens` -- VGGT's aggregator as Spatial-MLLM uses it: the frames
  ``video_tchw`` (S, 3, H, W) in [0, 1] -> the patch tokens of the aggregator layer the
  connector reads, ``layer_tokens`` (S, L, 2 * embed_dim). The connector (merge, projection,
  fusion) stays in PyTorch. DINOv2's position-table resize and the patch-position helper are
  replaced by exportable equivalents for the size (:func:`traceable_aggregator`).
* :class:`FrameBatchedVision` -- Qwen2.5-VL's vision tower: ``pixel_values`` (T * L, 1176) as
  the processor emits them -> ``video_embeds`` (T * L / 4, D). Qwen2.5-VL attends only within a
  temporal group (its full-attention layers use one segment per group, its window layers
  windows inside a group), and its rotary positions and window order repeat per group. So the
  tower is evaluated with the temporal groups as a batch axis: the window order, the rotary
  tables and the window segments of ONE group are read from the tower itself (one probe run
  with hooks, :func:`probe_group_structure`) and become constants, and the window layers use
  a block-diagonal attention mask instead of a Python loop over segments.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spatial_mllm_ros.model.errors import ExportError
from spatial_mllm_ros.model.modeling import SpatialMLLMForConditionalGeneration

__all__ = [
    "FrameBatchedVision",
    "GroupStructure",
    "SpatialTokens",
    "probe_group_structure",
    "traceable_aggregator",
]


def spatial_layer(model: SpatialMLLMForConditionalGeneration) -> int:
    """Index of the aggregator layer the connector reads (in [0, depth))."""
    spatial: Any = model.config.spatial_config
    return int(model.spatial_parts()[1].layer_idx) % int(spatial.depth)


class SpatialTokens(nn.Module):
    """(S, 3, H, W) frames in [0, 1] -> patch tokens (S, L, 2 * embed_dim) of the aggregator
    layer the connector reads, in the aggregator's dtype."""

    def __init__(self, model: SpatialMLLMForConditionalGeneration) -> None:
        super().__init__()
        self.aggregator = model.spatial_parts()[0].aggregator
        self.layer = spatial_layer(model)

    def forward(self, video_tchw: torch.Tensor) -> torch.Tensor:
        dtype = self.aggregator.camera_token.dtype
        kept, start = self.aggregator.forward_layers(
            video_tchw.unsqueeze(0).to(dtype), [self.layer]
        )
        return kept[self.layer][0, :, int(start):]


def _grid_positions(batch: int, grid_h: int, grid_w: int, device: torch.device) -> torch.Tensor:
    """Same values as :func:`vggt.layers.patch_positions`, without ``aten::cartesian_prod``."""
    rows = torch.arange(grid_h, device=device).repeat_interleave(grid_w)
    cols = torch.arange(grid_w, device=device).repeat(grid_h)
    pos = torch.stack((rows, cols), dim=-1)
    return pos.view(1, grid_h * grid_w, 2).expand(batch, -1, -1).clone()


@contextlib.contextmanager
def traceable_aggregator(module: SpatialTokens, height: int, width: int) -> Iterator[None]:
    """Make ``module``'s aggregator exportable at ``height x width`` for the duration.

    DINOv2's position-table resize (antialiased bicubic, no ONNX symbolic) depends only on
    weights, so at a fixed size it is a constant; ``torch.cartesian_prod`` (no ONNX symbolic at
    opset 17) is swapped for an equivalent. Not thread-safe: the caller holds the model.
    """
    from spatial_mllm_ros.model.vggt import aggregator as agg_module

    patch = int(module.aggregator.patch_size)
    grid_hw = (height // patch, width // patch)
    dino: Any = module.aggregator.patch_embed
    with torch.no_grad():
        table = dino.position_table(*grid_hw).detach().clone()

    def constant(grid_h: int, grid_w: int) -> torch.Tensor:
        if (grid_h, grid_w) != grid_hw:
            raise ExportError(f"graph fixed at grid {grid_hw}, got {(grid_h, grid_w)}")
        return table

    original = agg_module.patch_positions
    dino.position_table = constant
    agg_module.patch_positions = _grid_positions
    try:
        yield
    finally:
        agg_module.patch_positions = original
        del dino.position_table


@dataclass(frozen=True)
class GroupStructure:
    """What Qwen2.5-VL's tower derives from the grid, for ONE temporal group of ``gh x gw``.

    Attributes:
        patch_order: (L,) long -- position ``i`` of the window-ordered sequence holds patch
            ``patch_order[i]`` (index in the processor's patch order, merge units together).
        unit_inverse: (L / 4,) long -- merged token ``j`` of the output (the processor's
            order) is merged token ``unit_inverse[j]`` of the window-ordered sequence.
        cos, sin: (L, head_dim) rotary tables in window order (float32).
        segments: per block, the attention segments as boundaries ``[0, ..., L]``.
    """

    patch_order: torch.Tensor
    unit_inverse: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    segments: tuple[tuple[int, ...], ...]


def probe_group_structure(visual: nn.Module, grid_h: int, grid_w: int) -> GroupStructure:
    """Run ``visual`` once on random patches of one temporal group and read, with hooks, the
    window order, rotary tables and attention segments it uses (so this does not depend on how
    a transformers version computes them).

    Raises:
        ExportError: the tower does not pass ``cu_seqlens`` and ``position_embeddings`` to its
            blocks (an unsupported transformers version) or does not permute whole merge units.
    """
    config: Any = visual.config
    merge = int(config.spatial_merge_size)
    patch_dim = (
        int(config.in_channels) * int(config.temporal_patch_size) * int(config.patch_size) ** 2
    )
    length = grid_h * grid_w
    param = next(visual.parameters())
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(length, patch_dim, generator=gen).to(param.device, param.dtype)
    grid = torch.tensor([[1, grid_h, grid_w]], device=param.device)
    seen: dict[str, Any] = {"blocks": []}

    def embedded(_m: nn.Module, _a: Any, out: torch.Tensor) -> None:
        seen["embedded"] = out.detach()

    def block_input(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen["blocks"].append((args[0] if args else kwargs["hidden_states"], kwargs))

    blocks: Any = visual.blocks
    handles = [visual.patch_embed.register_forward_hook(embedded)]  # type: ignore[union-attr]
    handles += [b.register_forward_pre_hook(block_input, with_kwargs=True) for b in blocks]
    try:
        with torch.no_grad():
            visual(x, grid_thw=grid)
    finally:
        for h in handles:
            h.remove()
    first, kwargs0 = seen["blocks"][0]
    if "cu_seqlens" not in kwargs0 or kwargs0.get("position_embeddings") is None:
        raise ExportError("this transformers version's Qwen2.5-VL tower cannot be exported: its "
                          "blocks take no cu_seqlens/position_embeddings keyword arguments")
    distances = torch.cdist(first.float(), seen["embedded"].float())
    order = distances.argmin(dim=1).cpu()
    if not torch.equal(first, seen["embedded"][order.to(first.device)]):
        raise ExportError("could not recover the tower's window order")
    unit = merge * merge
    units = order.view(-1, unit)
    whole = torch.equal(units, units[:, :1] + torch.arange(unit)) and not bool(
        (units[:, 0] % unit).any()
    )
    if not whole:
        raise ExportError("the tower's window order does not keep merge units together")
    unit_order = units[:, 0] // unit
    cos, sin = kwargs0["position_embeddings"]
    segments = tuple(
        tuple(int(v) for v in kw["cu_seqlens"].tolist()) for _, kw in seen["blocks"]
    )
    return GroupStructure(
        patch_order=order,
        unit_inverse=torch.argsort(unit_order),
        cos=cos.detach().float().cpu(),
        sin=sin.detach().float().cpu(),
        segments=segments,
    )


def _segment_mask(segments: tuple[int, ...], length: int) -> torch.Tensor | None:
    """(L, L) bool mask, True where a query may attend a key (same segment); None = all."""
    if segments == (0, length):
        return None
    ids = torch.zeros(length, dtype=torch.long)
    for i, (a, b) in enumerate(itertools.pairwise(segments)):
        ids[a:b] = i
    return ids[:, None] == ids[None, :]


class FrameBatchedVision(nn.Module):
    """Qwen2.5-VL's vision tower at ``gh x gw`` over any number of temporal groups:
    pixel_values (T * L, patch_dim) -> video_embeds (T * L / 4, D), the tower's output.

    Args:
        visual: the model's ``model.visual`` (its blocks, merger and patch embedding are used).
        grid_h, grid_w: the patch grid of one frame (H / 14, W / 14).
    """

    def __init__(self, visual: nn.Module, grid_h: int, grid_w: int) -> None:
        super().__init__()
        self.visual = visual
        self.length = grid_h * grid_w
        config: Any = visual.config
        self.unit = int(config.spatial_merge_size) ** 2
        structure = probe_group_structure(visual, grid_h, grid_w)
        self.patch_order: torch.Tensor
        self.unit_inverse: torch.Tensor
        self.cos: torch.Tensor
        self.sin: torch.Tensor
        device = next(visual.parameters()).device
        for name in ("patch_order", "unit_inverse", "cos", "sin"):
            self.register_buffer(name, getattr(structure, name).to(device), persistent=False)
        masks: dict[tuple[int, ...], torch.Tensor | None] = {}
        self.masks: list[torch.Tensor | None] = []
        for i, seg in enumerate(structure.segments):
            if seg not in masks:
                mask = _segment_mask(seg, self.length)
                if mask is not None:
                    self.register_buffer(f"mask_{i}", mask.to(device), persistent=False)
                    mask = getattr(self, f"mask_{i}")
                masks[seg] = mask
            self.masks.append(masks[seg])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
            apply_rotary_pos_emb_vision,
        )

        visual: Any = self.visual
        dtype = next(visual.parameters()).dtype
        x = visual.patch_embed(pixel_values.to(dtype))
        x = x.reshape(-1, self.length, x.shape[-1])[:, self.patch_order]  # (T, L, C)
        t, n, c = x.shape
        cos, sin = self.cos.to(dtype), self.sin.to(dtype)
        for blk, mask in zip(visual.blocks, self.masks, strict=True):
            heads = int(blk.attn.num_heads)
            qkv = blk.attn.qkv(blk.norm1(x)).reshape(t, n, 3, heads, c // heads)
            q, k, v = qkv.permute(2, 0, 1, 3, 4).unbind(0)  # (T, L, heads, hd)
            q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
            out = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
            )
            x = x + blk.attn.proj(out.transpose(1, 2).reshape(t, n, c))
            x = x + blk.mlp(blk.norm2(x))
        merged = visual.merger(x)  # (T * L / 4, D), window order within each group
        merged = merged.reshape(t, n // self.unit, -1)[:, self.unit_inverse]
        out_embeds: torch.Tensor = merged.reshape(t * (n // self.unit), -1)
        return out_embeds
