"""core.convert: colour/depth/compressed/camera info/pose conversion and every rejection."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from testkit.msgs import camera_info, image, odometry, pose_stamped

from spatial_mllm_ros.core import convert as C
from spatial_mllm_ros.core.clock import StampGuard
from spatial_mllm_ros.core.errors import FrameRejected, RejectReason

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)


def reason(fn, *args, **kw) -> RejectReason:
    with pytest.raises(FrameRejected) as exc:
        fn(*args, **kw)
    return exc.value.reason


@pytest.mark.parametrize(
    ("encoding", "make"),
    [
        ("rgb8", lambda a: a),
        ("bgr8", lambda a: a[:, :, ::-1]),
        ("rgba8", lambda a: np.dstack([a, np.full(a.shape[:2], 7, np.uint8)])),
        ("bgra8", lambda a: np.dstack([a[:, :, ::-1], np.full(a.shape[:2], 7, np.uint8)])),
    ],
)
def test_colour_encodings_give_rgb(encoding, make):
    out = C.colour_image_to_rgb(image(make(RGB), encoding))
    assert out.dtype == np.uint8 and out.shape == (6, 5, 3)
    np.testing.assert_array_equal(out, RGB)


def test_mono8_is_replicated_and_padded_step_is_honoured():
    mono = RGB[:, :, 0]
    padded = np.zeros((6, 8), np.uint8)
    padded[:, :5] = mono
    msg = image(padded, "mono8", width=5, step=8)
    out = C.colour_image_to_rgb(msg)
    assert out.shape == (6, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], mono)


def test_rgb8_is_a_read_only_view_without_copy():
    buf = bytearray(RGB.tobytes())
    msg = image(RGB, "rgb8", data=buf)
    out = C.colour_image_to_rgb(msg)
    assert not out.flags.writeable
    buf[0] = (int(buf[0]) + 1) % 256
    assert out[0, 0, 0] == buf[0]


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"encoding": "yuv422"}, RejectReason.UNKNOWN_ENCODING),
        ({"step": 14}, RejectReason.BAD_STEP),
        ({"data": RGB.tobytes()[:-1]}, RejectReason.BAD_SIZE),
        ({"step": 16}, RejectReason.BAD_SIZE),  # step larger than the data holds
        ({"height": 0}, RejectReason.EMPTY_IMAGE),
        ({"width": 0, "data": b""}, RejectReason.EMPTY_IMAGE),
        ({"is_bigendian": 2}, RejectReason.BAD_SIZE),
    ],
)
def test_colour_rejections(over, expected):
    msg = image(RGB, "rgb8")
    for k, v in over.items():
        setattr(msg, k, v)
    assert reason(C.colour_image_to_rgb, msg) is expected


def test_oversized_colour_is_rejected_by_limit():
    limits = C.ConvertLimits(max_pixels=29)
    assert reason(C.colour_image_to_rgb, image(RGB, "rgb8"), limits) is RejectReason.OVERSIZED_IMAGE
    assert C.colour_image_to_rgb(image(RGB, "rgb8"), C.ConvertLimits(max_pixels=30)).shape[0] == 6


def test_depth_16uc1_mm_to_metres_and_big_endian():
    mm = np.array([[0, 1000], [1500, 65535]], np.uint16)
    out = C.depth_image_to_metres(image(mm, "16UC1"))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 1.0], [1.5, 65.535]], rtol=1e-6)
    big = image(mm.astype(">u2"), "16UC1", is_bigendian=1)
    np.testing.assert_allclose(C.depth_image_to_metres(big), out)
    np.testing.assert_allclose(C.depth_image_to_metres(image(mm, "mono16")), out)


def test_depth_32fc1_nan_inf_become_zero():
    d = np.array([[np.nan, 2.0], [np.inf, -np.inf]], np.float32)
    out = C.depth_image_to_metres(image(d, "32FC1"))
    np.testing.assert_array_equal(out, [[0.0, 2.0], [0.0, 0.0]])


@pytest.mark.parametrize(
    "depth",
    [
        np.full((3, 3), np.nan, np.float32),
        np.array([[np.inf, np.nan]], np.float32),
        np.array([[1.0, -0.5]], np.float32),
        np.zeros((2, 2), np.float32),
    ],
)
def test_depth_bad_values_rejected(depth):
    assert reason(C.depth_image_to_metres, image(depth, "32FC1")) is RejectReason.BAD_DEPTH_VALUES


def test_depth_all_zero_16uc1_rejected_and_wrong_encoding():
    z = np.zeros((2, 2), np.uint16)
    assert reason(C.depth_image_to_metres, image(z, "16UC1")) is RejectReason.BAD_DEPTH_VALUES
    assert reason(C.depth_image_to_metres, image(RGB, "rgb8")) is RejectReason.UNKNOWN_ENCODING
    d = np.ones((4, 4), np.float32)
    assert reason(C.depth_image_to_metres, image(d, "32FC1", step=12)) is RejectReason.BAD_STEP


def _compressed(arr: np.ndarray, fmt: str, ext: str):
    from types import SimpleNamespace as NS

    ok, enc = cv2.imencode(ext, arr[:, :, ::-1])
    assert ok
    return NS(header=None, format=fmt, data=enc.tobytes())


def test_compressed_png_roundtrip_and_jpeg_decodes():
    out = C.compressed_image_to_rgb(_compressed(RGB, "png", ".png"))
    np.testing.assert_array_equal(out, RGB)
    big = np.tile(RGB, (8, 8, 1))
    out = C.compressed_image_to_rgb(_compressed(big, "rgb8; jpeg compressed bgr8", ".jpg"))
    assert out.shape == big.shape


def test_compressed_rejections():
    msg = _compressed(RGB, "jpeg", ".jpg")
    msg.data = msg.data[:10]
    assert reason(C.compressed_image_to_rgb, msg) is RejectReason.DECODE_FAILED
    msg.data = b""
    assert reason(C.compressed_image_to_rgb, msg) is RejectReason.EMPTY_IMAGE
    msg = _compressed(RGB, "16UC1; compressedDepth png", ".png")
    assert reason(C.compressed_image_to_rgb, msg) is RejectReason.UNKNOWN_ENCODING
    msg = _compressed(RGB, "png", ".png")
    assert reason(C.compressed_image_to_rgb, msg, C.ConvertLimits(max_pixels=10)) is (
        RejectReason.OVERSIZED_IMAGE
    )


K = [600.0, 0.0, 320.0, 0.0, 610.0, 240.0, 0.0, 0.0, 1.0]


def test_camera_info():
    intr = C.camera_info_to_intrinsics(camera_info(K))
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height) == (
        600.0, 610.0, 320.0, 240.0, 640, 480)
    assert reason(C.camera_info_to_intrinsics, camera_info([0.0] * 9)) is (
        RejectReason.MISSING_INTRINSICS)
    assert reason(C.camera_info_to_intrinsics, camera_info(K, w=0)) is (
        RejectReason.MISSING_INTRINSICS)
    bad = list(K)
    bad[0] = math.nan
    assert reason(C.camera_info_to_intrinsics, camera_info(bad)) is RejectReason.BAD_INTRINSICS
    bad[0] = -1.0
    assert reason(C.camera_info_to_intrinsics, camera_info(bad)) is RejectReason.BAD_INTRINSICS


def test_pose_and_odometry_to_matrix():
    s = math.sqrt(0.5)
    q = (0.0, 0.0, s, s)  # 90 degrees about z
    for msg in (pose_stamped((1, 2, 3), q), odometry((1, 2, 3), q)):
        m = C.pose_msg_to_matrix(msg)
        np.testing.assert_allclose(m[:3, 3], [1, 2, 3])
        np.testing.assert_allclose(m[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)
        np.testing.assert_allclose(m[3], [0, 0, 0, 1])


@pytest.mark.parametrize(
    ("t", "q"),
    [((0, 0, 0), (0, 0, 0, 0)), ((0, 0, 0), (0, 0, 0, 1.1)),
     ((math.nan, 0, 0), (0, 0, 0, 1)), ((0, 0, 0), (math.inf, 0, 0, 1))],
)
def test_bad_pose_rejected(t, q):
    assert reason(C.pose_msg_to_matrix, pose_stamped(t, q)) is RejectReason.BAD_POSE


def test_slightly_off_quaternion_is_normalised():
    m = C.pose_msg_to_matrix(pose_stamped((0, 0, 0), (0, 0, 0, 1.0005)))
    np.testing.assert_allclose(m[:3, :3], np.eye(3), atol=1e-12)


def test_stamp_guard_per_stream():
    g = StampGuard("colour")
    g.check(10)
    g.check(10)  # equal: accepted
    g.check(20)
    with pytest.raises(FrameRejected) as exc:
        g.check(19)
    assert exc.value.reason is RejectReason.STAMP_BACKWARDS
    g.check(21)  # the rejected stamp did not move the guard
    g.reset()
    g.check(0)
