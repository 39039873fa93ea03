"""Geometry for space-aware frame sampling: back-projection and voxel keys.

Conventions follow :mod:`spatial_mllm_ros.core.frame`: depth is float32 metres (0 = invalid),
points are back-projected in the camera *optical* frame (x right, y down, z forward) and mapped
to the world with the 4x4 camera-to-world ``pose``: ``p_world = R @ p_cam + t``.

Voxel keys
----------
A world point ``p`` falls in the integer cell ``c = floor((p - origin) / voxel_size)``.  Each
axis of ``c`` is offset by ``2**(VOXEL_AXIS_BITS - 1)`` and packed into 21 bits of a
non-negative int64 (``x << 42 | y << 21 | z``).  The packing is a bijection for cells with
``-2**20 <= c < 2**20`` on every axis, i.e. within ``+-2**20 * voxel_size`` of ``origin``
(+-104.8 km at 0.1 m, +-5.2 km at 5 mm), so keys **cannot collide** inside those bounds;
points outside them are dropped (never wrapped).  Keys sort lexicographically by (x, y, z) cell.

Voxel size (paper vs. online)
-----------------------------
Spatial-MLLM (Wu et al., 2025, Sec. 3.3) voxelizes the predicted points of all candidate frames
with an edge of ``(shortest side of the points' bounding box) / 20`` -- a *scene-adaptive* edge,
computed once for an offline video.  An online stream has no final bounding box, and changing
the edge would invalidate every stored key, so the online buffer uses a **fixed** edge per buffer
(``BufferConfig.voxel_size_m``, 0.1 m by default, which is about 1/20 of a room's shortest side).
:func:`paper_voxel_size` implements the paper's rule and :func:`select_voxel_size` snaps it to a
fixed candidate set for offline selection (so that results are reproducible across videos).

Predicted geometry
------------------
For colour-only cameras, the spatial encoder (VGGT heads) predicts per-pixel world points
(H, W, 3) and a confidence (H, W).  As in the paper's public code, only points with confidence
``> 0.1`` *and* ``>=`` the 50th percentile of *all candidate frames'* confidences together are
kept (:func:`spatial_mllm_ros.sampling.predicted.predicted_voxel_sets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.errors import CoreError
from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame

VOXEL_AXIS_BITS = 21
"""Bits per axis in a packed voxel key."""
VOXEL_AXIS_OFFSET = 1 << (VOXEL_AXIS_BITS - 1)
"""Offset added to signed cell indices; valid cells are ``[-2**20, 2**20)`` per axis."""
_AXIS_MASK = (1 << VOXEL_AXIS_BITS) - 1

PAPER_CONF_THRESHOLD = 0.1
PAPER_CONF_PERCENTILE = 50.0
PAPER_BBOX_DIVISOR = 20.0
DEFAULT_VOXEL_CANDIDATES_M: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)

FloatArray = npt.NDArray[np.float64]
KeyArray = npt.NDArray[np.int64]


class GeometryError(CoreError):
    """Invalid geometry input (shapes, intrinsics, poses, voxel sizes)."""


@lru_cache(maxsize=32)
def _pixel_rays(intrinsics: CameraIntrinsics, stride: int) -> tuple[FloatArray, FloatArray]:
    """Normalized ray components (x/z, y/z) of the strided pixel grid, shapes (h', w') each."""
    us = np.arange(0, intrinsics.width, stride, dtype=np.float64)
    vs = np.arange(0, intrinsics.height, stride, dtype=np.float64)
    rx = (us - intrinsics.cx) / intrinsics.fx
    ry = (vs - intrinsics.cy) / intrinsics.fy
    gx, gy = np.meshgrid(rx, ry)
    gx.setflags(write=False)
    gy.setflags(write=False)
    return gx, gy


def _check_pose(pose: npt.ArrayLike) -> FloatArray:
    p = np.asarray(pose, dtype=np.float64)
    if p.shape != (4, 4) or not np.all(np.isfinite(p)):
        raise GeometryError(f"pose must be a finite 4x4 matrix, got shape {p.shape}")
    return p


def backproject_depth(
    depth_m: npt.NDArray[np.floating],
    intrinsics: CameraIntrinsics,
    pose: npt.ArrayLike | None = None,
    stride: int = 1,
    max_depth_m: float = float("inf"),
) -> FloatArray:
    """Back-project valid depth pixels to 3D points.

    Args:
        depth_m: (H, W) depth in metres; 0, negative or non-finite values are invalid.
        intrinsics: pinhole intrinsics of the depth image (W x H must match).
        pose: (4, 4) camera-to-world transform; None returns camera optical-frame points.
        stride: use every ``stride``-th pixel in both directions (pixel (0, 0) included).
        max_depth_m: depths above this are ignored.

    Returns:
        (N, 3) float64 points (world metres if ``pose`` is given), row-major pixel order.
    """
    if depth_m.ndim != 2:
        raise GeometryError(f"depth must be (H, W), got shape {depth_m.shape}")
    if depth_m.shape != (intrinsics.height, intrinsics.width):
        raise GeometryError(
            f"depth shape {depth_m.shape} does not match intrinsics "
            f"{intrinsics.height}x{intrinsics.width}"
        )
    if stride < 1:
        raise GeometryError(f"stride must be >= 1, got {stride}")
    gx, gy = _pixel_rays(intrinsics, stride)
    z = np.asarray(depth_m[::stride, ::stride], dtype=np.float64)
    valid = (z > 0.0) & (z <= max_depth_m)  # NaN compares False: dropped
    zv = z[valid]
    cam = np.empty((zv.shape[0], 3), dtype=np.float64)
    cam[:, 0] = gx[valid] * zv
    cam[:, 1] = gy[valid] * zv
    cam[:, 2] = zv
    if pose is None:
        return cam
    p = _check_pose(pose)
    return transform_points(cam, p)


def transform_points(points: FloatArray, pose: npt.ArrayLike) -> FloatArray:
    """Apply a 4x4 rigid transform to (N, 3) points."""
    p = _check_pose(pose)
    out: FloatArray = points @ p[:3, :3].T + p[:3, 3]
    return out


def project_points(
    points_world: FloatArray, intrinsics: CameraIntrinsics, pose: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Project world points into a camera.

    Returns:
        (uv, z): (N, 2) pixel coordinates (u right, v down) and (N,) optical-frame depth (m).
    """
    p = _check_pose(pose)
    r = p[:3, :3]
    cam = (points_world - p[:3, 3]) @ r  # R^T (p - t)
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intrinsics.fx * cam[:, 0] / z + intrinsics.cx
        v = intrinsics.fy * cam[:, 1] / z + intrinsics.cy
    return np.stack([u, v], axis=1), z


def voxel_keys(
    points: npt.NDArray[np.floating],
    voxel_size: float,
    origin: Sequence[float] | npt.NDArray[np.floating] = (0.0, 0.0, 0.0),
) -> KeyArray:
    """Sorted unique int64 voxel keys of (N, 3) points (see module docstring for the packing).

    Points outside ``origin +- 2**20 * voxel_size`` (or non-finite) are dropped.
    """
    if not voxel_size > 0.0 or not np.isfinite(voxel_size):
        raise GeometryError(f"voxel_size must be a positive finite number, got {voxel_size}")
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise GeometryError(f"points must be (N, 3), got shape {pts.shape}")
    if pts.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    cells = np.floor((pts - np.asarray(origin, dtype=np.float64)) * (1.0 / voxel_size))
    cells += VOXEL_AXIS_OFFSET
    inside = np.all((cells >= 0) & (cells <= _AXIS_MASK), axis=1)  # NaN -> False
    if not inside.all():
        cells = cells[inside]
    c = cells.astype(np.int64)
    keys = (c[:, 0] << (2 * VOXEL_AXIS_BITS)) | (c[:, 1] << VOXEL_AXIS_BITS) | c[:, 2]
    return np.unique(keys)


def decode_voxel_keys(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Inverse of the packing: (N,) keys -> (N, 3) signed integer cell indices."""
    k = np.asarray(keys, dtype=np.int64)
    cells = np.stack(
        [
            (k >> (2 * VOXEL_AXIS_BITS)) & _AXIS_MASK,
            (k >> VOXEL_AXIS_BITS) & _AXIS_MASK,
            k & _AXIS_MASK,
        ],
        axis=1,
    )
    out: npt.NDArray[np.int64] = cells - VOXEL_AXIS_OFFSET
    return out


def voxel_centers(
    keys: npt.NDArray[np.int64],
    voxel_size: float,
    origin: Sequence[float] | npt.NDArray[np.floating] = (0.0, 0.0, 0.0),
) -> FloatArray:
    """World-frame centres (N, 3) of voxel keys."""
    cells = decode_voxel_keys(keys).astype(np.float64)
    out: FloatArray = (cells + 0.5) * voxel_size + np.asarray(origin, dtype=np.float64)
    return out


def frame_voxel_keys(
    frame: Frame, voxel_size: float, stride: int = 8, max_depth_m: float = 10.0
) -> KeyArray | None:
    """Voxel set of a frame from its sensor depth and pose; None for frames without geometry."""
    if frame.depth_m is None or frame.intrinsics is None or frame.pose is None:
        return None
    pts = backproject_depth(frame.depth_m, frame.intrinsics, frame.pose, stride, max_depth_m)
    return voxel_keys(pts, voxel_size)


def paper_voxel_size(points: npt.NDArray[np.floating]) -> float:
    """The paper's scene-adaptive edge: shortest side of the points' bounding box / 20."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] == 0:
        raise GeometryError("paper_voxel_size needs a non-empty (N, 3) point array")
    side = float(np.min(pts.max(axis=0) - pts.min(axis=0)))
    if side <= 0.0:
        raise GeometryError("points are degenerate (flat bounding box); cannot derive an edge")
    return side / PAPER_BBOX_DIVISOR


def select_voxel_size(
    point_sets: Sequence[npt.NDArray[np.floating]],
    candidates: Sequence[float] = DEFAULT_VOXEL_CANDIDATES_M,
) -> float:
    """Offline selection: the paper's edge over all frames' points, snapped to ``candidates``.

    Snapping is in log space (nearest ratio), so a 0.14 m edge picks 0.1 m over 0.2 m.
    """
    non_empty = [np.asarray(p, dtype=np.float64) for p in point_sets if len(p)]
    if not non_empty or not candidates:
        raise GeometryError("select_voxel_size needs points and candidates")
    edge = paper_voxel_size(np.concatenate(non_empty, axis=0))
    cand = np.asarray(sorted(candidates), dtype=np.float64)
    return float(cand[int(np.argmin(np.abs(np.log(cand / edge))))])
