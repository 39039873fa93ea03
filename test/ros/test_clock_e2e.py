"""Clocks as ROS systems have them, end to end over DDS: a future-stamped frame, a bad
``nanosec``, a backwards jump (a bag replayed after live data) -- later good frames are
accepted, and the node answers from them.

The node runs as a real process; the test process publishes a synthetic walkthrough (colour,
depth, camera info, pose) with the stamps each case needs, through the project's codec.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from testkit.processes import (
    ANSWER_NODE_PARAMS,
    counter,
    node_status,
    stamps_ns,
    wait_node_state,
)

from spatial_mllm_ros.answering.types import AnswerStatus

S = 1_000_000_000
TOPICS = {
    "colour": "/camera/camera/color/image_raw",
    "depth": "/camera/camera/aligned_depth_to_color/image_raw",
    "camera_info": "/camera/camera/color/camera_info",
    "pose": "/spatial_mllm/camera_pose",
}


class Camera:
    """Publishes the frames of a walkthrough from the test process, stamped as asked."""

    def __init__(self, node: Any, n_frames: int = 24) -> None:
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
        self.pubs = {k: node.create_publisher(types[k], t, reliable_qos(100))
                     for k, t in TOPICS.items()}

    def wait_matched(self, timeout_s: float = 60.0) -> None:
        from spatial_mllm_ros.ros.matching import wait_subscribed

        missing = wait_subscribed(self.node, list(self.pubs.values()), timeout_s, "spatial_mllm")
        assert not missing, f"the node did not subscribe to {missing}"

    def publish(self, i: int, stamp_ns: int, nanosec: int | None = None) -> None:
        """Frame ``i`` of the walkthrough, all four messages stamped ``stamp_ns``."""
        f = self.frames[i % len(self.frames)]
        fid = f.frame_id
        msgs = {
            "colour": self.enc.colour_image(f.rgb, stamp_ns, fid),
            "depth": self.enc.depth_image(f.depth_m, stamp_ns, fid),
            "camera_info": self.enc.camera_info(f.intrinsics, stamp_ns, fid),
            "pose": self.enc.pose_stamped(f.pose, stamp_ns, f.world_frame_id or "map"),
        }
        if nanosec is not None:
            msgs["colour"].header.stamp.nanosec = nanosec
        for kind in ("pose", "camera_info", "depth", "colour"):
            self.pubs[kind].publish(msgs[kind])
        time.sleep(0.03)


@pytest.fixture
def camera(answer_client: Any) -> Any:
    cam = Camera(answer_client.node)
    yield cam
    for pub in cam.pubs.values():
        answer_client.node.destroy_publisher(pub)


def test_bad_stamps_are_rejected_and_a_replay_after_live_data_is_a_new_time_base(
    start_node: Any, monitor: Any, answer_client: Any, camera: Camera
) -> None:
    proc = start_node({**ANSWER_NODE_PARAMS, "topics.pose": TOPICS["pose"],
                       "pairing.wait_s": 0.3})
    wait_node_state(monitor, proc, "active", timeout=120)
    camera.wait_matched()
    # live frames, stamped when they are sent (as a driver does), one stamped ten years ahead
    # and one with nanosec = 4e9 among them
    for i in range(8):
        camera.publish(i, time.time_ns())
    camera.publish(8, time.time_ns() + 10 * 365 * 86400 * S)
    camera.publish(9, time.time_ns(), nanosec=4_000_000_000)
    for i in range(10, 16):
        camera.publish(i, time.time_ns())
    now = time.time_ns()
    live = node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 14)
    assert counter(live, "in.colour.rejected.stamp_future") == 1  # only the ten-years one
    assert counter(live, "in.colour.rejected.invalid_stamp") == 1
    assert counter(live, "in.colour.rejected.stamp_backwards") == 0  # nothing poisoned
    assert counter(live, "frames.complete") == 14

    # the same camera replayed from a bag recorded an hour earlier
    back = now - 3600 * S
    replayed = [back + i * S // 10 for i in range(8)]
    for i, stamp in enumerate(replayed):
        camera.publish(i, stamp)
    after = node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 22)
    assert counter(after, "clock.time_resets") == 1
    assert counter(after, "buffer.frames") <= 8  # the live frames were cleared

    ans = answer_client.ask("How many chairs are in this room?", sampling_strategy="uniform")
    assert ans.status == AnswerStatus.OK, ans.error
    assert stamps_ns(ans) and set(stamps_ns(ans)) <= set(replayed)
    assert proc.alive()
    log = proc.log.read_text()
    assert log.count("new time base") == 1  # logged once
    assert np.all(np.diff(stamps_ns(ans)) > 0)
