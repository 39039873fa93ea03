"""core.multi_ingest (issue 22 point 2): each camera paired on its own into one buffer -- its
own pairing, latched camera info, pose history and counters -- so a camera that stops or sends
bad camera info affects only its own frames; one odometry topic serves every camera mounted
with an extrinsic; the one camera of ``topics.*`` is ingested as before."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from testkit.fakes import FifoStore
from testkit.msgs import camera_info, image, odometry, pose_stamped

from spatial_mllm_ros.camera_params import DEFAULT_CAMERA
from spatial_mllm_ros.core.ingest import Ingestor
from spatial_mllm_ros.core.multi_ingest import CameraFeed, MultiIngestor
from spatial_mllm_ros.core.poses import rigid_transform
from spatial_mllm_ros.sampling.online import SpatialFrameBuffer
from spatial_mllm_ros.settings import Settings

MS = 1_000_000
K = [50.0, 0, 31.5, 0, 50.0, 23.5, 0, 0, 1]
BAD_K = [0.0] * 9
CAMERAS = ("front", "left", "right")
EXTRINSIC = {"front": [0.1, 0.0, 0.0, -0.5, 0.5, -0.5, 0.5],
             "left": [0.0, 0.1, 0.0, 0.0, 0.7071068, -0.7071068, 0.0],
             "right": [0.0, -0.1, 0.0, -0.7071068, 0.0, 0.0, 0.7071068]}


def rig_settings() -> Settings:
    values: dict[str, object] = {"cameras": list(CAMERAS)}
    for cam in CAMERAS:
        values |= {f"camera.{cam}.colour": f"/{cam}/color/image_raw",
                   f"camera.{cam}.depth": f"/{cam}/depth",
                   f"camera.{cam}.camera_info": f"/{cam}/color/camera_info",
                   f"camera.{cam}.odometry": "/odom",
                   f"camera.{cam}.extrinsic": EXTRINSIC[cam]}
    return Settings.from_values(values)


def multi(settings: Settings, store: FifoStore) -> MultiIngestor:
    return MultiIngestor(store, [CameraFeed(c, settings.camera_ingest(c), c.topics)
                                 for c in settings.cameras])


def feed(ing: MultiIngestor, step: int, cameras: tuple[str, ...], k: dict[str, list[float]]
         ) -> None:
    """Time step ``step``: the base's odometry, and each of ``cameras``' colour, depth and
    camera info at one stamp."""
    t = (step + 1) * 100 * MS
    rgb = np.full((48, 64, 3), 80, np.uint8)
    mm = np.full((48, 64), 1500, np.uint16)
    ing.ingest("/odom", odometry((float(step), 0.0, 0.0), stamp_ns=t), t)
    for cam in cameras:
        ing.ingest(f"/{cam}/color/image_raw", image(rgb, "rgb8", t), t)
        ing.ingest(f"/{cam}/depth", image(mm, "16UC1", t), t)
        ing.ingest(f"/{cam}/color/camera_info", camera_info(k.get(cam, K), 64, 48, t), t)


def test_one_odometry_topic_feeds_every_camera_and_poses_get_the_extrinsic() -> None:
    store = FifoStore(100)
    ing = multi(rig_settings(), store)
    assert ing.routes["/odom"].cameras == CAMERAS and ing.routes["/odom"].kind == "odometry"
    for step in range(3):
        feed(ing, step, CAMERAS, {})
    ing.flush()
    frames = store.snapshot()
    assert sorted(f.camera for f in frames) == sorted(CAMERAS * 3)
    for f in frames:
        assert f.has_geometry and f.pose is not None
        e = EXTRINSIC[f.camera]
        base = np.eye(4)
        base[0, 3] = f.stamp_ns // (100 * MS) - 1
        np.testing.assert_allclose(f.pose, base @ rigid_transform(e[:3], e[3:]), atol=1e-9)


def test_a_camera_that_stops_or_lies_affects_only_its_own_frames() -> None:
    store = FifoStore(100)
    ing = multi(rig_settings(), store)
    for step in range(10):
        live = CAMERAS if step < 4 else ("front", "right")  # left stops after 4 steps
        feed(ing, step, live, {"right": BAD_K})  # right's camera info is refused
    ing.flush()
    per = ing.camera_counters()
    frames = store.snapshot()
    front = [f for f in frames if f.camera == "front"]
    left = [f for f in frames if f.camera == "left"]
    right = [f for f in frames if f.camera == "right"]
    assert len(front) == 10 and all(f.has_geometry for f in front)
    assert len(left) == 4 and all(f.has_geometry for f in left)
    assert len(right) == 10 and all(f.intrinsics is None for f in right)
    assert sum(v for k, v in per["right"].items()
               if k.startswith("in.camera_info.rejected.")) == 10
    assert not any(k.startswith("in.camera_info.rejected.") for k in per["front"])
    assert per["front"]["frames.complete"] == 10 and per["left"]["frames.complete"] == 4
    total = ing.counters()
    assert total["in.colour.received"] == 24
    assert total["camera.left.in.colour.received"] == 4
    assert total["buffer.frames"] == len(store)


def test_the_default_camera_is_ingested_as_before() -> None:
    settings = Settings.defaults()
    (cam,) = settings.cameras
    assert cam.name == DEFAULT_CAMERA
    a, b = FifoStore(100), FifoStore(100)
    one = MultiIngestor(a, [CameraFeed(cam, settings.ingest, cam.topics)])
    plain = Ingestor(b, settings.ingest)
    assert one.ingestors[DEFAULT_CAMERA].store is a  # no wrapper in between
    rgb = np.full((48, 64, 3), 80, np.uint8)
    for i in range(3):
        t = (i + 1) * 33 * MS
        one.ingest(cam.topics["colour"], image(rgb, "rgb8", t), t)
        plain.ingest("colour", image(rgb, "rgb8", t), t)
    one.flush()
    plain.flush()
    assert one.counters() == plain.counters()
    assert [f.stamp_ns for f in a.snapshot()] == [f.stamp_ns for f in b.snapshot()]
    assert {f.camera for f in a.snapshot()} == {DEFAULT_CAMERA}


def test_a_topic_of_two_kinds_is_refused() -> None:
    settings = Settings.defaults()
    (cam,) = settings.cameras
    with pytest.raises(ValueError, match=r"colour of camera 'default' and depth"):
        MultiIngestor(FifoStore(10), [
            CameraFeed(cam, settings.ingest, {"colour": "/x", "depth": "/x"})])


def test_a_camera_without_a_pose_source_gives_colour_only_frames_of_its_own() -> None:
    settings = Settings.from_values({
        "cameras": ["front", "wrist"],
        "camera.front.colour": "/front/color/image_raw", "camera.front.depth": "/front/depth",
        "camera.front.camera_info": "/front/color/camera_info",
        "camera.front.odometry": "/odom", "camera.front.extrinsic": EXTRINSIC["front"],
        "camera.wrist.colour": "/wrist/color/image_raw"})  # no depth, no pose
    store = FifoStore(100)
    ing = multi(settings, store)
    for step in range(3):
        feed(ing, step, ("front",), {})
        t = (step + 1) * 100 * MS
        ing.ingest("/wrist/color/image_raw", image(np.zeros((48, 64, 3), np.uint8), "rgb8", t), t)
    ing.flush()
    frames = store.snapshot()
    assert all(f.has_geometry for f in frames if f.camera == "front")
    wrist = [f for f in frames if f.camera == "wrist"]
    assert len(wrist) == 3 and all(f.pose is None and f.depth_m is None for f in wrist)


def _posed_settings() -> Settings:
    """front and left, each with its own colour, depth, camera info and pose topic."""
    values: dict[str, object] = {"cameras": ["front", "left"]}
    for cam in ("front", "left"):
        values |= {f"camera.{cam}.colour": f"/{cam}/color/image_raw",
                   f"camera.{cam}.depth": f"/{cam}/depth",
                   f"camera.{cam}.camera_info": f"/{cam}/color/camera_info",
                   f"camera.{cam}.pose": f"/{cam}/pose"}
    return Settings.from_values(values)


def _feed_posed(ing: MultiIngestor, cam: str, t: int, x: float) -> None:
    """Camera ``cam``'s pose (at x metres), colour, depth and camera info at stamp ``t``."""
    ing.ingest(f"/{cam}/pose", pose_stamped((x, 0.0, 0.0), stamp_ns=t), t)
    ing.ingest(f"/{cam}/color/image_raw", image(np.full((48, 64, 3), 80, np.uint8), "rgb8",
                                                 t), t)
    ing.ingest(f"/{cam}/depth", image(np.full((48, 64), 1500, np.uint16), "16UC1", t), t)
    ing.ingest(f"/{cam}/color/camera_info", camera_info(K, 64, 48, t), t)


def test_a_new_time_base_on_one_camera_drops_only_its_own_frames() -> None:
    """Issue 22 point 2: left's stream restarts (its stamps go back 100 s, a bag played
    again); its frames and pairing state start over, front's frames stay in the shared
    space-aware buffer."""
    settings = _posed_settings()
    store = SpatialFrameBuffer(replace(settings.buffer, depth_stride=4, min_new_voxels=1))
    ing = multi(settings, store)
    for step in range(5):
        t = 100_000 * MS + step * 100 * MS
        for cam in ("front", "left"):
            _feed_posed(ing, cam, t, step * 2.0)
    ing.flush()
    assert sorted(f.camera for f in store.snapshot().frames) == ["front"] * 5 + ["left"] * 5
    for step in range(2):  # left only, from the start of its recording again
        _feed_posed(ing, "left", (step + 1) * 100 * MS, 20.0 + step * 2.0)
    ing.flush()
    frames = store.snapshot().frames
    assert sorted(f.camera for f in frames) == ["front"] * 5 + ["left"] * 2
    assert all(f.stamp_ns < 1_000 * MS for f in frames if f.camera == "left")
    per = ing.camera_counters()
    assert per["left"]["clock.time_resets"] == 1
    assert per["front"].get("clock.time_resets", 0) == 0
    assert per["left"]["frames.complete"] == 7
    assert any("camera 'left'" in e and "cleared" in e for e in ing.take_events())


def test_each_camera_s_latest_pose_is_base_times_its_extrinsic() -> None:
    """``last_poses`` (each camera's ``pose.*`` on /diagnostics): the latest frame's pose, the
    base odometry at its stamp composed with the camera's extrinsic."""
    ing = multi(rig_settings(), FifoStore(100))
    assert ing.last_poses() == dict.fromkeys(CAMERAS)  # no frame yet
    for step in range(3):
        feed(ing, step, CAMERAS, {})
    ing.flush()
    for cam, last in ing.last_poses().items():
        assert last is not None and last.stamp_ns == 300 * MS
        e = EXTRINSIC[cam]
        base = np.eye(4)
        base[0, 3] = 2.0
        np.testing.assert_allclose(last.pose, base @ rigid_transform(e[:3], e[3:]), atol=1e-9)
        values = last.values()
        np.testing.assert_allclose([float(x) for x in values["pose.position"].split()],
                                   last.pose[:3, 3], atol=1e-8)
        assert values["pose.stamp_ns"] == str(300 * MS)
    assert MultiIngestor(FifoStore(1), [CameraFeed(
        Settings.defaults().cameras[0], Settings.defaults().ingest,
        Settings.defaults().cameras[0].topics)]).last_poses() == {}
