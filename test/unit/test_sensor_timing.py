"""synthetic.sensor_timing and sensor_messages: realistic timing of a synthetic RGB-D stream.

Rates, delays and their bounds, the late camera info, the depth lag, drops, per-stream order,
reproducibility, and poses at their own stamps that carry the true camera pose: interpolating
two neighbouring pose messages at an image's stamp gives that image's pose.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from spatial_mllm_ros.core.encode import MessageEncoder, namespace_factory
from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame
from spatial_mllm_ros.synthetic import generate_layout, walkthrough_poses
from spatial_mllm_ros.synthetic.errors import SensorTimingError
from spatial_mllm_ros.synthetic.sensor_messages import SensorMessages
from spatial_mllm_ros.synthetic.sensor_timing import (
    SensorEvent,
    SensorSchedule,
    SensorTiming,
)
from spatial_mllm_ros.synthetic.trajectory import interpolate_pose

MS = 1_000_000
PERIOD = round(1e9 / 30)  # 30 Hz colour
ENC = MessageEncoder(namespace_factory())
REALISTIC = SensorTiming(pose_rate_hz=100, pose_delay_ms=200, pose_jitter_ms=100,
                         info_rate_hz=1, info_start_s=2, depth_lag_ms=50, seed=3)


def colour_stamps(n: int) -> list[int]:
    return [i * PERIOD for i in range(n)]


def events(timing: SensorTiming, n: int = 300) -> tuple[list[SensorEvent], SensorSchedule]:
    sched = SensorSchedule(colour_stamps(n), timing)
    return list(sched), sched


def of(evs: list[SensorEvent], kind: str) -> list[SensorEvent]:
    return [e for e in evs if e.kind == kind]


# ----------------------------------------------------------------- the schedule
def test_default_timing_publishes_every_message_of_a_frame_with_its_stamp_at_once() -> None:
    evs, _ = events(SensorTiming(), 5)
    assert [(e.kind, e.stamp_ns, e.publish_ns, e.frame) for e in evs] == [
        (k, t, t, i) for i, t in enumerate(colour_stamps(5))
        for k in ("colour", "depth", "camera_info", "pose")]


def test_events_come_in_publish_order_and_each_stream_in_stamp_order() -> None:
    evs, _ = events(REALISTIC)
    publish = [e.publish_ns for e in evs]
    assert publish == sorted(publish)
    for kind in ("colour", "depth", "camera_info", "pose"):
        stamps = [e.stamp_ns for e in of(evs, kind)]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), kind


def test_poses_at_their_own_rate_on_their_own_clock_bracket_every_image() -> None:
    evs, sched = events(REALISTIC)
    poses = [e.stamp_ns for e in of(evs, "pose")]
    gaps = np.diff(poses)
    assert np.all(np.abs(gaps - 10 * MS) <= 1)  # 100 Hz
    colour = colour_stamps(300)
    assert not set(poses) & set(colour)  # a phase of its own (seeded), not the image stamps
    assert poses[0] < colour[0] and poses[-1] >= colour[-1]
    assert poses[1] > colour[0] and poses[-2] < colour[-1]  # no more than needed
    assert sched.scheduled["pose"] == len(poses)


def test_pose_delays_within_delay_and_delay_plus_jitter() -> None:
    delays = np.array([e.publish_ns - e.stamp_ns for e in of(events(REALISTIC)[0], "pose")])
    assert delays.min() >= 200 * MS and delays.max() <= 300 * MS
    assert delays.max() > delays.min()  # jittered


def test_one_pose_per_image_with_its_stamp_when_the_pose_rate_is_zero() -> None:
    evs, _ = events(SensorTiming(pose_delay_ms=120, pose_jitter_ms=20), 50)
    poses = of(evs, "pose")
    assert [e.stamp_ns for e in poses] == colour_stamps(50)
    assert [e.frame for e in poses] == list(range(50))
    assert all(120 * MS <= e.publish_ns - e.stamp_ns <= 140 * MS for e in poses)


def test_camera_info_at_its_rate_starting_late() -> None:
    evs, _ = events(REALISTIC)  # 10 s of images
    info = of(evs, "camera_info")
    assert [e.stamp_ns for e in info] == [s * 1_000_000_000 for s in range(2, 10)]
    assert all(e.publish_ns == e.stamp_ns for e in info)
    # each carries the intrinsics of the last image at or before it
    assert all(colour_stamps(300)[e.frame] <= e.stamp_ns < colour_stamps(301)[e.frame + 1]
               for e in info)


def test_camera_info_with_every_image_from_the_start_time() -> None:
    evs, _ = events(SensorTiming(info_start_s=0.5), 30)
    info = [e.stamp_ns for e in of(evs, "camera_info")]
    assert info == [t for t in colour_stamps(30) if t >= 500 * MS]


def test_depth_stamped_like_its_image_and_published_later() -> None:
    evs, _ = events(SensorTiming(depth_lag_ms=50, depth_jitter_ms=10), 60)
    depth, colour = of(evs, "depth"), of(evs, "colour")
    assert [e.stamp_ns for e in depth] == [e.stamp_ns for e in colour]
    assert [e.frame for e in depth] == [e.frame for e in colour]
    lags = [d.publish_ns - c.publish_ns for d, c in zip(depth, colour, strict=True)]
    assert all(50 * MS <= lag <= 60 * MS for lag in lags)


def test_drops_are_counted_per_kind_and_only_change_their_stream() -> None:
    base, _ = events(REALISTIC)
    lossy = SensorTiming(**{**REALISTIC.__dict__, "drop_prob": {"pose": 0.2, "depth": 0.1}})
    evs, sched = events(lossy)
    for kind in ("colour", "depth", "camera_info", "pose"):
        assert len(of(evs, kind)) == sched.scheduled[kind] - sched.dropped[kind], kind
    assert 0 < sched.dropped["pose"] < sched.scheduled["pose"]
    assert 0 < sched.dropped["depth"] < sched.scheduled["depth"]
    assert sched.dropped["colour"] == sched.dropped["camera_info"] == 0
    assert of(evs, "colour") == of(base, "colour")
    assert of(evs, "camera_info") == of(base, "camera_info")
    kept = {e.stamp_ns for e in of(evs, "pose")}
    assert kept < {e.stamp_ns for e in of(base, "pose")}  # the survivors, not new ones


def test_drop_everything_of_a_kind() -> None:
    evs, sched = events(SensorTiming(drop_prob={"colour": 1.0}), 20)
    assert not of(evs, "colour") and sched.dropped["colour"] == 20
    assert len(of(evs, "depth")) == 20


def test_same_seed_same_schedule_other_seed_other_phase_and_jitter() -> None:
    a, _ = events(REALISTIC, 60)
    b, _ = events(REALISTIC, 60)
    c, _ = events(SensorTiming(**{**REALISTIC.__dict__, "seed": 4}), 60)
    assert a == b
    assert of(a, "pose")[0].stamp_ns != of(c, "pose")[0].stamp_ns
    assert of(a, "colour") == of(c, "colour")


def test_an_endless_colour_stream_is_scheduled_lazily() -> None:
    endless = (i * PERIOD for i in itertools.count())
    first = list(itertools.islice(SensorSchedule(endless, REALISTIC), 2000))
    assert {e.kind for e in first} == {"colour", "depth", "camera_info", "pose"}
    assert [e.publish_ns for e in first] == sorted(e.publish_ns for e in first)


@pytest.mark.parametrize("bad", [
    {"pose_rate_hz": -1.0}, {"pose_delay_ms": math.nan}, {"info_start_s": -0.1},
    {"drop_prob": {"colour": 1.5}}, {"drop_prob": {"imu": 0.1}},
])
def test_invalid_timing_is_refused(bad: dict) -> None:
    with pytest.raises(SensorTimingError):
        SensorTiming(**bad)


def test_colour_stamps_must_increase() -> None:
    with pytest.raises(SensorTimingError, match="increase"):
        list(SensorSchedule([0, PERIOD, PERIOD], SensorTiming()))


# ------------------------------------------------------------ poses of the trajectory
def test_interpolate_pose_ends_and_midpoint() -> None:
    a, b = np.eye(4), np.eye(4)
    b[:3, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # 90 deg about z
    b[:3, 3] = (2.0, 0.0, 1.0)
    np.testing.assert_array_equal(interpolate_pose(a, b, 0.0), a)
    np.testing.assert_allclose(interpolate_pose(a, b, 1.0), b, atol=1e-12)
    mid = interpolate_pose(a, b, 0.5)
    c = math.sqrt(0.5)
    np.testing.assert_allclose(mid[:3, :3], [[c, -c, 0], [c, c, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(mid[:3, 3], (1.0, 0.0, 0.5))


def walkthrough_frames(n: int) -> list[Frame]:
    """``n`` tiny frames with the poses of a room walkthrough (no rendering)."""
    poses = walkthrough_poses(generate_layout(5).room, n, seed=5)
    intr = CameraIntrinsics(4.0, 4.0, 1.5, 1.5, 4, 4)
    rgb = np.zeros((4, 4, 3), np.uint8)
    return [Frame(t, "cam", rgb, np.ones((4, 4), np.float32), intr, p, "map", i)
            for i, (t, p) in enumerate(zip(colour_stamps(n), poses, strict=True))]


def quaternion_matrix(q: tuple[float, float, float, float]) -> np.ndarray:
    x, y, z, w = np.asarray(q) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def consumer_pose(msgs: list, stamp: int) -> np.ndarray:
    """What a consumer does: the two pose messages around ``stamp``, position lerped and
    quaternion nlerped at the stamp's fraction of their interval."""
    stamps = [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for m in msgs]
    i = int(np.searchsorted(stamps, stamp))
    m0, m1 = msgs[i - 1], msgs[i]
    w = (stamp - stamps[i - 1]) / (stamps[i] - stamps[i - 1])
    q = [np.array([o.x, o.y, o.z, o.w]) for o in (m0.pose.orientation, m1.pose.orientation)]
    if q[0] @ q[1] < 0:
        q[1] = -q[1]
    p = [np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z]) for m in (m0, m1)]
    out = np.eye(4)
    out[:3, :3] = quaternion_matrix(tuple((1 - w) * q[0] + w * q[1]))
    out[:3, 3] = (1 - w) * p[0] + w * p[1]
    return out


def rotation_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = (np.trace(a[:3, :3].T @ b[:3, :3]) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


def test_pose_messages_interpolated_at_an_image_stamp_give_the_images_pose() -> None:
    n = 90  # 3 s, one lap of the room: ~2 m/s and ~180 deg/s
    frames = walkthrough_frames(n)
    out = SensorMessages(ENC, frames, {"colour", "pose"})
    sched = SensorSchedule(colour_stamps(n), REALISTIC)
    msgs = [m for e in sched if e.kind == "pose" for _k, m in out.messages(e)]
    assert len(msgs) == sched.scheduled["pose"] > 2 * n
    t_err, r_err, nearest = [], [], []
    for f in frames:
        got = consumer_pose(msgs, f.stamp_ns)
        t_err.append(float(np.linalg.norm(got[:3, 3] - f.pose[:3, 3])))
        r_err.append(rotation_deg(got, f.pose))
        stamps = np.array([m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in msgs])
        j = int(np.argmin(np.abs(stamps - f.stamp_ns)))
        p = msgs[j].pose.position
        nearest.append(float(np.linalg.norm(np.array([p.x, p.y, p.z]) - f.pose[:3, 3])))
    assert max(t_err) < 2e-3 and max(r_err) < 0.2
    # the check can fail: the pose messages are not at the image stamps, so taking the
    # nearest one instead of interpolating misses by centimetres
    assert max(nearest) > 10 * max(t_err) and max(nearest) > 5e-3


def test_messages_of_each_kind_from_the_events_frame() -> None:
    frames = walkthrough_frames(3)
    kinds = {"colour", "depth", "camera_info", "pose", "odometry"}
    out = SensorMessages(ENC, frames, kinds, depth_encoding="32FC1")
    got = {e.kind: out.messages(e) for e in SensorSchedule([0, PERIOD, 2 * PERIOD],
                                                           SensorTiming()) if e.frame == 1}
    assert [k for k, _m in got["colour"]] == ["colour"]
    assert got["depth"][0][1].encoding == "32FC1"
    assert got["camera_info"][0][1].k[0] == 4.0
    assert [k for k, _m in got["pose"]] == ["pose", "odometry"]
    odom = got["pose"][1][1]
    assert (odom.header.frame_id, odom.child_frame_id) == ("map", "cam")
    assert odom.pose.pose.position.x == pytest.approx(frames[1].pose[0, 3])
    assert all(m.header.stamp.nanosec == PERIOD for v in got.values() for _k, m in v)
    only = SensorMessages(ENC, frames, {"colour"}, colour_format="jpeg")
    colour = only.messages(SensorEvent(0, "colour", 0, 0))
    assert [k for k, _m in colour] == ["colour_compressed"]
    assert only.messages(SensorEvent(0, "depth", 0, 0)) == []


def test_frames_play_back_and_forth() -> None:
    frames = walkthrough_frames(3)
    out = SensorMessages(ENC, frames, {"pose"})
    assert [out.frame(i).seq for i in range(6)] == [0, 1, 2, 1, 0, 1]
    # a pose between frames 2 and 3 of the stream lies between views 2 and 1
    pose = out.pose(SensorEvent(0, "pose", 0, 2, 0.5))
    np.testing.assert_allclose(pose, interpolate_pose(frames[2].pose, frames[1].pose, 0.5))
