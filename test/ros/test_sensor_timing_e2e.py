"""Geometry survives real sensor timing, end to end over DDS.

The stream publisher (a separate process) sends a 30 Hz 640x480 walkthrough for 10 s the way
a robot's sensors deliver it: poses at 100 Hz on their own clock, published 200-300 ms late
with jitter; camera info at 1 Hz, starting 2 s late; depth 50 ms after its colour image. The
node (a separate process) must give at least 99 % of the colour frames it received depth,
pose and intrinsics, with the accounting identity exact:

    in.colour.accepted == frames.emitted + pair.colour.dropped + pair.colour.pending
    frames.emitted == frames.with_<partner> + sum(frames.missing.<partner>.<reason>)
"""

from __future__ import annotations

import json
from typing import Any

from testkit.processes import counter, node_status, run_publisher, wait_node_state

NODE_PARAMS = {
    "qos.reliability": "reliable",
    "qos.depth": 100,
    "diagnostics.period_s": 0.2,
    "image.max_pixels": 640 * 480,
    # pairing (pairing.wait_s, the pose and camera info waits) and the executor as shipped
}
REALISTIC = (
    "--reliability", "reliable", "--qos-depth", "100", "--rate", "30", "--count", "300",
    "--pose-rate", "100", "--pose-delay-ms", "200", "--pose-jitter-ms", "100",
    "--info-rate", "1", "--info-start-s", "2", "--depth-lag-ms", "50", "--seed", "7",
)


def missing(v: dict[str, str], partner: str) -> int:
    prefix = f"frames.missing.{partner}."
    return sum(int(x) for k, x in v.items() if k.startswith(prefix))


def test_realistic_timing_keeps_depth_pose_and_intrinsics(start_node: Any, monitor: Any) -> None:
    node = start_node(NODE_PARAMS)
    wait_node_state(monitor, node, "active", timeout=120)
    summary = run_publisher(*REALISTIC, timeout=180)
    assert summary["published"]["colour"] == 300 and summary["good_frames"] == 300
    v = node_status(
        monitor, node,
        lambda v: counter(v, "in.colour.received") >= 300
        and counter(v, "pair.colour.pending") == 0,
        timeout=60)
    received = counter(v, "in.colour.received")
    accepted = counter(v, "in.colour.accepted")
    emitted = counter(v, "frames.emitted")
    assert received == 300 and accepted == received
    assert accepted == emitted + counter(v, "pair.colour.dropped") + counter(
        v, "pair.colour.pending")
    for partner, with_key in (("depth", "frames.with_depth"), ("pose", "frames.with_pose"),
                              ("camera_info", "frames.with_intrinsics")):
        assert emitted == counter(v, with_key) + missing(v, partner), partner
    complete = counter(v, "frames.complete")
    assert complete >= 0.99 * received, json.dumps({
        **{k: x for k, x in v.items() if "missing" in k or k.startswith(("in.", "poses."))},
        "published": summary["published"]})
    assert node.alive()
