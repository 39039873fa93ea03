"""The ingest counters (issue 18 point 4): a typed record whose one flattening gives exactly the
diagnostics keys and values the node published before it was typed (pinned below from the
flat dict of that time), and whose fields are what the node, the evaluator and the
several-camera ingestor read instead of parsing keys."""

from __future__ import annotations

import numpy as np
from testkit.fakes import FifoStore
from testkit.msgs import camera_info, image, odometry, pose_stamped

from spatial_mllm_ros.core.clock import ClockConfig
from spatial_mllm_ros.core.counters import IngestCounters, admissions
from spatial_mllm_ros.core.ingest import IngestConfig, Ingestor
from spatial_mllm_ros.core.multi_ingest import MultiIngestor
from spatial_mllm_ros.core.pairing import PairingConfig, PartnerSpec
from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer
from spatial_mllm_ros.settings import Settings

MS = 1_000_000
K = [500.0, 0, 31.5, 0, 500.0, 23.5, 0, 0, 1]
RGB = np.full((48, 64, 3), 100, np.uint8)
MM = np.full((48, 64), 1500, np.uint16)


def flat(ing: Ingestor | MultiIngestor) -> dict[str, int]:
    """The counters as /diagnostics publishes them."""
    counts = ing.counts()
    assert isinstance(counts, IngestCounters)
    assert ing.counters() == counts.flat()
    return counts.flat()


def feed(ing: Ingestor, i: int, stamp: int, pose_kind: str = "pose") -> None:
    ing.ingest("colour", image(RGB, "rgb8", stamp), stamp)
    ing.ingest("depth", image(MM, "16UC1", stamp), stamp)
    ing.ingest("camera_info", camera_info(K, 64, 48, stamp), stamp)
    msg = (pose_stamped if pose_kind == "pose" else odometry)((i, 0, 0), stamp_ns=stamp)
    ing.ingest(pose_kind, msg, stamp)


def busy_ingestor() -> Ingestor:
    """Every kind of counter of one camera: complete, redundant and colour-only frames,
    rejections of four reasons, a size mismatch, a missing partner, a new time base."""
    cfg = BufferConfig(max_frames=4, voxel_size_m=0.01, depth_stride=1, min_new_voxels=5)
    ing = Ingestor(SpatialFrameBuffer(cfg), IngestConfig(clock=ClockConfig(jump_back_ns=10**9)))
    for i in range(4):
        feed(ing, i, (i + 1) * 33 * MS)
    for i in range(3):
        feed(ing, i, (10 + i) * 33 * MS, pose_kind="odometry")
    bad = image(RGB, "rgb8", 999 * MS)
    bad.step = 10
    ing.ingest("colour", bad, 999 * MS)
    ing.ingest("colour", image(RGB, "rgb8", 1 * MS), 999 * MS)  # backwards
    ing.ingest("depth", image(np.full((48, 64), np.nan, np.float32), "32FC1", 400 * MS), 0)
    ing.ingest("colour", object(), 0)
    ing.ingest("colour", image(RGB, "rgb8", 20 * 33 * MS), 20 * 33 * MS)
    ing.ingest("depth", image(np.ones((24, 32), np.uint16), "16UC1", 20 * 33 * MS),
               20 * 33 * MS)
    ing.ingest("colour", image(RGB, "rgb8", 30 * 33 * MS), 30 * 33 * MS)
    ing.stream_health({"colour": 1, "depth": 1, "camera_info": 1, "pose": 0}, 10**9, 10**9)
    ing.flush()
    later = 90 * 10**9
    ing.ingest("colour", image(RGB, "rgb8", later), later)
    ing.ingest("colour", image(RGB, "rgb8", 5 * 33 * MS), later)  # far back: a new time base
    ing.flush()
    return ing


BUSY = {
    "buffer.admit.colour_only": 3, "buffer.admit.colour_throttled": 1, "buffer.admit.first": 1,
    "buffer.admit.new_coverage": 3, "buffer.admit.redundant": 3, "buffer.bytes": 9216,
    "buffer.evicted": 2, "buffer.frames": 1, "buffer.queued": 0, "camera_info.changes": 0,
    "camera_info.latched": 1, "clock.jumps_forward": 0, "clock.time_resets": 1,
    "frames.colour_only": 4, "frames.complete": 7, "frames.depth_size_mismatch": 1,
    "frames.emitted": 11, "frames.missing.depth.flushed": 3,
    "frames.missing.depth.size_mismatch": 1, "frames.missing.pose.flushed": 3,
    "frames.missing.pose.no_publisher": 1, "frames.with_depth": 7, "frames.with_intrinsics": 11,
    "frames.with_pose": 7, "in.camera_info.accepted": 7, "in.camera_info.received": 7,
    "in.colour.accepted": 11, "in.colour.received": 14, "in.colour.rejected.bad_step": 1,
    "in.colour.rejected.internal_error": 1, "in.colour.rejected.stamp_backwards": 1,
    "in.depth.accepted": 8, "in.depth.received": 9, "in.depth.rejected.bad_depth_values": 1,
    "in.odometry.accepted": 3, "in.odometry.received": 3, "in.pose.accepted": 4,
    "in.pose.received": 4, "pair.colour.dropped": 0, "pair.colour.emitted": 11,
    "pair.colour.pending": 0, "pair.colour.pushed": 11, "pair.depth.paired": 8,
    "pair.depth.pending": 0, "pair.depth.pushed": 8, "pair.depth.unused": 0, "poses.evicted": 7,
    "poses.held": 0, "poses.inserted": 7,
}


def test_one_camera_flattens_to_the_keys_and_values_published_before() -> None:
    assert flat(busy_ingestor()) == BUSY


LOOKUP_EMPTY = {
    "buffer.bytes": 0, "buffer.frames": 0, "buffer.queued": 0, "pair.camera_info.paired": 0,
    "pair.camera_info.pending": 0, "pair.camera_info.pushed": 0, "pair.camera_info.unused": 0,
    "pair.colour.dropped": 0, "pair.colour.emitted": 0, "pair.colour.pending": 0,
    "pair.colour.pushed": 0, "pair.depth.paired": 0, "pair.depth.pending": 0,
    "pair.depth.pushed": 0, "pair.depth.unused": 0,
}
LOOKUP = {
    "buffer.admit.fifo": 2, "buffer.bytes": 43008, "buffer.evicted": 0, "buffer.frames": 2,
    "buffer.queued": 0, "frames.colour_only": 0, "frames.complete": 0, "frames.emitted": 2,
    "frames.missing.pose.tf_unavailable": 2, "frames.pose_lookup_error": 1,
    "frames.with_depth": 2, "frames.with_intrinsics": 2, "frames.with_pose": 0,
    "in.camera_info.accepted": 2, "in.camera_info.received": 2, "in.colour.accepted": 2,
    "in.colour.received": 2, "in.depth.accepted": 2, "in.depth.received": 2,
    "pair.camera_info.paired": 2, "pair.camera_info.pending": 0, "pair.camera_info.pushed": 2,
    "pair.camera_info.unused": 0, "pair.colour.dropped": 0, "pair.colour.emitted": 2,
    "pair.colour.pending": 0, "pair.colour.pushed": 2, "pair.depth.paired": 2,
    "pair.depth.pending": 0, "pair.depth.pushed": 2, "pair.depth.unused": 0,
}


def lookup_ingestor() -> Ingestor:
    """No pose topic, a tf lookup that fails once and finds nothing once; nearest-mode camera
    info; nothing admitted yet (no frame emitted)."""
    calls: list[int] = []

    def lookup(_frame: str, stamp: int) -> None:
        calls.append(stamp)
        if len(calls) == 1:
            raise RuntimeError("tf")

    pairing = PairingConfig(partners=(PartnerSpec("depth", "consume"),
                                      PartnerSpec("camera_info", "reuse")))
    ing = Ingestor(FifoStore(10), IngestConfig(pairing=pairing, poses=None, info_wait_ns=None),
                   pose_lookup=lookup)
    assert flat(ing) == LOOKUP_EMPTY
    for i in range(2):
        t = (i + 1) * 33 * MS
        ing.ingest("colour", image(RGB, "rgb8", t), t)
        ing.ingest("depth", image(MM, "16UC1", t), t)
        ing.ingest("camera_info", camera_info(K, 64, 48, t), t)
    ing.flush()
    return ing


def test_a_pose_lookup_and_nearest_camera_info_flatten_as_before() -> None:
    assert flat(lookup_ingestor()) == LOOKUP


def two_cameras() -> MultiIngestor:
    settings = Settings.from_values({
        "cameras": ["front", "left"],
        "camera.front.colour": "/front/color", "camera.front.depth": "/front/depth",
        "camera.front.camera_info": "/front/info", "camera.front.odometry": "/odom",
        "camera.front.extrinsic": [0.1, 0.0, 0.0, -0.5, 0.5, -0.5, 0.5],
        "camera.left.colour": "/left/color", "camera.left.odometry": "/odom",
        "camera.left.camera_info": "/left/info",
        "camera.left.extrinsic": [0.0, 0.1, 0.0, 0.0, 0.7071068, -0.7071068, 0.0],
    })
    from spatial_mllm_ros.core.multi_ingest import CameraFeed

    ing = MultiIngestor(FifoStore(100), [CameraFeed(c, settings.camera_ingest(c), c.topics)
                                          for c in settings.cameras])
    for step in range(3):
        t = (step + 1) * 100 * MS
        ing.ingest("/odom", odometry((float(step), 0.0, 0.0), stamp_ns=t), t)
        for cam in ("front", "left"):
            ing.ingest(f"/{cam}/color", image(RGB, "rgb8", t), t)
            ing.ingest(f"/{cam}/info", camera_info(K, 64, 48, t), t)
        ing.ingest("/front/depth", image(MM, "16UC1", t), t)
    bad = image(RGB, "rgb8", 999 * MS)
    bad.step = 10
    ing.ingest("/left/color", bad, 999 * MS)
    ing.flush()
    return ing


TWO = {
    "buffer.admit.fifo": 6, "buffer.bytes": 92928, "buffer.evicted": 0, "buffer.frames": 6,
    "buffer.queued": 0, "camera.front.frames.colour_only": 0, "camera.front.frames.complete": 3,
    "camera.front.frames.emitted": 3, "camera.front.frames.with_depth": 3,
    "camera.front.frames.with_intrinsics": 3, "camera.front.frames.with_pose": 3,
    "camera.front.in.camera_info.accepted": 3, "camera.front.in.camera_info.received": 3,
    "camera.front.in.colour.accepted": 3, "camera.front.in.colour.received": 3,
    "camera.front.in.depth.accepted": 3, "camera.front.in.depth.received": 3,
    "camera.front.in.odometry.accepted": 3, "camera.front.in.odometry.received": 3,
    "camera.front.pair.colour.dropped": 0, "camera.front.pair.colour.emitted": 3,
    "camera.front.pair.colour.pending": 0, "camera.front.pair.colour.pushed": 3,
    "camera.front.pair.depth.paired": 3, "camera.front.pair.depth.pending": 0,
    "camera.front.pair.depth.pushed": 3, "camera.front.pair.depth.unused": 0,
    "camera.left.frames.colour_only": 0, "camera.left.frames.complete": 0,
    "camera.left.frames.emitted": 3, "camera.left.frames.with_depth": 0,
    "camera.left.frames.with_intrinsics": 3, "camera.left.frames.with_pose": 3,
    "camera.left.in.camera_info.accepted": 3, "camera.left.in.camera_info.received": 3,
    "camera.left.in.colour.accepted": 3, "camera.left.in.colour.received": 4,
    "camera.left.in.colour.rejected.bad_step": 1, "camera.left.in.odometry.accepted": 3,
    "camera.left.in.odometry.received": 3, "camera.left.pair.colour.dropped": 0,
    "camera.left.pair.colour.emitted": 3, "camera.left.pair.colour.pending": 0,
    "camera.left.pair.colour.pushed": 3, "camera_info.changes": 0, "camera_info.latched": 2,
    "frames.colour_only": 0, "frames.complete": 3, "frames.emitted": 6, "frames.with_depth": 3,
    "frames.with_intrinsics": 6, "frames.with_pose": 6, "in.camera_info.accepted": 6,
    "in.camera_info.received": 6, "in.colour.accepted": 6, "in.colour.received": 7,
    "in.colour.rejected.bad_step": 1, "in.depth.accepted": 3, "in.depth.received": 3,
    "in.odometry.accepted": 6, "in.odometry.received": 6, "pair.colour.dropped": 0,
    "pair.colour.emitted": 6, "pair.colour.pending": 0, "pair.colour.pushed": 6,
    "pair.depth.paired": 3, "pair.depth.pending": 0, "pair.depth.pushed": 3,
    "pair.depth.unused": 0, "poses.evicted": 0, "poses.held": 6, "poses.inserted": 6,
}


def test_several_cameras_flatten_to_the_sum_and_each_camera_as_before() -> None:
    assert flat(two_cameras()) == TWO


def test_consumers_read_fields_the_keys_they_parsed_agree() -> None:
    """The node's rates (received by kind), its WARN (rejected) and the evaluator's admissions
    are fields; several cameras' rejections count once (the flat keys show them twice: in the
    sum and as the camera's own)."""
    one = busy_ingestor().counts()
    assert one.received() == {"colour": 14, "depth": 9, "camera_info": 7, "pose": 4,
                              "odometry": 3}
    assert one.rejected() == 4
    assert one.buffer.admitted == admissions(BUSY)
    assert one.topics["colour"].rejected == {"bad_step": 1, "internal_error": 1,
                                             "stamp_backwards": 1}
    two = two_cameras().counts()
    assert two.received() == {"colour": 7, "camera_info": 6, "depth": 3, "odometry": 6}
    assert two.rejected() == 1
    assert {cam: c.rejected() for cam, c in two.cameras.items()} == {"front": 0, "left": 1}
    assert two.cameras["left"].received() == {"colour": 4, "camera_info": 3, "odometry": 3}
    assert two.buffer.frames == 6 and two.frames.emitted == 6


def test_admissions_reads_published_values_back() -> None:
    assert admissions({"buffer.admit.first": "1", "buffer.frames": "3",
                       "buffer.admit.redundant": "2"}) == {"first": "1", "redundant": "2"}
