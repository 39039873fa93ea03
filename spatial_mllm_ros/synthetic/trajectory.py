"""Camera walkthroughs: smooth loops through the free centre of a room.

The camera (optical frame: x right, y down, z forward) moves on an ellipse around the room
centre (radii 15 % of the room's width/length, inside the layout's keep-out area) at about
eye height, looking between outward and the direction of travel and slightly down, so one
loop sees every wall and the furniture along it.  Poses are 4x4 camera-to-world (metres).
:func:`interpolate_pose` moves the camera continuously between two poses.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.synthetic.scene import Room

_UP = np.array([0.0, 0.0, 1.0])


def look_pose(eye: npt.ArrayLike, forward: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Camera-to-world pose at ``eye`` looking along ``forward`` with world z up (no roll)."""
    f = np.asarray(forward, dtype=np.float64)
    f = f / np.linalg.norm(f)
    right = np.cross(f, _UP)
    right /= np.linalg.norm(right)
    down = np.cross(f, right)
    pose = np.eye(4)
    pose[:3, 0] = right
    pose[:3, 1] = down
    pose[:3, 2] = f
    pose[:3, 3] = np.asarray(eye, dtype=np.float64)
    return pose


def walkthrough_poses(
    room: Room,
    n_frames: int,
    seed: int = 0,
    laps: float = 1.0,
    eye_height_m: float = 1.4,
    pitch_deg: float = -12.0,
) -> list[npt.NDArray[np.float64]]:
    """``n_frames`` poses along a loop (deterministic from ``seed``: start angle, direction)."""
    rng = np.random.default_rng(seed + 7919)
    start = float(rng.uniform(0.0, 2.0 * np.pi))
    direction = 1.0 if rng.random() < 0.5 else -1.0
    look_offset = direction * float(rng.uniform(0.35, 0.6)) * np.pi / 2
    rx, ry = 0.15 * room.width_m, 0.15 * room.length_m
    c = room.center_xy
    pitch = np.deg2rad(pitch_deg)
    poses = []
    for i in range(n_frames):
        s = i / max(n_frames, 1)
        theta = start + direction * 2.0 * np.pi * laps * s
        eye = np.array(
            [
                c[0] + rx * np.cos(theta),
                c[1] + ry * np.sin(theta),
                eye_height_m + 0.05 * np.sin(4.0 * np.pi * laps * s),
            ]
        )
        yaw = theta + look_offset
        fwd = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
        poses.append(look_pose(eye, fwd))
    return poses


def interpolate_pose(
    pose_a: npt.ArrayLike, pose_b: npt.ArrayLike, weight: float
) -> npt.NDArray[np.float64]:
    """The camera-to-world pose a fraction ``weight`` of the way from ``pose_a`` to ``pose_b``
    (both (4, 4), metres): the position linearly, the rotation along the geodesic (constant
    angular velocity about one axis, ``R_a exp(weight log(R_a^T R_b))``).

    A synthetic camera moving like this between the poses of two consecutive frames has a
    continuous trajectory, so a pose message at any stamp between them can carry the true
    pose.  ``weight`` 0 gives ``pose_a`` exactly, 1 gives ``pose_b``; outside [0, 1] the
    same motion continues (before ``pose_a``, after ``pose_b``).
    """
    a = np.asarray(pose_a, dtype=np.float64)
    b = np.asarray(pose_b, dtype=np.float64)
    if weight == 0.0:
        return a.copy()
    rel, _ = cv2.Rodrigues(a[:3, :3].T @ b[:3, :3])
    step, _ = cv2.Rodrigues(rel * float(weight))
    out = np.eye(4)
    out[:3, :3] = a[:3, :3] @ step
    out[:3, 3] = (1.0 - weight) * a[:3, 3] + weight * b[:3, 3]
    return out
