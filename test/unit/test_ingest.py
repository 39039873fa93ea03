"""core.ingest: messages -> validated frames in the buffer, with exact accounting."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from _msgs import camera_info, image, pose_stamped

from spatial_mllm_ros.core.buffer import FrameBuffer
from spatial_mllm_ros.core.ingest import Ingestor

MS = 1_000_000
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real_rgbd_shelf"
K = [500.0, 0, 31.5, 0, 500.0, 23.5, 0, 0, 1]


def feed_frame(ing: Ingestor, i: int, rgb, depth_mm, stamp=None, now=None):
    t = (i + 1) * 33 * MS if stamp is None else stamp
    now = t if now is None else now
    ing.on_colour(image(rgb, "rgb8", t), now)
    ing.on_depth(image(depth_mm, "16UC1", t), now)
    ing.on_camera_info(camera_info(K, rgb.shape[1], rgb.shape[0], t), now)
    ing.on_pose(pose_stamped((i, 0, 0), stamp_ns=t), now)


def identities(c: dict[str, int]) -> None:
    for topic in ("colour", "depth", "camera_info", "pose"):
        assert c.get(f"in.{topic}.received", 0) == c.get(f"in.{topic}.accepted", 0) + (
            Ingestor.rejected_total(c, topic))
    assert c.get("in.colour.accepted", 0) == (
        c.get("frames.emitted", 0) + c["pair.colour.dropped"] + c["pair.colour.pending"])


def test_complete_frames_and_rejections_are_counted():
    store = FrameBuffer(100, 10**9)
    ing = Ingestor(store)
    rgb = np.full((48, 64, 3), 100, np.uint8)
    mm = np.full((48, 64), 1500, np.uint16)
    for i in range(5):
        feed_frame(ing, i, rgb, mm)
    bad = image(rgb, "rgb8", 999 * MS)
    bad.step = 10
    res = ing.on_colour(bad, 0)
    assert res.rejected is not None and res.frames == []
    ing.on_colour(image(rgb, "rgb8", 1 * MS), 0)  # backwards
    ing.on_depth(image(np.full((48, 64), np.nan, np.float32), "32FC1", 400 * MS), 0)
    ing.on_colour(object(), 0)  # not a message at all: counted, never raised
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
    store = FrameBuffer(10, 10**9)
    ing = Ingestor(store)
    rgb = np.zeros((48, 64, 3), np.uint8)
    ing.on_colour(image(rgb, "rgb8", 0), 0)
    ing.on_depth(image(np.ones((24, 32), np.uint16), "16UC1", 0), 0)
    ing.on_camera_info(camera_info(K, 32, 24, 0), 0)
    ing.on_pose(pose_stamped(stamp_ns=0), 0)
    (f,) = store.snapshot()
    assert f.depth_m is None and f.intrinsics is None and f.pose is not None
    c = ing.counters()
    assert c["frames.depth_size_mismatch"] == 1 and c["frames.intrinsics_size_mismatch"] == 1


def test_colour_only_after_wait_and_buffer_eviction_counted():
    store = FrameBuffer(2, 10**9)
    ing = Ingestor(store)
    rgb = np.zeros((4, 4, 3), np.uint8)
    for i in range(3):
        ing.on_colour(image(rgb, "rgb8", i * 33 * MS), i * 33 * MS)
    assert ing.poll(10**9) and len(store) == 2
    c = ing.counters()
    assert c["frames.colour_only"] == 3 and c["buffer.evicted"] == 1 and c["buffer.frames"] == 2


def test_pose_lookup_used_when_no_pose_message():
    lookups = []

    def lookup(frame_id, stamp):
        lookups.append((frame_id, stamp))
        return np.eye(4), "odom"

    from spatial_mllm_ros.core.pairing import PairingConfig

    store = FrameBuffer(2, 10**9)
    ing = Ingestor(store, pose_lookup=lookup)
    assert isinstance(ing.config.pairing, PairingConfig)
    ing.on_colour(image(np.zeros((4, 4, 3), np.uint8), "rgb8", 5), 0)
    ing.flush()
    (f,) = store.snapshot()
    assert f.world_frame_id == "odom" and lookups == [("cam", 5)]


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real data {DATA} absent")
def test_real_rgbd_shelf_frames_convert():
    store = FrameBuffer(20, 10**9)
    ing = Ingestor(store)
    k = np.loadtxt(DATA / "camera_intrinsics.txt").reshape(-1).tolist()
    for i in range(3):
        rgb = cv2.cvtColor(cv2.imread(str(DATA / f"frame-{i:06d}.color.png")), cv2.COLOR_BGR2RGB)
        mm = cv2.imread(str(DATA / f"frame-{i:06d}.depth.png"), cv2.IMREAD_UNCHANGED)
        t = (i + 1) * 33 * MS
        ing.on_colour(image(rgb, "rgb8", t), t)
        ing.on_depth(image(mm, "16UC1", t), t)
        ing.on_camera_info(camera_info(k, 640, 480, t), t)
    ing.flush()
    frames = store.snapshot()
    assert len(frames) == 3 and all(f.depth_m is not None for f in frames)
    valid = frames[0].depth_m > 0
    assert 0.05 < valid.mean() < 0.9  # real holes; README says ~24 % valid
    assert 0.3 <= float(frames[0].depth_m[valid].min()) and float(frames[0].depth_m.max()) < 10
    assert abs(frames[0].intrinsics.fx - 611.69) < 0.1
