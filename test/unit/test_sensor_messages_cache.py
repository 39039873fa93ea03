"""SensorMessages' cache_images: a replayed view's images are encoded once and sent again
with the same payload under a new header; the messages equal the ones encoded each time."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_mllm_ros.core.encode import EncodeError, MessageEncoder, namespace_factory
from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame
from spatial_mllm_ros.synthetic.sensor_messages import SensorMessages
from spatial_mllm_ros.synthetic.sensor_timing import SensorEvent

ENC = MessageEncoder(namespace_factory())
KINDS = {"colour", "depth"}


def _frames(n: int) -> list[Frame]:
    rng = np.random.default_rng(0)
    intr = CameraIntrinsics(4.0, 4.0, 1.5, 1.5, 4, 4)
    return [Frame(i * 33_000_000, "cam", rng.integers(0, 255, (4, 4, 3), np.uint8),
                  rng.uniform(0.3, 4.0, (4, 4)).astype(np.float32), intr, np.eye(4), "map", i)
            for i in range(n)]


def _fields(msg: object) -> dict[str, object]:
    out = dict(vars(msg))
    out["header"] = (msg.header.stamp.sec, msg.header.stamp.nanosec,  # type: ignore[attr-defined]
                     msg.header.frame_id)  # type: ignore[attr-defined]
    out["data"] = bytes(np.asarray(out["data"], np.uint8))
    return out


@pytest.mark.parametrize("fmt", ["raw", "jpeg"])
def test_a_replayed_view_has_the_same_messages_as_encoded_each_time(fmt: str) -> None:
    frames = _frames(3)
    kinds = KINDS | ({"colour_compressed"} if fmt != "raw" else set())
    cached = SensorMessages(ENC, frames, kinds, colour_format=fmt, cache_images=True)
    fresh = SensorMessages(ENC, frames, kinds, colour_format=fmt)
    # ping-pong over 3 views: events 0..7 show views 0 1 2 1 0 1 2 1
    for index in range(8):
        for kind in ("colour", "depth"):
            event = SensorEvent(0, kind, 1_000_000_000 + index * 33_000_000, index)
            got, want = cached.messages(event), fresh.messages(event)
            assert [k for k, _ in got] == [k for k, _ in want]
            for (_, a), (_, b) in zip(got, want, strict=True):
                assert _fields(a) == _fields(b), (index, kind)


def test_the_payload_is_encoded_once_per_view() -> None:
    cached = SensorMessages(ENC, _frames(3), KINDS, cache_images=True)
    first = cached.messages(SensorEvent(0, "depth", 5, 1))[0][1]
    again = cached.messages(SensorEvent(0, "depth", 9, 3))[0][1]  # view 1 again
    other = cached.messages(SensorEvent(0, "depth", 9, 2))[0][1]
    assert again.data is first.data and other.data is not first.data
    assert (first.header.stamp.nanosec, again.header.stamp.nanosec) == (5, 9)


def test_only_image_types_are_restamped() -> None:
    with pytest.raises(EncodeError, match="not an image message type"):
        ENC.restamped_image("sensor_msgs/msg/CameraInfo", object(), 0)
