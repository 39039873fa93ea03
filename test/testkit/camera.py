"""A camera in the test process: publishes the frames of a synthetic walkthrough on the node's
default topics (colour, depth, camera info, pose), each message stamped as the test asks,
through the project's codec. Only the topic kinds it is given get a publisher, so a test can
be a colour-only camera, or a camera whose pose stream stops.

Importing this module needs neither rclpy nor the built interfaces (they are imported when a
camera is made).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

__all__ = ["TOPICS", "Camera"]

#: topic kind -> the node's default topic (pose: set ``topics.pose`` to it)
TOPICS = {
    "colour": "/camera/camera/color/image_raw",
    "depth": "/camera/camera/aligned_depth_to_color/image_raw",
    "camera_info": "/camera/camera/color/camera_info",
    "pose": "/spatial_mllm/camera_pose",
}

#: the order messages of one frame are published in (colour last, as a driver's partners
#: usually come first)
ORDER = ("pose", "camera_info", "depth", "colour")


class Camera:
    """Publishers (reliable, depth 100) of ``kinds`` on ``node``, and the frames to send."""

    def __init__(self, node: Any, n_frames: int = 24, kinds: Iterable[str] = TOPICS) -> None:
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo, Image

        from spatial_mllm_ros.ros.conversions import ENCODER
        from spatial_mllm_ros.ros.qos import reliable_qos
        from spatial_mllm_ros.synthetic import make_walkthrough

        self.enc = ENCODER
        self.frames = make_walkthrough(3, n_frames=n_frames, fps=10.0, width=160,
                                       height=120).frames
        types = {"colour": Image, "depth": Image, "camera_info": CameraInfo,
                 "pose": PoseStamped}
        self.node = node
        self.pubs = {k: node.create_publisher(types[k], TOPICS[k], reliable_qos(100))
                     for k in kinds}

    def wait_matched(self, timeout_s: float = 60.0) -> None:
        from spatial_mllm_ros.ros.matching import wait_subscribed

        missing = wait_subscribed(self.node, list(self.pubs.values()), timeout_s, "spatial_mllm")
        assert not missing, f"the node did not subscribe to {missing}"

    def publish(self, i: int, stamp_ns: int, nanosec: int | None = None,
                kinds: Iterable[str] | None = None) -> None:
        """Frame ``i`` of the walkthrough on ``kinds`` (default: every publisher), each
        message stamped ``stamp_ns`` (the colour image's ``nanosec`` overridden if given)."""
        f = self.frames[i % len(self.frames)]
        fid = f.frame_id
        build = {
            "colour": lambda: self.enc.colour_image(f.rgb, stamp_ns, fid),
            "depth": lambda: self.enc.depth_image(f.depth_m, stamp_ns, fid),
            "camera_info": lambda: self.enc.camera_info(f.intrinsics, stamp_ns, fid),
            "pose": lambda: self.enc.pose_stamped(f.pose, stamp_ns, f.world_frame_id or "map"),
        }
        wanted = set(self.pubs if kinds is None else kinds)
        for kind in ORDER:
            if kind not in wanted:
                continue
            msg = build[kind]()
            if kind == "colour" and nanosec is not None:
                msg.header.stamp.nanosec = nanosec
            self.pubs[kind].publish(msg)
        time.sleep(0.03)  # a 30 Hz camera's pace, not a fault

    def close(self) -> None:
        for pub in self.pubs.values():
            self.node.destroy_publisher(pub)
