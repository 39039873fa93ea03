"""``camera.<name>.tf_frame`` (issue 22 point 1), the parts that need no tf2_ros: the lookup
adapter over a buffer with tf2's ``lookup_transform`` (a fake one here), the camera's fixed tf
frame whatever the image's ``frame_id`` says, a tf camera beside an odometry camera in one
buffer (a failing lookup costs only its own frames' poses), and the parameter check refusing a
tf camera that also names a pose topic or an extrinsic. The same over DDS with tf2_ros:
test/ros/test_multi_camera_tf_e2e.py (skipped where tf2_ros is not installed)."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import numpy as np
import pytest
from testkit.fakes import FifoStore
from testkit.msgs import camera_info, image, odometry

from spatial_mllm_ros import params as P
from spatial_mllm_ros.core.convert import DEFAULT_LIMITS
from spatial_mllm_ros.core.multi_ingest import CameraFeed, MultiIngestor
from spatial_mllm_ros.core.poses import rigid_transform
from spatial_mllm_ros.ros.tf_poses import TfPoses, fixed_frame
from spatial_mllm_ros.settings import Settings

MS = 1_000_000
K = [50.0, 0, 31.5, 0, 50.0, 23.5, 0, 0, 1]
LEFT_T = (1.0, 2.0, 0.5)
LEFT_Q = (0.0, 0.0, 0.7071068, 0.7071068)


class FakeTfBuffer:
    """tf2's ``Buffer.lookup_transform`` over one fixed transform per source frame; raises
    (as tf2 does: LookupException, ExtrapolationException, ...) for any other frame."""

    def __init__(self, transforms: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]
                 ) -> None:
        self.transforms = transforms
        self.calls: list[tuple[str, str, int]] = []

    def lookup_transform(self, target: str, source: str, time: Any) -> NS:
        self.calls.append((target, source, time.nanoseconds))
        if source not in self.transforms:
            raise LookupError(f"{source} does not exist")
        t, q = self.transforms[source]
        return NS(transform=NS(translation=NS(x=t[0], y=t[1], z=t[2]),
                               rotation=NS(x=q[0], y=q[1], z=q[2], w=q[3])))


def _tf(buffer: FakeTfBuffer) -> TfPoses:
    return TfPoses(None, "map", DEFAULT_LIMITS, buffer=buffer)


def test_the_lookup_reads_the_buffer_in_the_world_frame_at_the_stamp() -> None:
    buffer = FakeTfBuffer({"left_color_optical_frame": (LEFT_T, LEFT_Q)})
    found = _tf(buffer).lookup("left_color_optical_frame", 1_500 * MS)
    assert found is not None
    pose, world = found
    assert world == "map"
    np.testing.assert_allclose(pose, rigid_transform(LEFT_T, LEFT_Q), atol=1e-6)
    assert buffer.calls == [("map", "left_color_optical_frame", 1_500 * MS)]
    assert _tf(buffer).lookup("nowhere", 1_500 * MS) is None  # tf has none: no pose


def test_a_camera_looks_its_own_tf_frame_up_whatever_the_image_says() -> None:
    buffer = FakeTfBuffer({"left_color_optical_frame": (LEFT_T, LEFT_Q)})
    lookup = fixed_frame(_tf(buffer).as_lookup(), "left_color_optical_frame")
    assert lookup is not None
    assert lookup("cam", 7) is not None
    assert buffer.calls == [("map", "left_color_optical_frame", 7)]
    assert fixed_frame(None, "left_color_optical_frame") is None  # no tf2 at all


def _settings() -> Settings:
    return Settings.from_values({
        "cameras": ["front", "left"],
        "camera.front.colour": "/front/color/image_raw", "camera.front.depth": "/front/depth",
        "camera.front.camera_info": "/front/color/camera_info",
        "camera.front.odometry": "/odom",
        "camera.left.colour": "/left/color/image_raw", "camera.left.depth": "/left/depth",
        "camera.left.camera_info": "/left/color/camera_info",
        "camera.left.tf_frame": "left_color_optical_frame"})


def _ingest_both(buffer: FakeTfBuffer, steps: int = 3) -> tuple[MultiIngestor, FifoStore]:
    """front (odometry) and left (tf) into one store, ``steps`` stamps each."""
    settings = _settings()
    store = FifoStore(100)
    lookup = _tf(buffer).as_lookup()
    ing = MultiIngestor(store, [
        CameraFeed(c, settings.camera_ingest(c), c.topics,
                   fixed_frame(lookup, c.tf_frame) if c.tf_lookup else None)
        for c in settings.cameras])
    rgb = np.full((48, 64, 3), 80, np.uint8)
    mm = np.full((48, 64), 1500, np.uint16)
    for step in range(steps):
        t = (step + 1) * 100 * MS
        ing.ingest("/odom", odometry((float(step), 0.0, 0.0), stamp_ns=t), t)
        for cam in ("front", "left"):
            ing.ingest(f"/{cam}/color/image_raw", image(rgb, "rgb8", t), t)
            ing.ingest(f"/{cam}/depth", image(mm, "16UC1", t), t)
            ing.ingest(f"/{cam}/color/camera_info", camera_info(K, 64, 48, t), t)
    ing.flush()
    return ing, store


def test_a_tf_camera_gets_its_pose_from_tf_beside_an_odometry_camera() -> None:
    buffer = FakeTfBuffer({"left_color_optical_frame": (LEFT_T, LEFT_Q)})
    _, store = _ingest_both(buffer)
    left = [f for f in store.snapshot() if f.camera == "left"]
    assert len(left) == 3 and all(f.has_geometry for f in left)
    for f in left:
        assert f.pose is not None and f.world_frame_id == "map"
        np.testing.assert_allclose(f.pose, rigid_transform(LEFT_T, LEFT_Q), atol=1e-6)
    assert [c[1:] for c in buffer.calls] == [("left_color_optical_frame", f.stamp_ns)
                                            for f in left]
    front = [f for f in store.snapshot() if f.camera == "front"]
    assert [f.pose[0, 3] for f in front if f.pose is not None] == [0.0, 1.0, 2.0]


def test_a_tf_lookup_that_fails_costs_only_that_cameras_poses() -> None:
    ing, store = _ingest_both(FakeTfBuffer({}))  # tf knows no left_color_optical_frame
    per = ing.camera_counters()
    assert per["left"]["frames.missing.pose.tf_unavailable"] == 3
    assert per["left"].get("frames.with_pose", 0) == 0
    assert per["front"]["frames.complete"] == 3
    assert not any(k.startswith("frames.missing.pose") for k in per["front"])
    assert all(f.pose is None for f in store.snapshot() if f.camera == "left")


@pytest.mark.parametrize(("extra", "expected"), [
    ({"camera.left.pose": "/left/pose"},
     "camera 'left': more than one pose source (pose, tf_frame)"),
    ({"camera.left.odometry": "/odom"},
     "camera 'left': more than one pose source (odometry, tf_frame)"),
    ({"camera.left.extrinsic": [0.0, 0.1, 0.0, 0.0, 0.0, 0.0, 1.0]},
     "camera 'left': camera.left.extrinsic needs the robot base's pose"),
], ids=["tf-and-pose", "tf-and-odometry", "tf-and-extrinsic"])
def test_a_tf_camera_with_another_pose_source_is_refused(extra: dict[str, object],
                                                        expected: str) -> None:
    values = {"cameras": ["front", "left"],
              "camera.front.colour": "/front/color/image_raw",
              "camera.left.colour": "/left/color/image_raw",
              "camera.left.tf_frame": "left_color_optical_frame", **extra}
    with pytest.raises(P.ParamError) as err:
        Settings.from_values(values)
    assert expected in str(err.value)
