"""The frame record every stage works on, independent of ROS.

Conventions (REP 103 / REP 105):
- Images are in the camera *optical* frame: x right, y down, z forward.
- ``pose`` is the 4x4 camera-to-world transform (metres), mapping optical-frame points to
  the world (``map``/``odom``) frame: ``p_world = pose[:3, :3] @ p_cam + pose[:3, 3]``.
- Depth is float32 metres, registered to the colour image; 0 means "no measurement".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.camera_params import DEFAULT_CAMERA

#: default optical frame of the colour camera (the RealSense ROS wrapper's name)
DEFAULT_FRAME_ID = "camera_color_optical_frame"
#: default frame poses map into
DEFAULT_WORLD_FRAME_ID = "map"


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an image of ``width`` x ``height`` pixels (focal lengths in px)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def matrix(self) -> npt.NDArray[np.float64]:
        """3x3 camera matrix K."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    @classmethod
    def from_matrix(cls, k: npt.ArrayLike, width: int, height: int) -> CameraIntrinsics:
        """Build from a 3x3 (or flat 9-element) camera matrix."""
        m = np.asarray(k, dtype=np.float64).reshape(3, 3)
        return cls(float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2]), width, height)

    def scaled(self, width: int, height: int) -> CameraIntrinsics:
        """Intrinsics of the same camera after resizing the image to ``width`` x ``height``."""
        sx = width / self.width
        sy = height / self.height
        return CameraIntrinsics(
            self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height
        )


@dataclass(frozen=True, eq=False)
class Frame:
    """One validated camera frame.

    Attributes:
        stamp_ns: capture time of the colour image, nanoseconds since the epoch (ROS time).
        frame_id: optical frame of the colour camera (``header.frame_id``).
        rgb: (H, W, 3) uint8 RGB image.
        depth_m: (H, W) float32 depth in metres registered to ``rgb``, 0 = no measurement;
            None for colour-only frames.
        intrinsics: pinhole intrinsics of ``rgb``; None when no CameraInfo was paired.
        pose: (4, 4) float64 camera-to-world transform in metres; None when no pose was paired.
        world_frame_id: frame the pose maps into (e.g. ``map`` or ``odom``), "" if no pose.
        seq: ingestion sequence number assigned by the receiver (monotonic, for bookkeeping).
        camera: name of the camera that took it (an entry of the ``cameras`` parameter;
            ``DEFAULT_CAMERA``, "default", for the one camera of ``topics.*``). Frames of several
            cameras share one buffer; a frame is identified by ``(camera, stamp_ns)``.
    """

    stamp_ns: int
    frame_id: str
    rgb: npt.NDArray[np.uint8]
    depth_m: npt.NDArray[np.float32] | None = None
    intrinsics: CameraIntrinsics | None = None
    pose: npt.NDArray[np.float64] | None = None
    world_frame_id: str = ""
    seq: int = field(default=0)
    camera: str = DEFAULT_CAMERA

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def has_geometry(self) -> bool:
        """True when depth, intrinsics and pose are all present (it can be back-projected)."""
        return self.depth_m is not None and self.intrinsics is not None and self.pose is not None

    @property
    def nbytes(self) -> int:
        """Bytes held by the frame's arrays."""
        n = int(self.rgb.nbytes)
        if self.depth_m is not None:
            n += int(self.depth_m.nbytes)
        if self.pose is not None:
            n += int(self.pose.nbytes)
        return n
