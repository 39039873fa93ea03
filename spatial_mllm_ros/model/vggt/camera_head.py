"""Camera head: iterative refinement of the 9-d pose encoding from the camera tokens.

Pose encoding ``absT_quaR_FoV`` (B, S, 9): translation (3), quaternion XYZW (4), vertical and
horizontal field of view in radians (2), of the world-to-camera transform (OpenCV convention,
frame 0 = world).  Translation and quaternion are linear, the FoVs go through ReLU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spatial_mllm_ros.model.vggt.layers import Block, Mlp

POSE_ENCODING_DIM = 9

TokenLayers = Sequence[Tensor] | Mapping[int, Tensor]


class CameraHead(nn.Module):
    """Reads token 0 of every frame of layer ``layer_idx`` (B, S, 2C) and returns one pose
    encoding (B, S, 9) per refinement iteration.

    Refinement: the current estimate is embedded, modulates the normed camera tokens
    (adaptive LayerNorm: shift, scale, gate), passes ``trunk`` (blocks attending across frames)
    and ``pose_branch`` predicts an additive update.
    """

    def __init__(
        self,
        dim_in: int,
        layer_idx: int,
        trunk_depth: int = 4,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        init_values: float = 0.01,
        num_iterations: int = 4,
    ) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_iterations = num_iterations
        self.trunk = nn.Sequential(
            *(
                Block(dim_in, num_heads, mlp_ratio, init_values=init_values)
                for _ in range(trunk_depth)
            )
        )
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_ENCODING_DIM))
        self.embed_pose = nn.Linear(POSE_ENCODING_DIM, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, POSE_ENCODING_DIM)

    @staticmethod
    def activate(raw: Tensor) -> Tensor:
        """Raw (…, 9) -> pose encoding: T and quaternion linear, FoV through ReLU."""
        return torch.cat((raw[..., :7], F.relu(raw[..., 7:])), dim=-1)

    def forward(self, token_layers: TokenLayers, num_iterations: int | None = None) -> list[Tensor]:
        """token_layers[layer_idx]: (B, S, P, 2C) -> list of ``num_iterations`` (B, S, 9)."""
        tokens = self.token_norm(token_layers[self.layer_idx][:, :, 0])
        b, s, _ = tokens.shape
        raw: Tensor | None = None
        outputs: list[Tensor] = []
        for _ in range(num_iterations or self.num_iterations):
            if raw is None:
                cond = self.embed_pose(self.empty_pose_tokens.expand(b, s, -1))
            else:
                raw = raw.detach()
                cond = self.embed_pose(raw)
            shift, scale, gate = self.poseLN_modulation(cond).chunk(3, dim=-1)
            x = gate * (self.adaln_norm(tokens) * (1 + scale) + shift) + tokens
            delta = self.pose_branch(self.trunk_norm(self.trunk(x)))
            raw = delta if raw is None else raw + delta
            outputs.append(self.activate(raw))
        return outputs
