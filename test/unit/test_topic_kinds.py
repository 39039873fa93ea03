"""The camera topic kinds are one table (``core.topic_kinds.TOPIC_KINDS``): each kind once,
with its parameter, pairing stream, message type and converter; the ingestor, the node's
subscriptions, the bags, the settings and the cameras' fields all derive theirs from it."""

from __future__ import annotations

import numpy as np
import pytest
from testkit.msgs import camera_info, image, odometry, pose_stamped

from spatial_mllm_ros import camera_params as C
from spatial_mllm_ros import params as P
from spatial_mllm_ros.core.convert import DEFAULT_LIMITS
from spatial_mllm_ros.core.encode import MessageEncoder, namespace_factory
from spatial_mllm_ros.core.errors import FrameRejected, RejectReason
from spatial_mllm_ros.core.frame import CameraIntrinsics
from spatial_mllm_ros.core.topic_kinds import (
    BY_KIND,
    COLOUR_KINDS,
    TOPIC_KINDS,
    TOPIC_PARAMS,
    Kind,
    Stream,
    kinds_of,
)
from spatial_mllm_ros.sampling.online import AdmitReason

RGB = np.full((4, 6, 3), 9, np.uint8)
#: one message of each kind (duck-typed, as rosbags gives them)
MESSAGES = {
    Kind.COLOUR: image(RGB, "rgb8"),
    Kind.DEPTH: image(np.full((4, 6), 1500, np.uint16), "16UC1"),
    Kind.CAMERA_INFO: camera_info([5.0, 0, 3, 0, 5.0, 2, 0, 0, 1], 6, 4),
    Kind.POSE: pose_stamped(),
    Kind.ODOMETRY: odometry(),
}


def test_every_kind_is_in_the_table_once_with_a_schema_parameter() -> None:
    assert [t.kind for t in TOPIC_KINDS] == list(Kind)
    for t in TOPIC_KINDS:
        assert t.param == f"topics.{t.kind}" and P.spec(t.param).type is str, t
        assert t.msg_type.count("/msg/") == 1, t
        assert isinstance(t.stream, Stream) and callable(t.convert), t
        assert BY_KIND[t.kind.value] is t  # a plain name finds it
    assert {t.stream for t in TOPIC_KINDS} == set(Stream)


def test_the_schema_has_a_topic_parameter_for_each_kind_and_no_other() -> None:
    names = {s.name for s in P.SCHEMA if s.name.startswith("topics.")}
    assert names == set(TOPIC_PARAMS.values())


def test_what_derives_from_the_table() -> None:
    assert COLOUR_KINDS == ("colour", "colour_compressed")
    assert kinds_of(Stream.POSE) == ("pose", "odometry")
    assert BY_KIND["odometry"].msg_type == "nav_msgs/msg/Odometry"
    assert [t.kind for t in TOPIC_KINDS if not t.continuous] == ["camera_info"]
    assert C.TOPIC_FIELDS == tuple(TOPIC_PARAMS)


def test_each_kind_converts_its_message_to_its_streams_value() -> None:
    values = {k: BY_KIND[k].convert(m, DEFAULT_LIMITS) for k, m in MESSAGES.items()}
    assert values[Kind.COLOUR][1] == "cam" and values[Kind.COLOUR][0].shape == (4, 6, 3)
    np.testing.assert_allclose(values[Kind.DEPTH], 1.5)
    assert isinstance(values[Kind.CAMERA_INFO][0], CameraIntrinsics)
    for kind in (Kind.POSE, Kind.ODOMETRY):
        pose, world = values[kind]
        assert world == "map" and pose.shape == (4, 4)
        np.testing.assert_allclose(pose[:3, 3], [1, 2, 3])


def test_the_compressed_converter_decodes_and_refuses_garbage() -> None:
    enc = MessageEncoder(namespace_factory())
    convert = BY_KIND[Kind.COLOUR_COMPRESSED].convert
    rgb, frame_id = convert(enc.compressed_image(RGB, 5, "cam", "png"), DEFAULT_LIMITS)
    assert frame_id == "cam" and np.array_equal(rgb, RGB)
    bad = enc.compressed_image(RGB, 5, "cam", "png")
    bad.data = b"not an image"
    with pytest.raises(FrameRejected) as err:
        convert(bad, DEFAULT_LIMITS)
    assert err.value.reason is RejectReason.DECODE_FAILED


def test_admission_reasons_are_the_diagnostics_keys() -> None:
    assert f"buffer.admit.{AdmitReason.NEW_COVERAGE}" == "buffer.admit.new_coverage"
    assert len({r.value for r in AdmitReason}) == len(AdmitReason)
