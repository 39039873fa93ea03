"""Building outgoing ROS messages from numpy / core records (the ROS edge).

Incoming messages are converted by :mod:`spatial_mllm_ros.core.convert` (duck-typed, no
rclpy); this module goes the other way, for publishers (the stream publisher, answers,
diagnostics).  ``uint8[]`` fields are filled from ``array.array('B', bytes)``, which rclpy
accepts without a per-element check (a plain ``bytes`` would be checked element by element).
"""

from __future__ import annotations

import array
import math

import cv2
import numpy as np
import numpy.typing as npt
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from spatial_mllm_ros.core.frame import CameraIntrinsics

__all__ = [
    "camera_info_msg",
    "colour_image_msg",
    "compressed_image_msg",
    "depth_image_msg",
    "header",
    "key_values",
    "ns_to_time",
    "pose_stamped_msg",
    "rotation_to_quaternion",
    "time_to_ns",
]


def ns_to_time(stamp_ns: int) -> Time:
    """Nanoseconds since the epoch -> builtin_interfaces/Time."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def time_to_ns(t: Time) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=ns_to_time(stamp_ns), frame_id=frame_id)


def _bytes_field(data: bytes | npt.NDArray[np.generic]) -> array.array[int]:
    raw = data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes()
    return array.array("B", raw)


def colour_image_msg(
    rgb: npt.NDArray[np.uint8], stamp_ns: int, frame_id: str, encoding: str = "rgb8"
) -> Image:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image in ``encoding`` (rgb8 or bgr8)."""
    if encoding == "bgr8":
        pix = rgb[:, :, ::-1]
    elif encoding == "rgb8":
        pix = rgb
    else:
        raise ValueError(f"unsupported encoding {encoding!r}")
    h, w = int(rgb.shape[0]), int(rgb.shape[1])
    return Image(
        header=header(stamp_ns, frame_id), height=h, width=w, encoding=encoding,
        is_bigendian=0, step=w * 3, data=_bytes_field(pix),
    )


def depth_image_msg(
    depth_m: npt.NDArray[np.floating], stamp_ns: int, frame_id: str, encoding: str = "16UC1"
) -> Image:
    """(H, W) depth in metres (0 = none) -> sensor_msgs/Image, 16UC1 (mm) or 32FC1 (m)."""
    h, w = int(depth_m.shape[0]), int(depth_m.shape[1])
    if encoding == "16UC1":
        pix: npt.NDArray[np.generic] = np.clip(np.rint(depth_m * 1000.0), 0, 65535).astype("<u2")
    elif encoding == "32FC1":
        pix = depth_m.astype("<f4")
    else:
        raise ValueError(f"unsupported depth encoding {encoding!r}")
    return Image(
        header=header(stamp_ns, frame_id), height=h, width=w, encoding=encoding,
        is_bigendian=0, step=w * pix.itemsize, data=_bytes_field(pix),
    )


def compressed_image_msg(
    rgb: npt.NDArray[np.uint8], stamp_ns: int, frame_id: str, fmt: str = "jpeg"
) -> CompressedImage:
    """(H, W, 3) uint8 RGB -> sensor_msgs/CompressedImage (jpeg or png)."""
    ext = {"jpeg": ".jpg", "png": ".png"}[fmt]
    ok, enc = cv2.imencode(ext, np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError(f"cv2.imencode({ext}) failed")
    return CompressedImage(header=header(stamp_ns, frame_id), format=fmt,
                           data=_bytes_field(enc.tobytes()))


def camera_info_msg(intr: CameraIntrinsics, stamp_ns: int, frame_id: str) -> CameraInfo:
    """Pinhole intrinsics -> sensor_msgs/CameraInfo (no distortion, P = [K | 0])."""
    k = intr.matrix
    p = np.zeros((3, 4))
    p[:, :3] = k
    return CameraInfo(
        header=header(stamp_ns, frame_id), width=intr.width, height=intr.height,
        distortion_model="plumb_bob", d=[0.0] * 5, k=k.reshape(-1).tolist(),
        r=np.eye(3).reshape(-1).tolist(), p=p.reshape(-1).tolist(),
    )


def rotation_to_quaternion(r: npt.NDArray[np.float64]) -> tuple[float, float, float, float]:
    """3x3 rotation -> unit quaternion (x, y, z, w)."""
    m = np.asarray(r, dtype=np.float64)
    tr = float(m[0, 0] + m[1, 1] + m[2, 2])
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        w, x = 0.25 * s, (m[2, 1] - m[1, 2]) / s
        y, z = (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        w, x = (m[2, 1] - m[1, 2]) / s, 0.25 * s
        y, z = (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        w, x = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s
        y, z = 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        w, x = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s
        y, z = (m[1, 2] + m[2, 1]) / s, 0.25 * s
    n = math.sqrt(x * x + y * y + z * z + w * w)
    return float(x / n), float(y / n), float(z / n), float(w / n)


def pose_stamped_msg(
    cam_to_world: npt.NDArray[np.float64], stamp_ns: int, world_frame: str
) -> PoseStamped:
    """(4, 4) camera-to-world -> geometry_msgs/PoseStamped in ``world_frame``."""
    msg = PoseStamped(header=header(stamp_ns, world_frame))
    t = cam_to_world[:3, 3]
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in t)
    q = rotation_to_quaternion(cam_to_world[:3, :3])
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = q
    return msg


def key_values(values: dict[str, object]) -> list[KeyValue]:
    """A dict -> diagnostic_msgs/KeyValue list (sorted by key, values as strings)."""
    return [KeyValue(key=k, value=str(values[k])) for k in sorted(values)]
