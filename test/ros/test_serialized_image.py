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
