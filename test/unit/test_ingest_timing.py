"""Real sensor timing: poses as a time series, late partners, latched camera info, clocks.

Each test feeds the ingestor messages in the order and at the times a real robot delivers
them (poses at their own rate and late, camera info late and rare, depth lagging colour) and
checks what every frame ends with, the reasons counted for what it lacks, and the accounting.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from testkit.fakes import FifoStore
from testkit.msgs import camera_info, image, pose_stamped

from spatial_mllm_ros.core.clock import ClockConfig
from spatial_mllm_ros.core.ingest import IngestConfig, Ingestor
from spatial_mllm_ros.core.pairing import PairingConfig, PartnerSpec
from spatial_mllm_ros.core.partners import PoseConfig
from spatial_mllm_ros.core.poses import (
    PoseHistory,
    matrix_to_quaternion,
    quaternion_to_matrix,
    slerp,
)

MS = 1_000_000
S = 1_000_000_000
T0 = 1_700_000_000 * S
K = [500.0, 0, 31.5, 0, 500.0, 23.5, 0, 0, 1]
RGB = np.full((48, 64, 3), 100, np.uint8)
MM = np.full((48, 64), 1500, np.uint16)


def config(wait_ms: int = 1000, info_wait_ms: int = 5000, **clock: object) -> IngestConfig:
    return IngestConfig(
        pairing=PairingConfig(slop_ns=20 * MS, wait_ns=wait_ms * MS, queue_size=400,
                              partners=(PartnerSpec("depth", "consume"),)),
        poses=PoseConfig(span_ns=10 * S, max_extrapolation_ns=50 * MS, max_gap_ns=500 * MS),
        info_wait_ns=info_wait_ms * MS,
        clock=ClockConfig(**clock),  # type: ignore[arg-type]
    )


def yaw_pose(t_s: float) -> np.ndarray:
    """The true camera pose at time t: moving along x at 0.5 m/s, turning at 0.3 rad/s."""
    a = 0.3 * t_s
    m = np.eye(4)
    m[:3, :3] = [[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]]
    m[:3, 3] = [0.5 * t_s, 0.0, 1.0]
    return m


def pose_msg(stamp_ns: int):
    m = yaw_pose((stamp_ns - T0) / S)
    q = matrix_to_quaternion(m[:3, :3])
    return pose_stamped(tuple(m[:3, 3]), tuple(q), stamp_ns=stamp_ns)


def realistic_stream(seconds: float = 4.0, pose_delay_ms: int = 300, info_start_s: float = 2.0):
    """(arrival_ns, topic, msg) of a 30 Hz camera: depth 50 ms after colour, pose at 100 Hz
    published ``pose_delay_ms`` (+ up to 50 ms jitter) late, camera info at 1 Hz from
    ``info_start_s``."""
    rng = np.random.default_rng(0)
    events = []
    n = int(seconds * 30)
    for i in range(n):
        t = T0 + round(i * S / 30)
        events.append((t + 5 * MS, "colour", image(RGB, "rgb8", t)))
        events.append((t + 50 * MS, "depth", image(MM, "16UC1", t)))
    for j in range(int(seconds * 100) + 30):
        t = T0 + j * 10 * MS
        events.append((t + (pose_delay_ms + int(rng.integers(0, 50))) * MS, "pose", pose_msg(t)))
    for k in range(int(seconds) + 1):
        t = T0 + round((info_start_s + k) * S)
        events.append((t + 10 * MS, "camera_info", camera_info(K, 64, 48, t)))
    events.sort(key=lambda e: e[0])
    return n, events


def run(ing: Ingestor, events, end_ns: int) -> None:
    for arrival, topic, msg in events:
        ing.poll(arrival)
        ing.ingest(topic, msg, arrival, arrival)
    ing.poll(end_ns)


def accounting(c: dict[str, int]) -> None:
    assert c["in.colour.accepted"] == (
        c.get("frames.emitted", 0) + c["pair.colour.dropped"] + c["pair.colour.pending"])
    for partner in ("depth", "pose", "camera_info"):
        missing = sum(v for k, v in c.items() if k.startswith(f"frames.missing.{partner}."))
        assert c.get("frames.emitted", 0) == c.get(f"frames.with_{partner}".replace(
            "camera_info", "intrinsics"), 0) + missing, partner


def test_realistic_timing_gives_every_frame_depth_pose_and_intrinsics() -> None:
    store = FifoStore()
    ing = Ingestor(store, config())
    n, events = realistic_stream()
    run(ing, events, T0 + 20 * S)
    c = ing.counters()
    assert c["frames.emitted"] == n and c["frames.complete"] == n
    for f in store.snapshot():  # the pose interpolated at the image stamp is the true one
        np.testing.assert_allclose(f.pose, yaw_pose((f.stamp_ns - T0) / S), atol=1e-6)
        assert f.intrinsics is not None and f.intrinsics.fx == 500.0
    accounting(c)


def test_short_waits_lose_partners_and_say_why() -> None:
    """The old behaviour (a 100 ms wait, no wait for camera info): most frames lose their pose
    and the first ones their intrinsics -- now counted with the reason."""
    store = FifoStore()
    ing = Ingestor(store, config(wait_ms=100, info_wait_ms=100))
    n, events = realistic_stream()
    run(ing, events, T0 + 20 * S)
    c = ing.counters()
    assert c["frames.emitted"] == n
    assert c["frames.missing.pose.late"] > n // 2
    assert c["frames.missing.camera_info.late"] >= 2 * 30 - 5
    assert c["frames.complete"] < n // 2
    accounting(c)


def test_pose_gap_and_too_old_are_not_interpolated() -> None:
    store = FifoStore()
    ing = Ingestor(store, config(wait_ms=200))
    ing.ingest("camera_info", camera_info(K, 64, 48, T0), T0, T0)
    ing.ingest("pose", pose_msg(T0), T0, T0)
    ing.ingest("pose", pose_msg(T0 + 2 * S), T0 + 2 * S, T0 + 2 * S)  # a 2 s dropout
    ing.ingest("colour", image(RGB, "rgb8", T0 + S), T0 + 2 * S, T0 + 2 * S)
    ing.poll(T0 + 3 * S)
    (f,) = store.snapshot()
    assert f.pose is None
    assert ing.counters()["frames.missing.pose.gap"] == 1


def test_camera_info_is_latched_per_camera() -> None:
    store = FifoStore()
    ing = Ingestor(store, config())
    ing.ingest("camera_info", camera_info(K, 64, 48, T0), T0, T0)
    for i in range(5):  # no more camera info: the latched one serves every frame
        t = T0 + (i + 1) * 33 * MS
        ing.ingest("pose", pose_msg(t), t, t)
        ing.ingest("colour", image(RGB, "rgb8", t), t, t)
        ing.ingest("depth", image(MM, "16UC1", t), t, t)
    assert ing.counters()["frames.complete"] == 5
    assert all(f.intrinsics is not None for f in store.snapshot())


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [(T0 + 10 * 365 * 86400 * S, "stamp_future"), (None, "invalid_stamp")],
)
def test_bad_clocks_are_rejected_and_do_not_poison_the_stream(stamp, reason) -> None:
    store = FifoStore()
    ing = Ingestor(store, config(wait_ms=0, info_wait_ms=0))
    msg = image(RGB, "rgb8", T0 if stamp is None else stamp)
    if stamp is None:
        msg.header.stamp.nanosec = 4_000_000_000  # not "+4 s"
    res = ing.ingest("colour", msg, T0, T0)
    assert res.rejected is not None and res.rejected.reason.value == reason
    for i in range(3):  # later good frames are accepted
        t = T0 + i * 33 * MS
        ing.ingest("colour", image(RGB, "rgb8", t), t, t)
    ing.flush()
    c = ing.counters()
    assert c[f"in.colour.rejected.{reason}"] == 1 and c["frames.emitted"] == 3


def test_a_backwards_jump_is_a_new_time_base() -> None:
    """A bag replayed after live data: stamps 1 h earlier. Logged once, counted, the old
    buffer cleared (default), the new frames accepted with interpolated poses."""
    store = FifoStore()
    ing = Ingestor(store, config(wait_ms=0, info_wait_ms=0))
    _, live = realistic_stream(seconds=1.0, pose_delay_ms=0, info_start_s=0.0)
    run(ing, live, T0 + 2 * S)
    assert len(store) == 30
    back = T0 - 3600 * S
    ing.ingest("camera_info", camera_info(K, 64, 48, back), back, back)
    ing.ingest("pose", pose_msg(back), back, back)
    ing.ingest("pose", pose_msg(back + 100 * MS), back, back)
    ing.ingest("depth", image(MM, "16UC1", back + 50 * MS), back, back)
    ing.ingest("colour", image(RGB, "rgb8", back + 50 * MS), back, back)
    c = ing.counters()
    assert c["clock.time_resets"] == 1
    events = ing.take_events()
    assert len(events) == 1 and "new time base" in events[0] and "cleared" in events[0]
    assert ing.take_events() == []  # logged once
    (f,) = store.snapshot()
    assert f.stamp_ns == back + 50 * MS and f.has_geometry
    assert not any(k.endswith("stamp_backwards") for k in c)  # nothing rejected
    # a small step back is still a reordered message, not a new time base
    ing.ingest("colour", image(RGB, "rgb8", back), back, back)
    assert ing.counters()["in.colour.rejected.stamp_backwards"] == 1
    assert ing.counters()["clock.time_resets"] == 1


def test_keep_buffer_at_a_new_time_base() -> None:
    store = FifoStore()
    ing = Ingestor(store, config(wait_ms=0, info_wait_ms=0, on_time_reset="keep"))
    ing.ingest("colour", image(RGB, "rgb8", T0), T0, T0)
    ing.ingest("colour", image(RGB, "rgb8", T0 - 3600 * S), T0, T0)
    ing.flush()
    assert len(store) == 2 and ing.counters()["clock.time_resets"] == 1


def test_a_forward_jump_past_every_stream_is_a_new_time_base() -> None:
    """Live data after a replayed bag: years ahead of every stream. Counted and the bag's
    frames cleared; a stream that resumes alone after a gap (the others went on) is no jump."""
    store = FifoStore()
    ing = Ingestor(store, config(wait_ms=0, info_wait_ms=0, jump_forward_ns=600 * S))
    bag = T0 - 3 * 365 * 86400 * S  # a bag recorded three years earlier
    ing.ingest("pose", pose_msg(bag), bag, bag)
    for i in range(3):
        ing.ingest("colour", image(RGB, "rgb8", bag + i * 33 * MS), bag, bag)
    ing.flush()
    assert len(store) == 3
    ing.ingest("colour", image(RGB, "rgb8", T0), T0, T0)  # live: years later
    ing.flush()
    c = ing.counters()
    assert c["clock.time_resets"] == 1 and c["clock.jumps_forward"] == 1
    assert [f.stamp_ns for f in store.snapshot()] == [T0]
    (event,) = ing.take_events()
    assert "ahead of every stream" in event and "cleared" in event
    # the pose stream stops for 20 minutes while colour goes on: its next pose is no jump
    for k in range(1, 41):
        t = T0 + k * 30 * S
        ing.ingest("colour", image(RGB, "rgb8", t), t, t)
    ing.ingest("pose", pose_msg(T0 + 1200 * S), T0, T0)
    assert ing.counters()["clock.time_resets"] == 1


def test_no_forward_jump_when_the_threshold_is_zero() -> None:
    store = FifoStore()
    ing = Ingestor(store, config(wait_ms=0, info_wait_ms=0, jump_forward_ns=0))
    ing.ingest("colour", image(RGB, "rgb8", T0 - 3600 * S), T0, T0)
    ing.ingest("colour", image(RGB, "rgb8", T0), T0, T0)
    ing.flush()
    assert len(store) == 2 and ing.counters().get("clock.time_resets", 0) == 0


def test_a_partner_without_publisher_is_no_publisher_not_late() -> None:
    """The node passes each topic's publisher count: frames lacking depth (no depth
    publisher) say ``no_publisher``; a stream with a publisher but no message for the silence
    limit is ``silent``; camera info (may be latched once) is never silent."""
    store = FifoStore()
    ing = Ingestor(store, config(wait_ms=100, info_wait_ms=0))
    facts = {"colour": 1, "depth": 0, "camera_info": 1, "pose": 1}
    ing.stream_health(facts, T0, S)
    ing.ingest("camera_info", camera_info(K, 64, 48, T0), T0, T0)
    ing.ingest("colour", image(RGB, "rgb8", T0), T0, T0)
    ing.poll(T0 + 200 * MS)  # its wait expired: no depth, no pose
    c = ing.counters()
    assert c["frames.missing.depth.no_publisher"] == 1 and "frames.missing.depth.late" not in c
    assert c["frames.missing.pose.no_pose"] == 1  # a pose publisher exists: not counted
    health = {h.kind: h for h in ing.stream_health(facts, T0 + 2 * S, S)}
    assert health["depth"].state == "no_publisher"
    assert health["depth"].describe() == "depth: no publisher"
    assert health["colour"].state == "silent" and health["colour"].received == 1
    assert health["pose"].state == "silent" and health["pose"].received == 0
    assert health["camera_info"].state == "ok"  # silent too, but latched info is enough
    assert "silent (nothing received for 2.0 s)" in health["pose"].describe()
    ing.ingest("colour", image(RGB, "rgb8", T0 + 2 * S), T0 + 2 * S, T0 + 2 * S)
    health = {h.kind: h for h in ing.stream_health(facts, T0 + 2 * S, S)}
    assert health["colour"].state == "ok"


# --- the pose history on its own ----------------------------------------------------------------


def test_slerp_and_quaternions() -> None:
    a = matrix_to_quaternion(yaw_pose(0.0)[:3, :3])
    b = matrix_to_quaternion(yaw_pose(2.0)[:3, :3])
    mid = quaternion_to_matrix(slerp(a, b, 0.5))
    np.testing.assert_allclose(mid, yaw_pose(1.0)[:3, :3], atol=1e-12)
    np.testing.assert_allclose(slerp(a, -b, 0.25), slerp(a, b, 0.25), atol=1e-12)  # short arc


def test_history_statuses() -> None:
    h = PoseHistory(span_ns=1 * S, max_extrapolation_ns=10 * MS, max_gap_ns=200 * MS)
    assert h.lookup(0).status == "no_pose"
    for t in (100, 0, 200):  # out of order
        h.insert(t * MS, yaw_pose(t / 1000), "map")
    assert h.lookup(50 * MS).status == "interpolated"
    np.testing.assert_allclose(h.lookup(150 * MS).pose, yaw_pose(0.15), atol=1e-9)
    assert h.lookup(100 * MS).status == "exact"
    assert h.lookup(205 * MS).status == "held"
    assert h.lookup(300 * MS).status == "pending" and not h.covers(300 * MS)
    assert h.covers(200 * MS)
    h.insert(600 * MS, yaw_pose(0.6), "map")
    assert h.lookup(400 * MS).status == "gap"
    h.insert(700 * MS, yaw_pose(0.7), "odom")
    assert h.lookup(650 * MS).status == "frame_change"
    h.insert(1500 * MS, yaw_pose(1.5), "odom")  # span 1 s: samples before 0.5 s are dropped
    assert h.oldest_ns == 600 * MS and h.lookup(100 * MS).status == "too_old"
    h.clear()
    assert len(h) == 0 and h.lookup(600 * MS).status == "no_pose"
