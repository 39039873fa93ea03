"""One camera's view of the shared frame store (several cameras, one buffer).  Never imports
rclpy.

Each camera is ingested on its own (its own :class:`~spatial_mllm_ros.core.ingest.Ingestor`:
pairing queues, latched camera info, clock rules, counters) into the one buffer through a
:class:`CameraStore`, which names the camera on every frame (``Frame.camera``) and, for a
camera mounted on the robot (``camera.<name>.extrinsic``), turns the base pose its pose topic
carries into the camera's: ``pose = base_pose @ extrinsic``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.camera_params import CameraSettings
from spatial_mllm_ros.core.buffer import AddOutcome, SharedFrameStore
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.poses import matrix_to_quaternion, rigid_transform

__all__ = ["CameraStore", "LastPose"]


@dataclass(frozen=True)
class LastPose:
    """The pose of a camera's latest frame as it went to the store (for ``/diagnostics``: where
    the node puts each camera).

    Attributes:
        stamp_ns: the frame's stamp.
        pose: (4, 4) camera-to-world (a mounted camera's: base pose @ extrinsic).
        world_frame_id: the world frame.
    """

    stamp_ns: int
    pose: npt.NDArray[np.float64]
    world_frame_id: str

    def values(self) -> dict[str, str]:
        """``pose.stamp_ns``, ``pose.world_frame``, ``pose.position`` ("x y z", metres) and
        ``pose.orientation_xyzw`` ("qx qy qz qw") as diagnostics values."""
        q = matrix_to_quaternion(self.pose[:3, :3])
        return {"pose.stamp_ns": str(self.stamp_ns), "pose.world_frame": self.world_frame_id,
                "pose.position": " ".join(f"{v:.9g}" for v in self.pose[:3, 3]),
                "pose.orientation_xyzw": " ".join(f"{v:.9g}" for v in q)}


class CameraStore:
    """The shared :class:`FrameStore` as camera ``camera`` writes to it.

    ``clear`` (a new time base of this camera's streams: a clock jump, its bag played again)
    drops this camera's frames only: a camera whose clock lies affects only its own frames
    (issue 22 point 2), and the other cameras' frames stay in the shared store.
    """

    def __init__(self, store: SharedFrameStore, camera: CameraSettings) -> None:
        self.store = store
        self.camera = camera.name
        e = camera.extrinsic
        self.extrinsic: npt.NDArray[np.float64] | None = (
            None if e is None else rigid_transform(e.translation, e.rotation_xyzw))
        #: the pose of this camera's latest frame that had one
        self.last_pose: LastPose | None = None

    def add(self, frame: Frame) -> AddOutcome:
        """Offer ``frame`` as this camera's (its pose composed with the extrinsic)."""
        pose = frame.pose
        if pose is not None and self.extrinsic is not None:
            pose = pose @ self.extrinsic
        if pose is not None:
            self.last_pose = LastPose(frame.stamp_ns, pose, frame.world_frame_id)
        return self.store.add(dataclasses.replace(frame, camera=self.camera, pose=pose))

    def __len__(self) -> int:
        return len(self.store)

    def clear(self) -> None:
        """Drop this camera's frames from the shared store (see the class)."""
        self.store.clear_camera(self.camera)

    @property
    def nbytes(self) -> int:
        """Bytes held by the shared store's frames."""
        return self.store.nbytes
