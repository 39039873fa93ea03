"""End to end over DDS: a separate publisher process streams 30 Hz 640x480 RGB-D to the node.

Accounting identity checked (exact, from /diagnostics once the stream has drained):

    published[t] == in.<t>.received                      (reliable QoS in these tests)
    in.<t>.received == in.<t>.accepted + sum(in.<t>.rejected.<reason>)
    in.colour.accepted + in.colour_compressed.accepted
        == frames.emitted + pair.colour.dropped + pair.colour.pending  (pending drained to 0)

    frames.emitted == sum(buffer.admit.<decision>)

so every published colour image is either a frame the buffer decided on (admitted, later
perhaps evicted, or turned away as redundant), a rejection counted by reason, or a pairing
drop.
"""

from __future__ import annotations

from typing import Any

import pytest
from testkit.processes import counter, node_status, run_publisher, wait_node_state

TOPICS = ("colour", "colour_compressed", "depth", "camera_info", "pose")
COMPRESSED = "/camera/camera/color/image_raw/compressed"
NODE_PARAMS = {
    "qos.reliability": "reliable",
    "qos.depth": 100,
    "diagnostics.period_s": 0.2,
    "image.max_pixels": 640 * 480,
    "topics.colour_compressed": COMPRESSED,
}
PUB_ARGS = ("--reliability", "reliable", "--qos-depth", "100", "--rate", "30",
            "--colour-compressed-topic", COMPRESSED)


def rejected(v: dict[str, str], topic: str) -> int:
    prefix = f"in.{topic}.rejected."
    return sum(int(x) for k, x in v.items() if k.startswith(prefix))


def drained(before: dict[str, str], published: dict[str, int]):
    def pred(v: dict[str, str]) -> bool:
        return counter(v, "pair.colour.pending") == 0 and all(
            delta(v, before, f"in.{t}.received") >= published.get(t, 0) for t in TOPICS)
    return pred


def delta(after: dict[str, str], before: dict[str, str], key: str) -> int:
    return counter(after, key) - counter(before, key)


@pytest.fixture
def node(start_node, monitor):
    proc = start_node(NODE_PARAMS)
    wait_node_state(monitor, proc, "active")
    return proc


def stream(monitor: Any, node: Any, *args: str) -> tuple[dict[str, str], dict[str, str], dict]:
    """Counters of ``node`` before and after (drained) one publisher run; its summary."""
    before = node_status(monitor, node, timeout=10, fresh=True)
    summary = run_publisher(*PUB_ARGS, *args)
    try:
        after = node_status(monitor, node, drained(before, summary["published"]))
    except AssertionError as err:
        raise AssertionError(f"published {summary}\n{err}") from err
    return before, after, summary


def check_accounting(before, after, summary) -> None:
    pub = summary["published"]
    for t in TOPICS:
        rec = delta(after, before, f"in.{t}.received")
        assert rec == pub.get(t, 0), f"{t}: received {rec} != published {pub.get(t, 0)}"
        acc = delta(after, before, f"in.{t}.accepted")
        rej = rejected(after, t) - rejected(before, t)
        assert rec == acc + rej, f"{t}: received {rec} != accepted {acc} + rejected {rej}"
    colour_acc = sum(delta(after, before, f"in.{t}.accepted") for t in ("colour",
                                                                         "colour_compressed"))
    emitted = delta(after, before, "frames.emitted")
    dropped = delta(after, before, "pair.colour.dropped")
    assert counter(after, "pair.colour.pending") == 0
    assert colour_acc == emitted + dropped


def test_30hz_rgbd_stream_every_frame_accounted(node, monitor):
    before, after, summary = stream(monitor, node, "--count", "90")
    check_accounting(before, after, summary)
    assert summary["published"]["colour"] == 90
    assert delta(after, before, "frames.emitted") + delta(after, before, "pair.colour.dropped") \
        == 90
    assert sum(rejected(after, t) - rejected(before, t) for t in TOPICS) == 0
    assert delta(after, before, "frames.with_depth") > 0
    assert delta(after, before, "frames.complete") > 0
    # every emitted frame got one decision of the space-aware buffer (admitted by new
    # coverage / interval / colour-only, or turned away as redundant / throttled)
    decisions = sum(int(v) for k, v in after.items() if k.startswith("buffer.admit."))
    assert decisions == counter(after, "frames.emitted")
    assert counter(after, "buffer.frames") + counter(after, "buffer.evicted") <= decisions
    assert counter(after, "buffer.bytes") > 0
    assert node.alive()


def test_malformed_streams_rejected_by_reason_and_node_survives(node, monitor):
    from spatial_mllm_ros.synthetic.faults import INJECT_KINDS  # kind -> (topic, reason)

    kinds = list(INJECT_KINDS)
    before, after, summary = stream(
        monitor, node, "--count", "3", "--inject", ",".join(kinds), "--inject-count", "3",
        "--good-after", "20")
    check_accounting(before, after, summary)
    expected: dict[tuple[str, str], int] = {}
    for kind in kinds:
        key = INJECT_KINDS[kind]
        expected[key] = expected.get(key, 0) + 3
    for (topic, reason), count in expected.items():
        got = delta(after, before, f"in.{topic}.rejected.{reason}")
        assert got == count, f"{topic}/{reason}: counted {got}, injected {count}"
    total_rejected = sum(rejected(after, t) - rejected(before, t) for t in TOPICS)
    assert total_rejected == 3 * len(kinds)  # nothing else was rejected
    assert node.alive(), node.output()
    assert counter(after, "callback_errors") == 0
    assert delta(after, before, "frames.emitted") == summary["good_frames"] == 23
    # and it keeps ingesting good frames afterwards
    before2, after2, summary2 = stream(monitor, node, "--count", "10")
    check_accounting(before2, after2, summary2)
    assert delta(after2, before2, "frames.emitted") == 10
    assert node.alive()


def test_publisher_waits_for_the_named_node_not_for_any_subscriber(node, monitor):
    """Every camera topic has a subscriber (the node under test), yet a publisher told to wait
    for another node gives up unmatched; told to wait for this node, it starts matched."""
    other = run_publisher(*PUB_ARGS, "--count", "1", "--wait-subscribers", "2",
                          node="not_the_node_under_test", expect_matched=False)
    assert other["subscribers_matched"] is False
    ours = run_publisher(*PUB_ARGS, "--count", "1")  # waits for spatial_mllm
    assert ours["subscribers_matched"] is True
    assert node.alive()
