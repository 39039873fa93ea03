"""The ROS edge of the one topic-kind table (``core.topic_kinds``): each kind's ``msg_type``
resolves to the rclpy class the node subscribes with, and the kind's converter turns a real
rclpy message of that class into its stream's value."""

from __future__ import annotations

import numpy as np

from spatial_mllm_ros.core.convert import DEFAULT_LIMITS
from spatial_mllm_ros.core.frame import CameraIntrinsics
from spatial_mllm_ros.core.topic_kinds import TOPIC_KINDS, Kind
from spatial_mllm_ros.ros.conversions import ENCODER, message_class

RGB = np.full((4, 6, 3), 9, np.uint8)
POSE = np.eye(4)
INTR = CameraIntrinsics(fx=5.0, fy=5.0, cx=3.0, cy=2.0, width=6, height=4)
#: one rclpy message of each kind
MESSAGES = {
    Kind.COLOUR: ENCODER.colour_image(RGB, 5, "cam"),
    Kind.COLOUR_COMPRESSED: ENCODER.compressed_image(RGB, 5, "cam", "png"),
    Kind.DEPTH: ENCODER.depth_image(np.full((4, 6), 1.5, np.float32), 5, "cam"),
    Kind.CAMERA_INFO: ENCODER.camera_info(INTR, 5, "cam"),
    Kind.POSE: ENCODER.pose_stamped(POSE, 5, "map"),
    Kind.ODOMETRY: ENCODER.odometry(POSE, 5, "map", "cam"),
}


def test_every_kind_has_its_rclpy_class_and_converts_its_messages() -> None:
    assert set(MESSAGES) == {t.kind for t in TOPIC_KINDS}
    for t in TOPIC_KINDS:
        msg = MESSAGES[t.kind]
        assert isinstance(msg, message_class(t.msg_type)), t.kind
        value = t.convert(msg, DEFAULT_LIMITS)
        if t.kind is Kind.DEPTH:
            np.testing.assert_allclose(value, 1.5)
            continue
        converted, frame_id = value
        assert frame_id == ("map" if t.kind in (Kind.POSE, Kind.ODOMETRY) else "cam"), t.kind
        if t.colour:
            assert np.array_equal(converted, RGB), t.kind
        elif t.kind is Kind.CAMERA_INFO:
            assert (converted.fx, converted.width, converted.height) == (5.0, 6, 4)
        else:
            np.testing.assert_allclose(converted, POSE)
