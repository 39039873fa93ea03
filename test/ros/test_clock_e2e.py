"""Clocks as ROS systems have them, end to end over DDS: a future-stamped frame, a bad
``nanosec``, a backwards jump (a bag replayed after live data) -- later good frames are
accepted, and the node answers from them; and live data again after the bag, a jump forward
of years: a new time base too, answered only from the live frames.

The node runs as a real process; the test process publishes a synthetic walkthrough (colour,
depth, camera info, pose) with the stamps each case needs, through the project's codec.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from testkit.camera import TOPICS, Camera
from testkit.processes import (
    ANSWER_NODE_PARAMS,
    counter,
    node_status,
    stamps_ns,
    wait_node_state,
)

from spatial_mllm_ros.answering.types import AnswerStatus

S = 1_000_000_000


@pytest.fixture
def camera(answer_client: Any) -> Any:
    cam = Camera(answer_client.node)
    yield cam
    cam.close()


@pytest.fixture
def proc(start_node: Any, monitor: Any, camera: Camera) -> Any:
    """An active node with poses from the camera's topic, subscribed to all of it."""
    node = start_node({**ANSWER_NODE_PARAMS, "topics.pose": TOPICS["pose"],
                       "pairing.wait_s": 0.3})
    wait_node_state(monitor, node, "active", timeout=120)
    camera.wait_matched()
    return node


def test_bad_stamps_are_rejected_and_a_replay_after_live_data_is_a_new_time_base(
    proc: Any, monitor: Any, answer_client: Any, camera: Camera
) -> None:
    # live frames, stamped when they are sent (as a driver does), one stamped ten years ahead
    # and one with nanosec = 4e9 among them
    for i in range(8):
        camera.publish(i, time.time_ns())
    camera.publish(8, time.time_ns() + 10 * 365 * 86400 * S)
    camera.publish(9, time.time_ns(), nanosec=4_000_000_000)
    for i in range(10, 16):
        camera.publish(i, time.time_ns())
    now = time.time_ns()
    live = node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 14)
    assert counter(live, "in.colour.rejected.stamp_future") == 1  # only the ten-years one
    assert counter(live, "in.colour.rejected.invalid_stamp") == 1
    assert counter(live, "in.colour.rejected.stamp_backwards") == 0  # nothing poisoned
    assert counter(live, "frames.complete") == 14

    # the same camera replayed from a bag recorded an hour earlier
    back = now - 3600 * S
    replayed = [back + i * S // 10 for i in range(8)]
    for i, stamp in enumerate(replayed):
        camera.publish(i, stamp)
    after = node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 22)
    assert counter(after, "clock.time_resets") == 1
    assert counter(after, "buffer.frames") <= 8  # the live frames were cleared

    ans = answer_client.ask("How many chairs are in this room?", sampling_strategy="uniform")
    assert ans.status == AnswerStatus.OK, ans.error
    assert stamps_ns(ans) and set(stamps_ns(ans)) <= set(replayed)
    assert proc.alive()
    log = proc.log.read_text()
    assert log.count("new time base") == 1  # logged once
    assert np.all(np.diff(stamps_ns(ans)) > 0)


def test_live_data_after_a_replayed_bag_is_a_new_time_base_too(
    proc: Any, monitor: Any, answer_client: Any, camera: Camera
) -> None:
    for i in range(8):  # live
        camera.publish(i, time.time_ns())
    node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 8)
    bag = 1_700_000_000 * S  # a bag recorded in 2023, replayed: a step back of years
    for i in range(8):
        camera.publish(i, bag + i * S // 10)
    replayed = node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 16)
    assert counter(replayed, "clock.time_resets") == 1
    live = []
    for i in range(8):  # live again: a jump forward of years
        live.append(time.time_ns())
        camera.publish(i, live[-1])
    after = node_status(monitor, proc, lambda v: counter(v, "frames.emitted") == 24)
    assert counter(after, "clock.time_resets") == 2
    assert counter(after, "clock.jumps_forward") == 1
    assert counter(after, "buffer.frames") <= 8  # the bag's frames were cleared

    ans = answer_client.ask("How many chairs are in this room?", sampling_strategy="uniform",
                            frame_budget=8)
    assert ans.status == AnswerStatus.OK, ans.error
    assert stamps_ns(ans) and set(stamps_ns(ans)) <= set(live), "bag stamps in a live answer"
    assert proc.log.read_text().count("new time base") == 2  # each logged once
