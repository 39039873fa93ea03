"""The size of a serialized sensor_msgs/Image, read before its pixels are deserialised (the
node refuses an oversized image from it): every frame_id length (CDR padding), both byte
orders, and bytes that are not an image."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("frame_id", ["", "c", "ca", "cam", "camera", "camera_color_optical"])
def test_size_of_a_serialized_image(frame_id: str) -> None:
    from rclpy.serialization import serialize_message

    from spatial_mllm_ros.ros.conversions import ENCODER, ImageSize, serialized_image_size

    msg = ENCODER.colour_image(np.zeros((7, 13, 3), np.uint8), 123, frame_id)
    data = serialize_message(msg)
    assert serialized_image_size(data) == ImageSize(height=7, width=13)
    # the same fields big-endian (representation id 0x0000)
    name = frame_id.encode() + b"\0"
    pad = b"\0" * ((-(8 + 4 + len(name))) % 4)
    big = (b"\x00\x00\x00\x00" + (0).to_bytes(4, "big") + (123).to_bytes(4, "big")
           + len(name).to_bytes(4, "big") + name + pad
           + (7).to_bytes(4, "big") + (13).to_bytes(4, "big"))
    assert serialized_image_size(big) == ImageSize(height=7, width=13)


@pytest.mark.parametrize("data", [b"", b"\x00\x01\x00\x00", b"\x07\x07" + b"\0" * 30,
                                  b"\x00\x01\x00\x00" + b"\0" * 8 + b"\xff\xff\xff\x7f"])
def test_bytes_that_are_not_an_image_give_none(data: bytes) -> None:
    from spatial_mllm_ros.ros.conversions import serialized_image_size

    assert serialized_image_size(data) is None


@pytest.mark.parametrize("frame_id", ["", "c", "ca", "cam", "camera_color_optical"])
@pytest.mark.parametrize("kind", ["rgb8", "bgr8", "16UC1", "32FC1"])
def test_an_image_read_from_its_bytes_has_the_deserialised_fields(frame_id: str,
                                                                  kind: str) -> None:
    """Every field the converter reads, as rclpy deserialises it; the pixels a view of the
    bytes (no copy); every frame_id length (padding before height and step)."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from spatial_mllm_ros.ros.conversions import ENCODER, read_serialized_image

    rng = np.random.default_rng(len(frame_id))
    stamp = 1_700_000_000_123_456_789
    if kind in ("rgb8", "bgr8"):
        msg = ENCODER.colour_image(rng.integers(0, 255, (5, 9, 3), np.uint8), stamp, frame_id,
                                   kind)
    else:
        msg = ENCODER.depth_image(rng.uniform(0.2, 4.0, (5, 9)), stamp, frame_id, kind)
    data = serialize_message(msg)
    got = read_serialized_image(data)
    want = deserialize_message(data, Image)
    assert got is not None
    assert (got.header.stamp.sec, got.header.stamp.nanosec, got.header.frame_id) == (
        want.header.stamp.sec, want.header.stamp.nanosec, want.header.frame_id)
    assert (got.height, got.width, got.encoding, got.is_bigendian, got.step) == (
        want.height, want.width, want.encoding, want.is_bigendian, want.step)
    assert bytes(got.data) == bytes(want.data)
    assert got.data.obj is data  # a view of the message's bytes


def test_the_core_converts_an_image_read_from_its_bytes_as_the_deserialised_one() -> None:
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from spatial_mllm_ros.core.convert import colour_image_to_rgb, depth_image_to_metres
    from spatial_mllm_ros.ros.conversions import ENCODER, read_serialized_image

    rng = np.random.default_rng(3)
    colour = serialize_message(ENCODER.colour_image(
        rng.integers(0, 255, (6, 10, 3), np.uint8), 5, "cam", "bgr8"))
    depth = serialize_message(ENCODER.depth_image(rng.uniform(0.2, 4.0, (6, 10)), 5, "cam"))
    np.testing.assert_array_equal(colour_image_to_rgb(read_serialized_image(colour)),
                                  colour_image_to_rgb(deserialize_message(colour, Image)))
    np.testing.assert_array_equal(depth_image_to_metres(read_serialized_image(depth)),
                                  depth_image_to_metres(deserialize_message(depth, Image)))


@pytest.mark.parametrize("cut", [3, 17, 30, 40, 50])
def test_a_cut_image_does_not_read(cut: int) -> None:
    """Bytes that end inside a string or the pixel sequence: None (the node then lets
    rclpy deserialise them and the conversion judge the result)."""
    from rclpy.serialization import serialize_message

    from spatial_mllm_ros.ros.conversions import ENCODER, read_serialized_image

    data = serialize_message(ENCODER.colour_image(np.zeros((4, 4, 3), np.uint8), 1, "cam"))
    assert read_serialized_image(data[:cut]) is None
