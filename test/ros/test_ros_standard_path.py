"""The ROS-standard tools where they are installed: cv_bridge parity and tf2 poses.

On a ROS 2 install these run; with the PyPI wheels (no ROS 2 cv_bridge, no tf2_ros) they skip
with the reason, and the same scenarios run through ``core.convert`` (test_convert.py) and the
pose topics (test_ingest_e2e.py).
"""

from __future__ import annotations

import importlib
import time

import numpy as np
import pytest
from testkit.processes import counter, node_status, run_publisher, wait_node_state


def _ros2_cv_bridge() -> object | None:
    try:
        mod = importlib.import_module("cv_bridge")
        bridge = mod.CvBridge()
        from sensor_msgs.msg import Image

        bridge.imgmsg_to_cv2(Image(height=1, width=1, encoding="mono8", step=1, data=[0]))
        return bridge
    except Exception:  # absent, or PyPI's ROS 1 cv-bridge that breaks on numpy 2 / rclpy msgs
        return None


BRIDGE = _ros2_cv_bridge()
TF2 = importlib.util.find_spec("tf2_ros") is not None


@pytest.mark.skipif(BRIDGE is None, reason="a ROS 2 cv_bridge is not importable here (not on "
                    "PyPI; PyPI's cv-bridge is the ROS 1 one); core.convert is tested alone")
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "16UC1", "32FC1"])
def test_core_convert_matches_cv_bridge(encoding: str) -> None:
    from spatial_mllm_ros.core.convert import (
        ConvertLimits,
        colour_image_to_rgb,
        depth_image_to_metres,
    )
    from spatial_mllm_ros.ros.conversions import ENCODER

    rng = np.random.default_rng(0)
    if encoding in ("rgb8", "bgr8"):
        rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        msg = ENCODER.colour_image(rgb, 1, "cam", encoding)
        ours = colour_image_to_rgb(msg, ConvertLimits())[0]
        theirs = BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8")  # type: ignore[attr-defined]
        np.testing.assert_array_equal(ours, theirs)
    else:
        depth = rng.uniform(0.3, 5.0, (48, 64)).astype(np.float32)
        msg = ENCODER.depth_image(depth, 1, "cam", encoding)
        ours = depth_image_to_metres(msg, ConvertLimits())[0]
        raw = BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")  # type: ignore[attr-defined]
        theirs = raw.astype(np.float32) / 1000.0 if encoding == "16UC1" else raw
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


@pytest.mark.skipif(not TF2, reason="tf2_ros is not importable here (not on PyPI); poses come "
                    "from the pose topic in test_ingest_e2e.py")
def test_node_takes_camera_pose_from_tf(start_node, monitor) -> None:
    import rclpy
    from geometry_msgs.msg import TransformStamped
    from tf2_ros import StaticTransformBroadcaster

    node = start_node({"tf.enabled": True, "tf.world_frame": "map", "topics.pose": "",
                       "qos.reliability": "reliable", "qos.depth": 100,
                       "diagnostics.period_s": 0.2})
    wait_node_state(monitor, node, "active", timeout=120)
    helper = rclpy.create_node("tf_test_broadcaster")
    broadcaster = StaticTransformBroadcaster(helper)
    tf = TransformStamped()
    tf.header.frame_id = "map"
    tf.child_frame_id = "camera_color_optical_frame"
    tf.transform.translation.x = 1.0
    tf.transform.rotation.w = 1.0
    broadcaster.sendTransform(tf)
    time.sleep(1.0)
    run_publisher("--reliability", "reliable", "--qos-depth", "100", "--count", "20",
                  "--pose-topic", "")
    status = node_status(monitor, node, lambda v: counter(v, "frames.emitted") >= 20)
    assert counter(status, "frames.with_pose") > 0
    helper.destroy_node()
