"""Camera walkthroughs: smooth loops through the free centre of a room.

The camera (optical frame: x right, y down, z forward) moves on an ellipse around the room
centre (radii 15 % of the room's width/length, inside the layout's keep-out area) at about
eye height, looking between outward and the direction of travel and slightly down, so one
loop sees every wall and the furniture along it.  Poses are 4x4 camera-to-world (metres).
"""

from __future__ import annotations

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
