"""The model process's protocol: every message survives the pipe's pickling unchanged, and the
kill policy's decisions (when the node gives up on a model process), without a process."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from spatial_mllm_ros.answering.protocol import (
    Alive,
    AnswerRequest,
    Cancel,
    Failed,
    GeometryRequest,
    Kill,
    KillPolicy,
    Loaded,
    LoadFailed,
    Reply,
    Stop,
    Token,
)
from spatial_mllm_ros.answering.shared_frames import PackedFrames
from spatial_mllm_ros.model.backends.status import SizeStatus, VisionStatus
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.sampling.predicted import PredictedGeometry

PACKED = PackedFrames(segment="psm_test", frames=(), offsets=(0, 4096),
                      shapes=((120, 160, 3), (120, 160, 3)))
VISION = VisionStatus(requested="tensorrt", precision="fp16",
                      sizes=(SizeStatus("112x140", "active", ""),))
RESULT = GenerationResult(text="3", timings_s={"decode": 0.5}, num_new_tokens=2,
                          resized_size=(140, 112), token_ids=[18, 151645])

MESSAGES = [
    AnswerRequest(PACKED, "How many chairs?", 16),
    GeometryRequest(PACKED),
    Cancel(),
    Stop(),
    Loaded("v1.1", VISION),
    Loaded("v1.0", None),
    LoadFailed("checkpoint directory /x does not exist"),
    Token([18, 19], "34"),
    Alive(),
    Reply(RESULT, VISION),
    Failed("RuntimeError: out of memory", None),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_pickle(message: object) -> None:
    back = pickle.loads(pickle.dumps(message))
    assert type(back) is type(message)
    assert back == message


def test_a_geometry_reply_round_trips_with_its_arrays() -> None:
    points = np.arange(2 * 4 * 5 * 3, dtype=np.float32).reshape(2, 4, 5, 3)
    reply = Reply([PredictedGeometry(points[0], np.ones((4, 5), np.float32))], None)
    back = pickle.loads(pickle.dumps(reply))
    assert isinstance(back, Reply) and isinstance(back.result, list)
    np.testing.assert_array_equal(back.result[0].world_points, points[0])
    assert back.result[0].world_points.dtype == np.float32


def test_messages_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Token([1], "a").text = "b"  # type: ignore[misc]


POLICY = KillPolicy(grace_s=0.5, stop_limit_s=30.0, hang_timeout_s=600.0)


@pytest.mark.parametrize(
    ("waited_s", "silent_s", "stopping_s", "stoppable", "verdict"),
    [
        # not yet told to stop: waits however silent, unless nothing can stop it
        (100.0, 50.0, None, True, Kill.WAIT),
        (599.0, 50.0, None, False, Kill.WAIT),
        (601.0, 0.0, None, False, Kill.HANG),
        # told to stop: silent past the grace -> killed; heard from -> left to finish
        (10.0, 0.6, 0.6, True, Kill.SILENT),
        (10.0, 0.6, 0.4, True, Kill.WAIT),  # its grace has not run out yet
        (10.0, 0.1, 5.0, True, Kill.WAIT),  # busy: its heartbeat goes on
        # ... but not past the stop limit, heartbeat or not
        (40.0, 0.1, 30.5, True, Kill.STOP_LIMIT),
        (40.0, 0.1, 29.5, True, Kill.WAIT),
        # silence is judged before the stop limit
        (40.0, 1.0, 31.0, True, Kill.SILENT),
    ],
)
def test_the_kill_policy_decides(waited_s: float, silent_s: float, stopping_s: float | None,
                                 stoppable: bool, verdict: Kill) -> None:
    assert POLICY.decide(waited_s=waited_s, silent_s=silent_s, stopping_s=stopping_s,
                         stoppable=stoppable) is verdict


def test_each_kill_names_its_limit() -> None:
    assert "0.5 s of its deadline or cancel and sent nothing" in POLICY.reason(Kill.SILENT)
    assert "30.0 s of its deadline or cancel" in POLICY.reason(Kill.STOP_LIMIT)
    assert "600.0 s" in POLICY.reason(Kill.HANG)
