"""Missing and silent sensors on /diagnostics (real node process over DDS).

A colour-only camera (no depth publisher, no pose publisher) on a node configured for depth
and poses: the ingest status is WARN and says "no publisher" for both, and the frames lack
depth and pose with the reason ``no_publisher``, not ``late``. Then the full camera: OK. Then
its pose stream stops while its publisher stays: WARN, "pose: silent".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from testkit.camera import TOPICS, Camera
from testkit.processes import ANSWER_NODE_PARAMS, counter, wait_node_state

WARN, OK = 1, 0
#: diagnostics every 0.2 s (ANSWER_NODE_PARAMS): silent after 0.6 s without a message
NODE_PARAMS = {**ANSWER_NODE_PARAMS, "topics.pose": TOPICS["pose"], "pairing.wait_s": 0.3,
               "diagnostics.silent_periods": 3}
WAIT_S = 60.0


@pytest.fixture
def camera(answer_client: Any) -> Any:
    """A colour-only camera (colour and camera info publishers only)."""
    cam = Camera(answer_client.node, kinds=("colour", "camera_info"))
    yield cam
    cam.close()


def stream_until(camera: Camera, monitor: Any, pid: int, kinds: tuple[str, ...],
                 want: Callable[[int, str, dict[str, str]], bool]) -> tuple[str, dict[str, str]]:
    """Publish live frames on ``kinds`` until the node's ingest status (level, message,
    values) satisfies ``want``; that status's message and values."""
    seen: list[tuple[str, dict[str, str]]] = []

    def check(values: dict[str, str]) -> bool:  # under the monitor's lock
        if values.get("pid") == str(pid) and want(monitor.level, monitor.message, values):
            seen.append((monitor.message, dict(values)))
        return bool(seen)

    end = time.monotonic() + WAIT_S
    i = 0
    while time.monotonic() < end:
        camera.publish(i, time.time_ns(), kinds=kinds)
        i += 1
        try:
            monitor.wait_for(check, timeout_s=0.0)
            return seen[0]
        except TimeoutError:
            continue
    raise AssertionError(f"no ingest status as wanted within {WAIT_S} s; last: "
                         f"level {monitor.level} {monitor.message!r} {monitor.latest}")


def test_a_missing_or_silent_sensor_is_flagged_on_diagnostics(
    start_node: Any, monitor: Any, camera: Camera
) -> None:
    proc = start_node(NODE_PARAMS)
    wait_node_state(monitor, proc, "active", timeout=120)
    camera.wait_matched()
    message, values = stream_until(
        camera, monitor, proc.pid, ("colour", "camera_info"),
        lambda level, _m, v: level == WARN and counter(v, "frames.emitted") >= 5)
    assert "depth: no publisher" in message and "pose: no publisher" in message
    assert values["stream.depth.state"] == values["stream.pose.state"] == "no_publisher"
    assert values["stream.colour.state"] == "ok"
    emitted = counter(values, "frames.emitted")
    assert counter(values, "frames.missing.depth.no_publisher") == emitted
    assert counter(values, "frames.missing.depth.late") == 0
    assert counter(values, "frames.missing.pose.no_publisher") == emitted

    full = Camera(camera.node, kinds=("depth", "pose"))  # the sensors come up
    camera.pubs.update(full.pubs)
    camera.wait_matched()
    message, values = stream_until(camera, monitor, proc.pid, tuple(TOPICS),
                                   lambda level, _m, _v: level == OK)
    assert {values[f"stream.{k}.state"] for k in TOPICS} == {"ok"}

    # the pose stream stops; its publisher stays
    message, values = stream_until(camera, monitor, proc.pid, ("colour", "depth", "camera_info"),
                                   lambda level, _m, _v: level == WARN)
    assert "pose: silent" in message, message
    assert values["stream.pose.state"] == "silent" and values["stream.pose.publishers"] == "1"
    assert values["stream.depth.state"] == "ok"
    assert proc.alive()
