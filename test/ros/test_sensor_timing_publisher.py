"""Over DDS: rgbd_stream_publisher with realistic sensor timing, heard by a plain rclpy
subscriber in this process (no spatial_mllm node).

Poses at 100 Hz on their own clock, published 200..300 ms after their stamps, 10 % of them
dropped; camera info at 2 Hz from 0.5 s; depth 50 ms after its image; a 30 Hz 640x480 stream.
Checked: every message the publisher reports arrives (reliable QoS) with the stamps it reports,
depth with its image's stamp, camera info from 0.5 s on, and a pose arrives after the image of
its time.  (The depth lag itself is checked on the schedule, test/unit/test_sensor_timing.py:
50 ms is too close to the noise of callbacks run one at a time here.)
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from testkit.processes import run_publisher

PUB_ARGS = ("--reliability", "reliable", "--qos-depth", "100", "--rate", "30", "--count", "60",
            "--pose-rate", "100", "--pose-delay-ms", "200", "--pose-jitter-ms", "100",
            "--info-rate", "2", "--info-start-s", "0.5", "--depth-lag-ms", "50",
            "--drop-prob", "pose=0.1", "--seed", "1")
TOPICS = {
    "colour": "/camera/camera/color/image_raw",
    "depth": "/camera/camera/aligned_depth_to_color/image_raw",
    "camera_info": "/camera/camera/color/camera_info",
    "pose": "/spatial_mllm/camera_pose",
}


@pytest.fixture
def listener() -> Any:
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo, Image

    from spatial_mllm_ros.ros.client import BackgroundNode
    from spatial_mllm_ros.ros.qos import camera_qos

    class Listener(BackgroundNode):
        """Keeps (stamp ns, arrival ns) of every message per kind."""

        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.name = name
            self.lock = threading.Lock()
            self.got: dict[str, list[tuple[int, int]]] = {k: [] for k in TOPICS}
            types = {"colour": Image, "depth": Image, "camera_info": CameraInfo,
                     "pose": PoseStamped}
            for kind, topic in TOPICS.items():
                self.node.create_subscription(types[kind], topic, self._cb(kind),
                                              camera_qos("reliable", 100))

        def _cb(self, kind: str) -> Any:
            def on_msg(msg: Any) -> None:
                now = time.monotonic_ns()
                stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                with self.lock:
                    self.got[kind].append((stamp, now))
            return on_msg

        def counts(self) -> dict[str, int]:
            with self.lock:
                return {k: len(v) for k, v in self.got.items()}

    node = Listener(f"sensor_timing_listener_{os.getpid()}")
    yield node
    node.close()


def test_realistic_timing_arrives_as_published_and_poses_arrive_late(listener: Any) -> None:
    summary = run_publisher(*PUB_ARGS, node=listener.name)
    published = {k: summary["published"][k] for k in TOPICS}
    deadline = time.monotonic() + 20.0
    while listener.counts() != published and time.monotonic() < deadline:
        time.sleep(0.1)
    assert listener.counts() == published, summary["dropped"]
    got = {k: sorted(v) for k, v in listener.got.items()}
    stamps = {k: [s for s, _a in v] for k, v in got.items()}
    assert stamps["colour"] == summary["good_stamps_ns"] == stamps["depth"]
    assert stamps["pose"] == summary["pose_stamps_ns"]
    assert stamps["camera_info"] == summary["camera_info_stamps_ns"]
    first = summary["first_stamp_ns"]
    # camera info at 2 Hz from 0.5 s; poses at 100 Hz on their own clock, some dropped
    assert [s - first for s in stamps["camera_info"]] == [500_000_000, 1_000_000_000,
                                                          1_500_000_000]
    assert summary["dropped"]["pose"] > 0
    assert len(stamps["pose"]) > 150
    assert not set(stamps["pose"]) & set(stamps["colour"])
    gaps = [b - a for a, b in zip(stamps["pose"], stamps["pose"][1:], strict=False)]
    assert all(abs(g - round(g / 1e7) * 1e7) <= 2 and g > 0 for g in gaps)
    assert stamps["pose"][0] < stamps["colour"][0] and stamps["pose"][-1] >= stamps["colour"][-1]
    # a pose is published 200..300 ms after its stamp: even a pose stamped 100 ms before an
    # image arrives after the image (without the delay it would come 100 ms before), for most
    # images (the margin is wide both ways, and callbacks run one at a time in this process)
    late = checked = 0
    for stamp, arrived in got["colour"]:
        earlier = [a for s, a in got["pose"] if s <= stamp - 100_000_000]
        if earlier:
            checked += 1
            late += earlier[-1] > arrived
    assert checked > 40 and late > checked // 2, f"{late} of {checked} poses came late"
