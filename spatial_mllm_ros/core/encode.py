"""Frames -> ROS 2 camera messages: the one encoder, for any message library.  Never imports rclpy.

:mod:`spatial_mllm_ros.core.convert` decodes messages (duck-typed); this module goes the other
way.  It fills messages built by an injected :class:`MessageFactory`, so the same code builds
rclpy messages for publishers (``spatial_mllm_ros.ros.conversions.ENCODER``), ``rosbags``
messages for the bag writer (``spatial_mllm_ros.bags``) and plain namespace objects for tests
and benchmarks (:func:`namespace_factory`).  Every message is built with all its fields (as
``rosbags`` requires), nested messages included.

Conventions (what :mod:`~spatial_mllm_ros.core.convert` reads back):
    * colour ``Image``: ``rgb8`` (default) or ``bgr8``, tight ``step``, little-endian flag 0;
    * ``CompressedImage``: jpeg or png of the BGR image, ``format`` as image_transport's
      compressed plugin writes it for a colour source (:func:`compressed_format`):
      ``"rgb8; jpeg compressed bgr8"`` / ``"rgb8; png compressed bgr8"``;
    * depth ``Image``: ``16UC1`` millimetres (:func:`depth_to_mm`: 0 = no measurement, and
      NaN/Inf/negative metres become 0) or ``32FC1`` metres;
    * ``CameraInfo``: a rectified pinhole camera, ``plumb_bob`` with zero distortion,
      R = I, P = [K | 0];
    * poses: the camera optical frame in the world frame, the rotation as a unit quaternion
      with w >= 0 (:func:`rotation_to_quaternion`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.errors import EncodeError
from spatial_mllm_ros.core.frame import CameraIntrinsics

__all__ = [
    "COLOUR_OUT_ENCODINGS",
    "DEPTH_OUT_ENCODINGS",
    "CompressedFormat",
    "MessageEncoder",
    "MessageFactory",
    "compressed_format",
    "depth_from_mm",
    "depth_to_mm",
    "namespace_factory",
    "rotation_to_quaternion",
]

#: colour encodings :meth:`MessageEncoder.colour_image` writes
COLOUR_OUT_ENCODINGS = ("rgb8", "bgr8")
#: depth encodings :meth:`MessageEncoder.depth_image` writes
DEPTH_OUT_ENCODINGS = ("16UC1", "32FC1")

CompressedFormat = Literal["jpeg", "png"]

_EXT: dict[str, str] = {"jpeg": ".jpg", "png": ".png"}


def _identity(values: npt.NDArray[Any]) -> Any:
    return values


@dataclass(frozen=True)
class MessageFactory:
    """How one message library builds messages.

    Attributes:
        message_class: ROS 2 type name (``"sensor_msgs/msg/Image"``) -> a callable taking the
            message fields as keyword arguments (a message class).
        sequence: value for a variable-length primitive array field (``uint8[] data``,
            ``float64[] d``) from a 1-D numpy array of that field's dtype.  Fixed-size arrays
            (``k``, ``covariance``) are always passed as numpy arrays.
    """

    message_class: Callable[[str], Callable[..., Any]]
    sequence: Callable[[npt.NDArray[Any]], Any] = _identity


def namespace_factory() -> MessageFactory:
    """A factory of :class:`types.SimpleNamespace` messages (fields only, numpy arrays).

    For code without a message library: tests, benchmarks, duck-typed stand-ins.
    """
    return MessageFactory(message_class=lambda _msgtype: SimpleNamespace)


# --------------------------------------------------------------------------- pure helpers
def depth_to_mm(depth_m: npt.NDArray[np.floating]) -> npt.NDArray[np.uint16]:
    """(H, W) metres -> (H, W) uint16 millimetres (rounded; 0, NaN, Inf and negative give 0;
    clipped at 65.535 m): the ``16UC1`` and on-disk depth encoding."""
    d = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    d = np.where(d > 0, d, 0.0)
    return np.clip(np.rint(d * 1000.0), 0, 65535).astype(np.uint16)


def depth_from_mm(depth_mm: npt.NDArray[np.integer]) -> npt.NDArray[np.float32]:
    """(H, W) uint16 millimetres -> (H, W) float32 metres (0 stays 0)."""
    return (np.asarray(depth_mm, dtype=np.float32) * np.float32(0.001)).astype(np.float32)


def compressed_format(fmt: CompressedFormat) -> str:
    """``CompressedImage.format`` of an RGB frame compressed as ``fmt`` (BGR data inside)."""
    if fmt not in _EXT:
        raise EncodeError(f"unsupported compressed format {fmt!r}; expected jpeg or png")
    return f"rgb8; {fmt} compressed bgr8"


def rotation_to_quaternion(r: npt.ArrayLike) -> tuple[float, float, float, float]:
    """(3, 3) rotation matrix -> unit quaternion (x, y, z, w), normalised so that w >= 0.

    ``q`` and ``-q`` are the same rotation; returning the one with w >= 0 makes the result
    unique (up to w = 0) and deterministic.  Shepperd's method: the branch is chosen by the
    largest of the trace and the diagonal, so 180-degree rotations are exact.
    """
    m = np.asarray(r, dtype=np.float64).reshape(3, 3)
    tr = float(np.trace(m))
    if tr > 0.0:
        s = math.sqrt(tr + 1.0) * 2.0
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2.0
        q = (0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2.0
        q = ((m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2.0
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s)
    arr = np.asarray(q, dtype=np.float64)
    arr /= np.linalg.norm(arr)
    if arr[3] < 0:
        arr = -arr
    return float(arr[0]), float(arr[1]), float(arr[2]), float(arr[3])


# --------------------------------------------------------------------------- encoder
#: the fields besides ``header`` of the image message types
#: (:meth:`MessageEncoder.restamped_image`)
_IMAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "sensor_msgs/msg/Image": ("height", "width", "encoding", "is_bigendian", "step", "data"),
    "sensor_msgs/msg/CompressedImage": ("format", "data"),
}


@dataclass
class MessageEncoder:
    """Builds camera messages with one :class:`MessageFactory`.

    Stamps are integer nanoseconds since the epoch; ``frame_id`` is the colour camera's optical
    frame, ``world_frame_id`` the frame poses map into.  Raises :class:`EncodeError` for an
    unsupported encoding or a failed compression.
    """

    factory: MessageFactory
    _classes: dict[str, Callable[..., Any]] = field(default_factory=dict, init=False, repr=False)

    def new(self, msgtype: str, **fields: Any) -> Any:
        """A ``msgtype`` message (``"pkg/msg/Name"``) with ``fields``."""
        cls = self._classes.get(msgtype)
        if cls is None:
            cls = self._classes[msgtype] = self.factory.message_class(msgtype)
        return cls(**fields)

    def _bytes(self, pixels: npt.NDArray[Any]) -> Any:
        flat = np.ascontiguousarray(pixels).reshape(-1).view(np.uint8)
        return self.factory.sequence(flat)

    # ------------------------------------------------------------- headers
    def time(self, stamp_ns: int) -> Any:
        """``builtin_interfaces/Time`` of ``stamp_ns``."""
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self.new("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        """``std_msgs/Header``."""
        return self.new("std_msgs/msg/Header", stamp=self.time(stamp_ns), frame_id=frame_id)

    # -------------------------------------------------------------- images
    def image(
        self, stamp_ns: int, frame_id: str, pixels: npt.NDArray[Any], encoding: str, step: int
    ) -> Any:
        """``sensor_msgs/Image`` of (H, W[, C]) little-endian ``pixels`` as given."""
        h, w = int(pixels.shape[0]), int(pixels.shape[1])
        return self.new(
            "sensor_msgs/msg/Image", header=self.header(stamp_ns, frame_id), height=h, width=w,
            encoding=encoding, is_bigendian=0, step=step, data=self._bytes(pixels),
        )

    def colour_image(
        self, rgb: npt.NDArray[np.uint8], stamp_ns: int, frame_id: str, encoding: str = "rgb8"
    ) -> Any:
        """(H, W, 3) uint8 RGB -> ``sensor_msgs/Image`` in ``encoding`` (rgb8 or bgr8)."""
        pix: npt.NDArray[Any]
        if encoding == "rgb8":
            pix = np.ascontiguousarray(rgb, dtype=np.uint8)
        elif encoding == "bgr8":
            pix = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR)
        else:
            raise EncodeError(f"unsupported colour encoding {encoding!r}; expected rgb8 or bgr8")
        return self.image(stamp_ns, frame_id, pix, encoding, 3 * int(rgb.shape[1]))

    def depth_image(
        self, depth_m: npt.NDArray[np.floating], stamp_ns: int, frame_id: str,
        encoding: str = "16UC1",
    ) -> Any:
        """(H, W) metres (0 = none) -> ``sensor_msgs/Image``: 16UC1 mm or 32FC1 m."""
        pix: npt.NDArray[Any]
        if encoding == "16UC1":
            pix = depth_to_mm(depth_m).astype("<u2")
        elif encoding == "32FC1":
            pix = np.asarray(depth_m).astype("<f4")
        else:
            raise EncodeError(f"unsupported depth encoding {encoding!r}; expected 16UC1 or 32FC1")
        return self.image(stamp_ns, frame_id, pix, encoding, int(pix.shape[1]) * pix.itemsize)

    def restamped_image(self, msgtype: str, msg: Any, stamp_ns: int) -> Any:
        """A new ``msgtype`` image message (``sensor_msgs/msg/Image`` or
        ``sensor_msgs/msg/CompressedImage``) with ``msg``'s fields and a header stamped
        ``stamp_ns``; the pixel payload is ``msg``'s, not encoded again (a stream replaying the
        same views encodes each once): namespace and rosbags messages share it, an rclpy
        message copies it once (its ``uint8[]`` setter makes a new ``array.array``)."""
        names = _IMAGE_FIELDS.get(msgtype)
        if names is None:
            raise EncodeError(f"not an image message type: {msgtype!r}")
        fields = {name: getattr(msg, name) for name in names}
        return self.new(msgtype, header=self.header(stamp_ns, msg.header.frame_id), **fields)

    def compressed_image(
        self, rgb: npt.NDArray[np.uint8], stamp_ns: int, frame_id: str,
        fmt: CompressedFormat = "jpeg", jpeg_quality: int = 90,
    ) -> Any:
        """(H, W, 3) uint8 RGB -> ``sensor_msgs/CompressedImage`` (:func:`compressed_format`)."""
        text = compressed_format(fmt)
        bgr = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if fmt == "jpeg" else []
        ok, buf = cv2.imencode(_EXT[fmt], bgr, params)
        if not ok:
            raise EncodeError(f"cannot encode a {fmt} image")
        return self.new(
            "sensor_msgs/msg/CompressedImage", header=self.header(stamp_ns, frame_id),
            format=text, data=self._bytes(np.asarray(buf, dtype=np.uint8)),
        )

    # ---------------------------------------------------------- intrinsics
    def camera_info(self, intr: CameraIntrinsics, stamp_ns: int, frame_id: str) -> Any:
        """Pinhole intrinsics -> ``sensor_msgs/CameraInfo`` (no distortion, P = [K | 0])."""
        k = intr.matrix
        p = np.zeros((3, 4), dtype=np.float64)
        p[:, :3] = k
        roi = self.new(
            "sensor_msgs/msg/RegionOfInterest",
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False,
        )
        return self.new(
            "sensor_msgs/msg/CameraInfo", header=self.header(stamp_ns, frame_id),
            height=int(intr.height), width=int(intr.width), distortion_model="plumb_bob",
            d=self.factory.sequence(np.zeros(5, dtype=np.float64)), k=k.reshape(-1),
            r=np.eye(3, dtype=np.float64).reshape(-1), p=p.reshape(-1),
            binning_x=0, binning_y=0, roi=roi,
        )

    # --------------------------------------------------------------- poses
    def pose(self, cam_to_world: npt.NDArray[np.float64]) -> Any:
        """(4, 4) transform (metres) -> ``geometry_msgs/Pose``."""
        x, y, z, w = rotation_to_quaternion(cam_to_world[:3, :3])
        t = cam_to_world[:3, 3]
        return self.new(
            "geometry_msgs/msg/Pose",
            position=self.new("geometry_msgs/msg/Point", x=float(t[0]), y=float(t[1]),
                              z=float(t[2])),
            orientation=self.new("geometry_msgs/msg/Quaternion", x=x, y=y, z=z, w=w),
        )

    def pose_stamped(
        self, cam_to_world: npt.NDArray[np.float64], stamp_ns: int, world_frame_id: str
    ) -> Any:
        """(4, 4) camera-to-world -> ``geometry_msgs/PoseStamped`` in ``world_frame_id``."""
        return self.new(
            "geometry_msgs/msg/PoseStamped", header=self.header(stamp_ns, world_frame_id),
            pose=self.pose(cam_to_world),
        )

    def odometry(
        self, cam_to_world: npt.NDArray[np.float64], stamp_ns: int, world_frame_id: str,
        child_frame_id: str,
    ) -> Any:
        """``nav_msgs/Odometry`` of ``child_frame_id`` (the optical frame); zero covariances
        and twist."""
        def vec() -> Any:
            return self.new("geometry_msgs/msg/Vector3", x=0.0, y=0.0, z=0.0)

        twist = self.new("geometry_msgs/msg/Twist", linear=vec(), angular=vec())
        return self.new(
            "nav_msgs/msg/Odometry", header=self.header(stamp_ns, world_frame_id),
            child_frame_id=child_frame_id,
            pose=self.new("geometry_msgs/msg/PoseWithCovariance", pose=self.pose(cam_to_world),
                          covariance=np.zeros(36, dtype=np.float64)),
            twist=self.new("geometry_msgs/msg/TwistWithCovariance", twist=twist,
                           covariance=np.zeros(36, dtype=np.float64)),
        )
