"""Camera and point geometry of VGGT predictions, for the sampler's predicted-geometry path.

Conventions (as in the released VGGT):
- extrinsics are world-to-camera (…, 3, 4) ``[R | t]`` in the OpenCV camera frame
  (x right, y down, z forward); frame 0 is the world (identity extrinsic);
- pose encoding ``absT_quaR_FoV`` (…, 9) = ``t`` (3), quaternion of ``R`` in XYZW order (4),
  vertical FoV, horizontal FoV (radians);
- intrinsics built from the FoVs have the principal point at the image centre (W/2, H/2);
- pixel (u, v) is the integer column/row index, unprojected as ``(u - cx) / fx * depth``.
Units are those of the scene normalisation learnt by VGGT (not metres).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from spatial_mllm_ros.core.frame import CameraIntrinsics
from spatial_mllm_ros.model.vggt.errors import VGGTInputError
from spatial_mllm_ros.sampling.predicted import PredictedGeometry

MIN_FOV_RAD = 1e-3
"""Smallest field of view (radians) :func:`vggt_geometry` accepts from the camera head."""


def quat_to_mat(quat: Tensor) -> Tensor:
    """Quaternions (…, 4) XYZW (any norm) -> rotation matrices (…, 3, 3)."""
    i, j, k, r = torch.unbind(quat, -1)
    two_s = 2.0 / (quat * quat).sum(-1)
    m = torch.stack(
        (
            1 - two_s * (j * j + k * k),
            two_s * (i * j - k * r),
            two_s * (i * k + j * r),
            two_s * (i * j + k * r),
            1 - two_s * (i * i + k * k),
            two_s * (j * k - i * r),
            two_s * (i * k - j * r),
            two_s * (j * k + i * r),
            1 - two_s * (i * i + j * j),
        ),
        -1,
    )
    return m.reshape((*quat.shape[:-1], 3, 3))


def mat_to_quat(rot: Tensor) -> Tensor:
    """Rotation matrices (…, 3, 3) -> unit quaternions (…, 4) XYZW with w >= 0.

    Picks the best-conditioned of the four algebraic candidates (largest |component|).
    """
    if rot.shape[-2:] != (3, 3):
        raise VGGTInputError(f"expected rotation matrices (..., 3, 3), got {tuple(rot.shape)}")
    m = rot.reshape((*rot.shape[:-2], 9))
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = torch.unbind(m, -1)
    # 4 * (w^2, x^2, y^2, z^2)
    sq = torch.stack(
        (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), -1
    ).clamp(min=0)
    candidates = torch.stack(
        (
            torch.stack((sq[..., 0], m21 - m12, m02 - m20, m10 - m01), -1),
            torch.stack((m21 - m12, sq[..., 1], m10 + m01, m02 + m20), -1),
            torch.stack((m02 - m20, m10 + m01, sq[..., 2], m12 + m21), -1),
            torch.stack((m10 - m01, m20 + m02, m21 + m12, sq[..., 3]), -1),
        ),
        -2,
    )  # row c is 4 * q_c * (w, x, y, z)
    best = sq.argmax(-1, keepdim=True)
    row = torch.gather(candidates, -2, best[..., None].expand(*best.shape[:-1], 1, 4)).squeeze(-2)
    wxyz = row / row.norm(dim=-1, keepdim=True)
    xyzw = torch.cat((wxyz[..., 1:], wxyz[..., :1]), -1)
    return torch.where(xyzw[..., 3:] < 0, -xyzw, xyzw)


def pose_encoding_to_extrinsics_intrinsics(
    pose_enc: Tensor, image_hw: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Pose encoding (…, 9) -> (extrinsics (…, 3, 4) world-to-camera, intrinsics (…, 3, 3))."""
    if pose_enc.shape[-1] != 9:
        raise VGGTInputError(f"pose encoding must end in 9 values, got {tuple(pose_enc.shape)}")
    h, w = image_hw
    rot = quat_to_mat(pose_enc[..., 3:7])
    extrinsics = torch.cat((rot, pose_enc[..., :3, None]), dim=-1)
    fy = (h / 2.0) / torch.tan(pose_enc[..., 7] / 2.0)
    fx = (w / 2.0) / torch.tan(pose_enc[..., 8] / 2.0)
    k = torch.zeros((*pose_enc.shape[:-1], 3, 3), dtype=pose_enc.dtype, device=pose_enc.device)
    k[..., 0, 0] = fx
    k[..., 1, 1] = fy
    k[..., 0, 2] = w / 2.0
    k[..., 1, 2] = h / 2.0
    k[..., 2, 2] = 1.0
    return extrinsics, k


def extrinsics_intrinsics_to_pose_encoding(
    extrinsics: Tensor, intrinsics: Tensor, image_hw: tuple[int, int]
) -> Tensor:
    """World-to-camera extrinsics (…, 3, 4) and intrinsics (…, 3, 3) -> pose encoding (…, 9)."""
    h, w = image_hw
    quat = mat_to_quat(extrinsics[..., :3, :3])
    fov_h = 2 * torch.atan((h / 2.0) / intrinsics[..., 1, 1])
    fov_w = 2 * torch.atan((w / 2.0) / intrinsics[..., 0, 0])
    return torch.cat((extrinsics[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]), dim=-1)


def invert_se3(transform: Tensor) -> Tensor:
    """Rigid transforms (…, 3, 4) or (…, 4, 4) -> inverse (…, 4, 4): ``[R^T | -R^T t]``."""
    rot = transform[..., :3, :3]
    t = transform[..., :3, 3:]
    rot_t = rot.transpose(-1, -2)
    out = torch.zeros((*transform.shape[:-2], 4, 4), dtype=transform.dtype, device=transform.device)
    out[..., :3, :3] = rot_t
    out[..., :3, 3:] = -rot_t @ t
    out[..., 3, 3] = 1.0
    return out


def depth_to_camera_points(depth: Tensor, intrinsics: Tensor) -> Tensor:
    """Depth (…, H, W) and intrinsics (…, 3, 3) -> camera-frame points (…, H, W, 3)."""
    h, w = depth.shape[-2:]
    u = torch.arange(w, dtype=depth.dtype, device=depth.device)
    v = torch.arange(h, dtype=depth.dtype, device=depth.device)
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    fx = intrinsics[..., 0, 0, None, None]
    fy = intrinsics[..., 1, 1, None, None]
    cx = intrinsics[..., 0, 2, None, None]
    cy = intrinsics[..., 1, 2, None, None]
    return torch.stack(((uu - cx) / fx * depth, (vv - cy) / fy * depth, depth), dim=-1)


def depth_to_world_points(depth: Tensor, extrinsics: Tensor, intrinsics: Tensor) -> Tensor:
    """Unproject depth with cameras into the world frame.

    Args:
        depth: (…, H, W) or (…, H, W, 1).
        extrinsics: (…, 3, 4) world-to-camera.
        intrinsics: (…, 3, 3).
    Returns:
        (…, H, W, 3) world points: ``R^T (p_cam - t)``.
    """
    if depth.ndim == intrinsics.ndim + 1 and depth.shape[-1] == 1:
        depth = depth[..., 0]
    cam = depth_to_camera_points(depth, intrinsics)
    c2w = invert_se3(extrinsics)
    rot = c2w[..., None, None, :3, :3]
    t = c2w[..., None, None, :3, 3]
    return (rot @ cam[..., None]).squeeze(-1) + t




def vggt_geometry(
    output: Mapping[str, object],
    source: Literal["depth", "points"] = "depth",
    batch_index: int = 0,
) -> list[PredictedGeometry]:
    """Per-frame geometry from a :class:`~spatial_mllm_ros.model.vggt.model.VGGTOutput`, as the
    sampler's :class:`~spatial_mllm_ros.sampling.predicted.PredictedGeometry`: world points
    (H, W, 3) float32 in frame 0's camera frame, confidence (H, W) float32, the (4, 4) float64
    camera-to-world pose of each optical frame and pinhole intrinsics at the model input
    resolution (W x H).

    Args:
        output: needs ``pose_enc`` (B, S, 9) and either ``depth`` (B, S, H, W, 1) +
            ``depth_conf`` (``source="depth"``: depth unprojected with the predicted cameras,
            VGGT's more accurate route) or ``world_points`` (B, S, H, W, 3) +
            ``world_points_conf`` (``source="points"``: the point head).
        batch_index: which clip of the batch.
    """
    pose_enc = _tensor(output, "pose_enc")[batch_index].detach().double().cpu()
    if source == "depth":
        dense = _tensor(output, "depth")[batch_index].detach().double().cpu()
        conf = _tensor(output, "depth_conf")[batch_index].detach().float().cpu()
    elif source == "points":
        dense = _tensor(output, "world_points")[batch_index].detach().double().cpu()
        conf = _tensor(output, "world_points_conf")[batch_index].detach().float().cpu()
    else:
        raise VGGTInputError(f"unknown geometry source {source!r}; use 'depth' or 'points'")
    h, w = int(dense.shape[1]), int(dense.shape[2])
    # A degenerate (ReLU-zeroed) FoV would give infinite focal lengths; keep them finite.
    fov = pose_enc[..., 7:].clamp(MIN_FOV_RAD, np.pi - MIN_FOV_RAD)
    pose_enc = torch.cat((pose_enc[..., :7], fov), dim=-1)
    extrinsics, intrinsics = pose_encoding_to_extrinsics_intrinsics(pose_enc, (h, w))
    points = (
        depth_to_world_points(dense[..., 0], extrinsics, intrinsics) if source == "depth" else dense
    )
    c2w = invert_se3(extrinsics).numpy()
    frames: list[PredictedGeometry] = []
    for i in range(pose_enc.shape[0]):
        k = intrinsics[i].numpy()
        frames.append(
            PredictedGeometry(
                world_points=np.ascontiguousarray(points[i].numpy(), dtype=np.float32),
                confidence=np.ascontiguousarray(conf[i].numpy(), dtype=np.float32),
                camera_to_world=np.asarray(c2w[i], dtype=np.float64),
                intrinsics=CameraIntrinsics.from_matrix(k, width=w, height=h),
            )
        )
    return frames


def _tensor(output: Mapping[str, object], key: str) -> Tensor:
    value = output.get(key)
    if not isinstance(value, Tensor):
        raise VGGTInputError(f"VGGT output has no tensor {key!r} (is the head enabled?)")
    return value
