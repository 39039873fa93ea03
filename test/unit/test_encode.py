"""core.encode: frames -> messages, decoded back by core.convert (namespace and rosbags types).

rclpy-free: the same encoder fills plain namespace objects and rosbags messages (serialised to
CDR and back, as a bag or the wire carries them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from spatial_mllm_ros.bags.typestore import rosbags_factory, typestore
from spatial_mllm_ros.core import convert as C
from spatial_mllm_ros.core.encode import (
    MessageEncoder,
    compressed_format,
    depth_from_mm,
    depth_to_mm,
    namespace_factory,
    rotation_to_quaternion,
)
from spatial_mllm_ros.core.errors import EncodeError
from spatial_mllm_ros.core.frame import CameraIntrinsics

RNG = np.random.default_rng(3)
RGB = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
DEPTH = RNG.uniform(0.3, 6.0, (24, 32)).astype(np.float32)
DEPTH[:2] = 0.0  # no measurement
K = CameraIntrinsics(30.5, 31.0, 15.5, 11.5, 32, 24)
STAMP = 1_700_000_123_456_789_012
TS = typestore()


def _namespace() -> tuple[MessageEncoder, Callable[[Any], Any]]:
    return MessageEncoder(namespace_factory()), lambda m: m


def _rosbags() -> tuple[MessageEncoder, Callable[[Any], Any]]:
    def wire(msg: Any) -> Any:  # CDR and back, as a bag stores it
        return TS.deserialize_cdr(TS.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)

    return MessageEncoder(rosbags_factory(TS)), wire


@pytest.fixture(params=[_namespace, _rosbags], ids=["namespace", "rosbags"])
def codec(request: pytest.FixtureRequest) -> tuple[MessageEncoder, Callable[[Any], Any]]:
    make: Callable[[], tuple[MessageEncoder, Callable[[Any], Any]]] = request.param
    return make()


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_colour_round_trip(codec, encoding: str) -> None:
    enc, wire = codec
    msg = wire(enc.colour_image(RGB, STAMP, "cam", encoding))
    assert (msg.encoding, msg.step, msg.is_bigendian) == (encoding, 32 * 3, 0)
    assert C.stamp_to_ns(msg.header) == STAMP and msg.header.frame_id == "cam"
    assert np.array_equal(C.colour_image_to_rgb(msg), RGB)


@pytest.mark.parametrize(("encoding", "tol"), [("16UC1", 0.0005 + 1e-6), ("32FC1", 0.0)])
def test_depth_round_trip(codec, encoding: str, tol: float) -> None:
    enc, wire = codec
    msg = wire(enc.depth_image(DEPTH, STAMP, "cam", encoding))
    assert msg.encoding == encoding and msg.step == 32 * (2 if encoding == "16UC1" else 4)
    back = C.depth_image_to_metres(msg)
    assert np.abs(back - DEPTH).max() <= tol
    assert np.all(back[:2] == 0)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_round_trip_and_format(codec, fmt: str) -> None:
    enc, wire = codec
    msg = wire(enc.compressed_image(RGB, STAMP, "cam", fmt))
    assert msg.format == compressed_format(fmt) == f"rgb8; {fmt} compressed bgr8"
    back = C.compressed_image_to_rgb(msg)
    assert back.shape == RGB.shape
    if fmt == "png":
        assert np.array_equal(back, RGB)
    else:  # lossy, but the channel order is right: a red image stays red
        red = np.zeros_like(RGB)
        red[..., 0] = 200
        got = C.compressed_image_to_rgb(wire(enc.compressed_image(red, STAMP, "cam", "jpeg")))
        assert np.abs(got.astype(int) - red.astype(int)).max() <= 3


def test_camera_info_round_trip(codec) -> None:
    enc, wire = codec
    msg = wire(enc.camera_info(K, STAMP, "cam"))
    assert C.camera_info_to_intrinsics(msg) == K
    assert msg.distortion_model == "plumb_bob" and not np.asarray(msg.d).any()
    assert np.allclose(np.asarray(msg.p).reshape(3, 4)[:, :3], K.matrix)
    assert np.allclose(np.asarray(msg.r).reshape(3, 3), np.eye(3))


def _pose() -> np.ndarray:
    q = RNG.normal(size=4)
    q /= np.linalg.norm(q)
    m = np.eye(4)
    m[:3, :3] = C.quaternion_to_rotation(*q)
    m[:3, 3] = RNG.normal(size=3)
    return m


def test_pose_stamped_and_odometry_round_trip(codec) -> None:
    enc, wire = codec
    pose = _pose()
    ps = wire(enc.pose_stamped(pose, STAMP, "map"))
    assert ps.header.frame_id == "map" and ps.pose.orientation.w >= 0
    assert np.allclose(C.pose_msg_to_matrix(ps), pose, atol=1e-12)
    odom = wire(enc.odometry(pose, STAMP, "odom", "cam"))
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "cam")
    assert np.allclose(C.pose_msg_to_matrix(odom), pose, atol=1e-12)
    assert not np.asarray(odom.pose.covariance).any()


def test_unsupported_encodings_raise() -> None:
    enc = MessageEncoder(namespace_factory())
    with pytest.raises(EncodeError, match="colour encoding"):
        enc.colour_image(RGB, 0, "cam", "rgba8")
    with pytest.raises(EncodeError, match="depth encoding"):
        enc.depth_image(DEPTH, 0, "cam", "mono16")
    with pytest.raises(EncodeError, match="compressed format"):
        enc.compressed_image(RGB, 0, "cam", "webp")  # type: ignore[arg-type]


def test_decoder_accepts_image_transport_formats() -> None:
    for fmt in ("jpeg", "png", "rgb8; jpeg compressed bgr8", "bgr8; png compressed bgr8"):
        msg = MessageEncoder(namespace_factory()).compressed_image(RGB, 0, "cam", "png")
        msg.format = fmt
        assert C.compressed_image_to_rgb(msg).shape == RGB.shape


def test_rotation_to_quaternion_round_trip() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        r = C.quaternion_to_rotation(*q)
        back = rotation_to_quaternion(r)
        assert math.isclose(np.linalg.norm(back), 1.0, abs_tol=1e-12)
        assert back[3] >= 0
        assert np.allclose(back, q if q[3] >= 0 else -q, atol=1e-9)  # the w >= 0 one of +-q
    # 180-degree rotations (trace -1) take the non-w branches
    for axis in np.eye(3):
        r = 2 * np.outer(axis, axis) - np.eye(3)
        assert np.allclose(C.quaternion_to_rotation(*rotation_to_quaternion(r)), r, atol=1e-12)


def test_depth_mm_round_trip() -> None:
    d = np.array([[0.0, 0.0004, 1.2344, np.nan], [70.0, -1.0, 2.0006, np.inf]], np.float32)
    mm = depth_to_mm(d)
    assert mm.dtype == np.uint16
    assert mm.tolist() == [[0, 0, 1234, 0], [65535, 0, 2001, 0]]
    back = depth_from_mm(mm)
    assert back.dtype == np.float32
    assert back[0, 2] == pytest.approx(1.234) and back[1, 2] == pytest.approx(2.001)


def test_rclpy_messages_decode_the_same() -> None:
    pytest.importorskip("sensor_msgs.msg", reason="ROS 2 message packages are not importable")
    from spatial_mllm_ros.ros.conversions import ENCODER

    colour = ENCODER.colour_image(RGB, STAMP, "cam", "bgr8")
    assert type(colour).__name__ == "Image"
    assert np.array_equal(C.colour_image_to_rgb(colour), RGB)
    assert np.array_equal(C.depth_image_to_metres(ENCODER.depth_image(DEPTH, STAMP, "cam")),
                          C.depth_image_to_metres(MessageEncoder(namespace_factory())
                                                  .depth_image(DEPTH, STAMP, "cam")))
    assert np.array_equal(C.compressed_image_to_rgb(ENCODER.compressed_image(RGB, 0, "c", "png")),
                          RGB)
    info = ENCODER.camera_info(K, STAMP, "cam")
    assert list(info.d) == [0.0] * 5 and C.camera_info_to_intrinsics(info) == K
    pose = _pose()
    assert np.allclose(C.pose_msg_to_matrix(ENCODER.odometry(pose, STAMP, "map", "cam")), pose)
