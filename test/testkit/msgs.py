"""Duck-typed stand-ins for sensor_msgs / geometry_msgs messages (what rosbags gives too)."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import numpy as np


def hdr(stamp_ns: int = 1_000_000_000, frame_id: str = "cam") -> NS:
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    return NS(stamp=NS(sec=sec, nanosec=nsec), frame_id=frame_id)


def image(arr: np.ndarray, encoding: str, stamp_ns: int = 1_000_000_000, **over: Any) -> NS:
    h, w = arr.shape[:2]
    data = np.ascontiguousarray(arr).tobytes()
    msg = NS(header=hdr(stamp_ns), height=h, width=w, encoding=encoding, is_bigendian=0,
             step=len(data) // h if h else 0, data=data)
    for k, v in over.items():
        setattr(msg, k, v)
    return msg


def camera_info(k: list[float], w: int = 640, h: int = 480, stamp_ns: int = 1_000_000_000) -> NS:
    return NS(header=hdr(stamp_ns), width=w, height=h, k=k)


def pose_stamped(t=(1.0, 2.0, 3.0), q=(0.0, 0.0, 0.0, 1.0), stamp_ns: int = 1_000_000_000) -> NS:
    return NS(header=hdr(stamp_ns, "map"),
              pose=NS(position=NS(x=t[0], y=t[1], z=t[2]),
                      orientation=NS(x=q[0], y=q[1], z=q[2], w=q[3])))


def odometry(t=(1.0, 2.0, 3.0), q=(0.0, 0.0, 0.0, 1.0), stamp_ns: int = 1_000_000_000) -> NS:
    ps = pose_stamped(t, q, stamp_ns)
    return NS(header=ps.header, child_frame_id="cam", pose=NS(pose=ps.pose, covariance=[0.0] * 36))
