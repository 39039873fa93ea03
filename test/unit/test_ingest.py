"""core.ingest: messages -> validated frames in the buffer, with exact accounting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from testkit.fakes import FifoStore
from testkit.msgs import camera_info, image, pose_stamped
from testkit.paths import SHELF

from spatial_mllm_ros.core.buffer import FrameStore
from spatial_mllm_ros.core.ingest import Ingestor
from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer

MS = 1_000_000
DATA = SHELF
K = [500.0, 0, 31.5, 0, 500.0, 23.5, 0, 0, 1]


def feed_frame(ing: Ingestor, i: int, rgb, depth_mm, stamp=None, now=None):
    t = (i + 1) * 33 * MS if stamp is None else stamp
    now = t if now is None else now
    ing.ingest("colour", image(rgb, "rgb8", t), now)
    ing.ingest("depth", image(depth_mm, "16UC1", t), now)
    ing.ingest("camera_info", camera_info(K, rgb.shape[1], rgb.shape[0], t), now)
    ing.ingest("pose", pose_stamped((i, 0, 0), stamp_ns=t), now)


def identities(c: dict[str, int]) -> None:
    for topic in ("colour", "depth", "camera_info", "pose"):
        rejected = sum(v for k, v in c.items() if k.startswith(f"in.{topic}.rejected."))
        assert c.get(f"in.{topic}.received", 0) == c.get(f"in.{topic}.accepted", 0) + rejected
    assert c.get("in.colour.accepted", 0) == (
        c.get("frames.emitted", 0) + c["pair.colour.dropped"] + c["pair.colour.pending"])


def test_complete_frames_and_rejections_are_counted():
    store = FifoStore(100)
    ing = Ingestor(store)
    rgb = np.full((48, 64, 3), 100, np.uint8)
    mm = np.full((48, 64), 1500, np.uint16)
    for i in range(5):
        feed_frame(ing, i, rgb, mm)
    bad = image(rgb, "rgb8", 999 * MS)
    bad.step = 10
    res = ing.ingest("colour", bad, 0)
    assert res.rejected is not None and res.frames == []
    ing.ingest("colour", image(rgb, "rgb8", 1 * MS), 0)  # backwards
    ing.ingest("depth", image(np.full((48, 64), np.nan, np.float32), "32FC1", 400 * MS), 0)
    ing.ingest("colour", object(), 0)  # not a message at all: counted, never raised
    ing.flush()
    c = ing.counters()
    assert c["frames.emitted"] == 5 and c["frames.complete"] == 5 and len(store) == 5
    assert c["in.colour.rejected.bad_step"] == 1
    assert c["in.colour.rejected.stamp_backwards"] == 1
    assert c["in.depth.rejected.bad_depth_values"] == 1
    assert c["in.colour.rejected.internal_error"] == 1
    identities(c)
    f = store.snapshot()[2]
    np.testing.assert_allclose(f.depth_m, 1.5)
    np.testing.assert_allclose(f.pose[:3, 3], [2, 0, 0])
    assert f.intrinsics is not None and f.intrinsics.fx == 500.0
    assert [x.seq for x in store.snapshot()] == [1, 2, 3, 4, 5]


def test_size_mismatch_depth_and_info_left_out():
    store = FifoStore(10)
    ing = Ingestor(store)
    rgb = np.zeros((48, 64, 3), np.uint8)
    ing.ingest("colour", image(rgb, "rgb8", 0), 0)
    ing.ingest("depth", image(np.ones((24, 32), np.uint16), "16UC1", 0), 0)
    ing.ingest("camera_info", camera_info(K, 32, 24, 0), 0)
    ing.ingest("pose", pose_stamped(stamp_ns=0), 0)
    (f,) = store.snapshot()
    assert f.depth_m is None and f.intrinsics is None and f.pose is not None
    c = ing.counters()
    assert c["frames.depth_size_mismatch"] == 1 and c["frames.intrinsics_size_mismatch"] == 1


def test_colour_only_after_wait_and_buffer_eviction_counted():
    store = FifoStore(2)
    ing = Ingestor(store)
    rgb = np.zeros((4, 4, 3), np.uint8)
    for i in range(3):
        ing.ingest("colour", image(rgb, "rgb8", i * 33 * MS), i * 33 * MS)
    assert not ing.poll(10**9)  # no camera info yet: they wait for the first one (5 s)
    assert ing.poll(6 * 10**9) and len(store) == 2
    c = ing.counters()
    assert c["frames.colour_only"] == 3 and c["buffer.evicted"] == 1 and c["buffer.frames"] == 2


def test_space_aware_store_decision_of_every_frame_is_counted():
    """The node's store: each emitted frame gets one decision, counted by its reason."""
    cfg = BufferConfig(max_frames=4, voxel_size_m=0.01, depth_stride=1, min_new_voxels=5)
    store = SpatialFrameBuffer(cfg)
    ing = Ingestor(store)
    rgb = np.full((48, 64, 3), 100, np.uint8)
    mm = np.full((48, 64), 1500, np.uint16)
    for i in range(4):  # 1 m apart: each sees a new patch of the wall
        feed_frame(ing, i, rgb, mm)
    for i in range(3):  # the same places again: nothing new
        feed_frame(ing, i, rgb, mm, stamp=(10 + i) * 33 * MS)
    ing.ingest("colour", image(rgb, "rgb8", 20 * 33 * MS), 20 * 33 * MS)
    ing.flush()  # the last colour image has no partners: a colour-only frame
    c = ing.counters()
    decisions = {k.removeprefix("buffer.admit."): v for k, v in c.items()
                 if k.startswith("buffer.admit.")}
    assert decisions == {"first": 1, "new_coverage": 3, "redundant": 3, "colour_only": 1}
    assert c["frames.emitted"] == 8 and c["frames.colour_only"] == 1
    assert c["buffer.frames"] == len(store) == 4 and c["buffer.evicted"] == 1
    assert c["buffer.bytes"] == store.nbytes > 0
    identities(c)


def test_stores_satisfy_the_protocol():
    assert isinstance(SpatialFrameBuffer(), FrameStore)
    assert isinstance(FifoStore(), FrameStore)


def test_pose_lookup_used_when_no_pose_message():
    lookups = []

    def lookup(frame_id, stamp):
        lookups.append((frame_id, stamp))
        return np.eye(4), "odom"

    from spatial_mllm_ros.core.pairing import PairingConfig

    store = FifoStore(2)
    ing = Ingestor(store, pose_lookup=lookup)
    assert isinstance(ing.config.pairing, PairingConfig)
    ing.ingest("colour", image(np.zeros((4, 4, 3), np.uint8), "rgb8", 5), 0)
    ing.flush()
    (f,) = store.snapshot()
    assert f.world_frame_id == "odom" and lookups == [("cam", 5)]


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real data {DATA} absent")
def test_real_rgbd_shelf_frames_convert():
    store = FifoStore(20)
    ing = Ingestor(store)
    k = np.loadtxt(DATA / "camera_intrinsics.txt").reshape(-1).tolist()
    for i in range(3):
        rgb = cv2.cvtColor(cv2.imread(str(DATA / f"frame-{i:06d}.color.png")), cv2.COLOR_BGR2RGB)
        mm = cv2.imread(str(DATA / f"frame-{i:06d}.depth.png"), cv2.IMREAD_UNCHANGED)
        t = (i + 1) * 33 * MS
        ing.ingest("colour", image(rgb, "rgb8", t), t)
        ing.ingest("depth", image(mm, "16UC1", t), t)
        ing.ingest("camera_info", camera_info(k, 640, 480, t), t)
    ing.flush()
    frames = store.snapshot()
    assert len(frames) == 3 and all(f.depth_m is not None for f in frames)
    valid = frames[0].depth_m > 0
    assert 0.05 < valid.mean() < 0.9  # real holes; README says ~24 % valid
    assert 0.3 <= float(frames[0].depth_m[valid].min()) and float(frames[0].depth_m.max()) < 10
    assert abs(frames[0].intrinsics.fx - 611.69) < 0.1
