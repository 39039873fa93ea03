"""A multi-camera rig on one moving base, in a synthetic room: several RGB-D cameras (front,
left, right by default) fixed on the base with their extrinsics, rendered at the same stamps.

The base frame follows REP 103 (x forward, y left, z up) at the walkthrough's eye position; it
moves along :func:`~spatial_mllm_ros.synthetic.trajectory.walkthrough_poses`' loop facing the
direction that loop's camera looks (levelled). Each camera's optical frame (x right, y down,
z forward) sits in the base frame at :data:`RIG_MOUNTS`' offset, yawed and pitched down 12
degrees; its pose is ``base_pose @ extrinsic``, as the node composes a camera's pose from the
robot's odometry and ``camera.<name>.extrinsic``. Frames carry their camera's name
(``Frame.camera``) and optical frame id (``<name>_color_optical_frame``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.camera_params import Extrinsic
from spatial_mllm_ros.core.frame import DEFAULT_WORLD_FRAME_ID, Frame
from spatial_mllm_ros.core.poses import matrix_to_quaternion, rigid_transform
from spatial_mllm_ros.synthetic.render import render_view
from spatial_mllm_ros.synthetic.scene import SceneLayout, generate_layout
from spatial_mllm_ros.synthetic.trajectory import look_pose, walkthrough_poses
from spatial_mllm_ros.synthetic.walkthrough import default_intrinsics, ground_truth_doc

__all__ = ["RIG_MOUNTS", "RigScene", "base_poses", "make_rig_walkthrough", "rig_extrinsic"]

Matrix = npt.NDArray[np.float64]

#: camera name -> (x, y, z offset in the base frame in metres, yaw in degrees, 0 = forward)
RIG_MOUNTS: dict[str, tuple[float, float, float, float]] = {
    "front": (0.10, 0.0, 0.0, 0.0),
    "left": (0.0, 0.10, 0.0, 90.0),
    "right": (0.0, -0.10, 0.0, -90.0),
}
_PITCH_DEG = -12.0


def rig_extrinsic(name: str) -> Extrinsic:
    """The optical frame of rig camera ``name`` in the base frame (see :data:`RIG_MOUNTS`).

    Raises:
        KeyError: ``name`` is not a rig camera.
    """
    x, y, z, yaw_deg = RIG_MOUNTS[name]
    yaw, pitch = np.deg2rad(yaw_deg), np.deg2rad(_PITCH_DEG)
    forward = [np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)]
    m = look_pose([x, y, z], forward)
    q = matrix_to_quaternion(m[:3, :3])
    return Extrinsic((x, y, z), (float(q[0]), float(q[1]), float(q[2]), float(q[3])))


def base_poses(layout: SceneLayout, n: int, seed: int, laps: float = 1.0) -> list[Matrix]:
    """``n`` (4, 4) base-to-world poses: the walkthrough's eye, facing where its camera looks,
    levelled (x forward, z up)."""
    out: list[Matrix] = []
    for cam in walkthrough_poses(layout.room, n, seed, laps=laps):
        fwd = np.array([cam[0, 2], cam[1, 2], 0.0])
        fwd /= np.linalg.norm(fwd)
        base = np.eye(4)
        base[:3, 0] = fwd
        base[:3, 1] = np.cross([0.0, 0.0, 1.0], fwd)
        base[:3, 2] = [0.0, 0.0, 1.0]
        base[:3, 3] = cam[:3, 3]
        out.append(base)
    return out


@dataclass
class RigScene:
    """A rendered rig walkthrough.

    Attributes:
        layout: the room.
        base: base-to-world pose per time step.
        extrinsics: camera name -> its optical frame in the base frame.
        frames: camera name -> its frames, one per time step (shared stamps).
        first_seen: instance id -> stamp of the first step any camera saw it (at least
            ``min_visible_pixels``, scaled to the image area as in ``make_walkthrough``).
        visibility: camera name -> per step {instance id: pixels} of the instances it saw
            (at least that many pixels).
        fps: the stamps' rate, steps per second.
    """

    layout: SceneLayout
    base: list[Matrix]
    extrinsics: dict[str, Extrinsic]
    frames: dict[str, list[Frame]]
    first_seen: dict[int, int]
    visibility: dict[str, list[dict[int, int]]] = field(default_factory=dict)
    fps: float = 5.0

    def first_seen_ns(self) -> dict[int, int]:
        """Stamp of the first step in which each seen instance is visible (any camera)."""
        return dict(self.first_seen)

    def ground_truth(self) -> dict[str, Any]:
        """``scene.json``: a one-camera scene's document (``SyntheticScene.ground_truth``)
        with, per step, ``visible`` = the instances any camera saw (pixels added up over the
        cameras) and ``cameras`` = {name: what that camera saw}; and ``cameras`` = {name:
        its ``frame_id`` and ``extrinsic`` (``translation`` m, ``rotation_xyzw``)}."""
        names = list(self.frames)
        steps = len(self.base)
        merged: list[dict[int, int]] = [{} for _ in range(steps)]
        for name in names:
            for step, vis in enumerate(self.visibility.get(name, [{}] * steps)):
                for iid, px in vis.items():
                    merged[step][iid] = merged[step].get(iid, 0) + px
        first = self.frames[names[0]] if names else []
        doc = ground_truth_doc(
            self.layout, self.fps, [f.stamp_ns for f in first], merged,
            first[0].frame_id if first else "",
            first[0].world_frame_id if first else DEFAULT_WORLD_FRAME_ID)
        for step, entry in enumerate(doc["frames"]):
            entry["cameras"] = {n: {str(k): v for k, v in self.visibility[n][step].items()}
                                for n in names}
        doc["cameras"] = {
            n: {"frame_id": self.frames[n][0].frame_id if self.frames[n] else "",
                "extrinsic": {"translation": list(self.extrinsics[n].translation),
                              "rotation_xyzw": list(self.extrinsics[n].rotation_xyzw)}}
            for n in names}
        return doc

    def all_frames(self) -> list[Frame]:
        """Every camera's frames in stamp order (a rig's stream as one node receives it)."""
        merged = [f for frames in self.frames.values() for f in frames]
        return sorted(merged, key=lambda f: (f.stamp_ns, list(self.frames).index(f.camera)))


def make_rig_walkthrough(
    seed: int,
    n_steps: int = 40,
    fps: float = 5.0,
    width: int = 640,
    height: int = 480,
    cameras: Sequence[str] = ("front", "left", "right"),
    laps: float = 1.0,
    start_ns: int = 0,
    min_visible_pixels: int = 50,
) -> RigScene:
    """Render the rig's cameras at ``n_steps`` stamps ``start_ns + i / fps`` along one loop
    of a random room (deterministic from ``seed``)."""
    layout = generate_layout(seed)
    k = default_intrinsics(width, height)
    bases = base_poses(layout, n_steps, seed, laps)
    extrinsics = {name: rig_extrinsic(name) for name in cameras}
    mounts = {name: rigid_transform(e.translation, e.rotation_xyzw)
              for name, e in extrinsics.items()}
    frames: dict[str, list[Frame]] = {name: [] for name in cameras}
    visibility: dict[str, list[dict[int, int]]] = {name: [] for name in cameras}
    first_seen: dict[int, int] = {}
    min_px = max(1, round(min_visible_pixels * (width * height) / (640 * 480)))
    for i, base in enumerate(bases):
        stamp = start_ns + round(i * 1e9 / fps)
        for c, name in enumerate(cameras):
            pose = base @ mounts[name]
            res = render_view(layout, k, pose)
            frames[name].append(Frame(
                stamp_ns=stamp, frame_id=f"{name}_color_optical_frame", rgb=res.rgb,
                depth_m=res.depth_m, intrinsics=k, pose=pose,
                world_frame_id=DEFAULT_WORLD_FRAME_ID, seq=i * len(cameras) + c, camera=name))
            ids, counts = np.unique(res.instance[res.instance > 0], return_counts=True)
            keep = counts >= min_px
            visibility[name].append({int(i): int(n) for i, n in zip(ids[keep], counts[keep],
                                                                     strict=True)})
            for iid in ids[keep]:
                first_seen.setdefault(int(iid), stamp)
    return RigScene(layout, bases, extrinsics, frames, first_seen, visibility, fps)
