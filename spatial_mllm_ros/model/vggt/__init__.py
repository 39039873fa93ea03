"""VGGT geometry model (pure PyTorch): spatial encoder of Spatial-MLLM and the geometry heads
used by the sampler for cameras without depth or pose.

Public API::

    config = VGGTConfig.vggt_1b()          # or VGGTConfig.tiny()
    model = VGGT(config).eval()
    layers, patch_start_idx = model.aggregator(images)        # images (B, S, 3, H, W) in [0, 1]
    kept, patch_start_idx = model.aggregator.forward_layers(images, [-1])
    out = model(images)                     # VGGTOutput: pose_enc, depth, world_points, ...
    frames = vggt_geometry(out)             # per frame: points, confidence, pose, intrinsics
"""

from __future__ import annotations

from spatial_mllm_ros.model.vggt.aggregator import Aggregator
from spatial_mllm_ros.model.vggt.config import VGGTConfig
from spatial_mllm_ros.model.vggt.errors import VGGTConfigError, VGGTError, VGGTInputError
from spatial_mllm_ros.model.vggt.geometry import (
    depth_to_world_points,
    extrinsics_intrinsics_to_pose_encoding,
    pose_encoding_to_extrinsics_intrinsics,
    vggt_geometry,
)
from spatial_mllm_ros.model.vggt.model import VGGT, VGGTOutput, vggt_layout

__all__ = [
    "VGGT",
    "Aggregator",
    "VGGTConfig",
    "VGGTConfigError",
    "VGGTError",
    "VGGTInputError",
    "VGGTOutput",
    "depth_to_world_points",
    "extrinsics_intrinsics_to_pose_encoding",
    "pose_encoding_to_extrinsics_intrinsics",
    "vggt_geometry",
    "vggt_layout",
]
