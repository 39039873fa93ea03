"""Over DDS: ``rgbd_stream_publisher --rig`` (issue 22 point 5) heard by a plain rclpy
subscriber in this process: three cameras, each on its own topics with its own optical frame
id, every message it reports arriving (reliable QoS); ``--camera-count`` stops one camera
early while the others go on; ``--inject-camera`` puts the fault on one camera only."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from testkit.processes import run_publisher

from spatial_mllm_ros.ros.rig_stream import rig_topics

CAMERAS = ("front", "left", "right")
KINDS = ("colour", "depth", "camera_info", "pose")


@pytest.fixture
def listener() -> Any:
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo, Image

    from spatial_mllm_ros.ros.client import BackgroundNode
    from spatial_mllm_ros.ros.qos import camera_qos

    class Listener(BackgroundNode):
        """Keeps the header frame ids of every message per (camera, kind)."""

        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.name = name
            self.lock = threading.Lock()
            self.got: dict[tuple[str, str], list[Any]] = {}
            types = {"colour": Image, "depth": Image, "camera_info": CameraInfo,
                     "pose": PoseStamped}
            for cam in CAMERAS:
                topics = rig_topics(cam)
                for kind in KINDS:
                    self.got[(cam, kind)] = []
                    self.node.create_subscription(types[kind], topics[kind],
                                                  self._cb(cam, kind),
                                                  camera_qos("reliable", 100))

        def _cb(self, cam: str, kind: str) -> Any:
            def on_msg(msg: Any) -> None:
                with self.lock:
                    self.got[(cam, kind)].append(msg)
            return on_msg

        def counts(self) -> dict[tuple[str, str], int]:
            with self.lock:
                return {k: len(v) for k, v in self.got.items()}

    node = Listener(f"rig_listener_{os.getpid()}")
    yield node
    node.close()


def test_each_rig_camera_publishes_on_its_own_topics(listener: Any) -> None:
    summary = run_publisher(
        "--rig", ",".join(CAMERAS), "--source", "synthetic", "--views", "6", "--width", "160",
        "--height", "120", "--reliability", "reliable", "--qos-depth", "100", "--rate", "30",
        "--count", "24", "--camera-count", "left=8", "--inject", "missing_intrinsics",
        "--inject-count", "2", "--inject-camera", "right", node=listener.name)
    assert set(summary["cameras"]) == set(CAMERAS)
    published = {(cam, kind): summary["cameras"][cam]["published"][kind]
                 for cam in CAMERAS for kind in KINDS}
    assert summary["cameras"]["left"]["good_frames"] == 8
    assert summary["cameras"]["front"]["good_frames"] == 24
    assert summary["cameras"]["right"]["injected"] == {"missing_intrinsics": 2}
    assert summary["cameras"]["front"]["injected"] == {}
    assert summary["good_frames"] == 24 + 8 + 24
    deadline = time.monotonic() + 20.0
    while listener.counts() != published and time.monotonic() < deadline:
        time.sleep(0.1)
    assert listener.counts() == published
    for cam in CAMERAS:
        ids = {m.header.frame_id for m in listener.got[(cam, "colour")]}
        assert ids == {f"{cam}_color_optical_frame"}


def test_the_multi_camera_profile_names_the_rig_topics() -> None:
    from spatial_mllm_ros.settings import Settings

    cameras = Settings.from_profile("multi_camera").cameras
    assert tuple(c.name for c in cameras) == CAMERAS
    for cam in cameras:
        expected = {k: t for k, t in rig_topics(cam.name).items() if k != "colour_compressed"}
        assert {k: t for k, t in cam.topics.items() if k != "colour_compressed"} == expected
