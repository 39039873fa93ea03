"""rosbag2 reading/writing of camera topics (sqlite3 and mcap) and the bag errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from spatial_mllm_ros.core.buffer import FrameBuffer
from spatial_mllm_ros.core.convert import quaternion_to_rotation
from spatial_mllm_ros.core.ingest import Ingestor
from spatial_mllm_ros.evaluation.bag_io import (
    BagFormatError,
    BagNotFoundError,
    BagSource,
    BagTopicsError,
    BagWriter,
    EmptyBagError,
    colour_msg,
    resolve_topic,
    rotation_to_quaternion,
    topics_from_params,
    write_frames,
)
from spatial_mllm_ros.evaluation.cli import bag_from_rgbd_main
from spatial_mllm_ros.params import defaults
from spatial_mllm_ros.synthetic import make_walkthrough

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real_rgbd_shelf"
START = 1_700_000_000_000_000_000
TOPICS = topics_from_params(defaults())


@pytest.fixture(scope="module")
def scene():
    return make_walkthrough(5, n_frames=6, width=64, height=48, start_ns=START)


def _read_frames(bag: Path, topics=TOPICS):
    with BagSource(bag) as src:
        kinds, warnings = src.plan(topics)
        ing = Ingestor(FrameBuffer(1000, 1 << 30))
        for m in src.messages(kinds):
            ing.ingest(m.kind, m.msg, m.log_time_ns)
        ing.flush()
        return list(ing.store.snapshot()), ing.counters(), warnings


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_write_read_round_trip(tmp_path: Path, scene, storage: str) -> None:
    bag = tmp_path / "bag"
    counts = write_frames(scene.frames, bag, TOPICS, storage=storage)
    assert set(counts.values()) == {6}
    with BagSource(bag) as src:
        assert src.info.storage == storage
        assert src.info.message_count == 24
        assert src.info.start_ns == START
    frames, counters, warnings = _read_frames(bag)
    assert warnings == []
    assert counters["frames.complete"] == 6
    for got, want in zip(frames, scene.frames, strict=True):
        assert got.stamp_ns == want.stamp_ns
        assert np.array_equal(got.rgb, want.rgb)
        assert np.abs(got.depth_m - want.depth_m).max() <= 0.0005 + 1e-6  # 16UC1 mm rounding
        assert np.allclose(got.pose, want.pose, atol=1e-9)
        assert got.intrinsics == want.intrinsics
        assert got.world_frame_id == "map"


def test_compressed_colour_needs_its_topic(tmp_path: Path, scene) -> None:
    bag = tmp_path / "bag"
    counts = write_frames(scene.frames, bag, TOPICS, storage="mcap", compressed=True)
    compressed = "/camera/camera/color/image_raw/compressed"
    assert counts[compressed] == 6
    with pytest.raises(BagTopicsError, match="image_raw/compressed"):
        _read_frames(bag)  # the default profile subscribes to the raw colour topic only
    frames, counters, _ = _read_frames(
        bag, TOPICS.with_overrides({"colour_compressed": compressed, "colour": ""})
    )
    assert counters["in.colour_compressed.accepted"] == 6
    assert len(frames) == 6
    diff = np.abs(frames[2].rgb.astype(int) - scene.frames[2].rgb.astype(int))
    assert diff.mean() < 8  # jpeg quality 90


def test_missing_and_not_a_bag(tmp_path: Path) -> None:
    with pytest.raises(BagNotFoundError, match="not found"):
        BagSource(tmp_path / "nope")
    (tmp_path / "dir").mkdir()
    with pytest.raises(BagFormatError, match=r"metadata\.yaml"):
        BagSource(tmp_path / "dir")


def test_empty_bag(tmp_path: Path) -> None:
    with BagWriter(tmp_path / "empty"):
        pass
    with pytest.raises(EmptyBagError, match="no messages"):
        BagSource(tmp_path / "empty")


def test_bag_without_configured_topics_lists_its_topics(tmp_path: Path, scene) -> None:
    bag = tmp_path / "other"
    with BagWriter(bag) as w:
        w.write("/front/image", START, colour_msg(w.ts, scene.frames[0].rgb, START, "cam"))
    with BagSource(bag) as src, pytest.raises(BagTopicsError) as err:
        src.plan(TOPICS)
    text = str(err.value)
    assert "/camera/camera/color/image_raw" in text  # what was configured
    assert "/front/image [sensor_msgs/msg/Image] (1 msgs)" in text  # what the bag has


def test_wrong_type_on_a_configured_topic(tmp_path: Path, scene) -> None:
    bag = tmp_path / "wrong"
    depth_topic = TOPICS.names["depth"]
    with BagWriter(bag) as w:
        w.write(TOPICS.names["colour"], START, colour_msg(w.ts, scene.frames[0].rgb, START, "c"))
        from spatial_mllm_ros.evaluation.bag_io import pose_stamped_msg

        w.write(depth_topic, START, pose_stamped_msg(w.ts, np.eye(4), START, "map"))
    with (
        BagSource(bag) as src,
        pytest.raises(BagTopicsError, match="expects sensor_msgs/msg/Image"),
    ):
        src.plan(TOPICS)


def test_partner_topics_missing_are_warnings(tmp_path: Path, scene) -> None:
    bag = tmp_path / "colour_only"
    with BagWriter(bag) as w:
        for f in scene.frames:
            w.write(TOPICS.names["colour"], f.stamp_ns, colour_msg(w.ts, f.rgb, f.stamp_ns, "c"))
    frames, counters, warnings = _read_frames(bag)
    assert len(frames) == 6 and counters["frames.colour_only"] == 6
    assert any("topics.depth" in w for w in warnings)
    assert any("topics.pose" in w for w in warnings)


def test_output_bag_must_not_exist(tmp_path: Path) -> None:
    from spatial_mllm_ros.evaluation.bag_io import BagError

    (tmp_path / "exists").mkdir()
    with pytest.raises(BagError, match="already exists"):
        BagWriter(tmp_path / "exists")


def test_resolve_topic() -> None:
    assert resolve_topic("~/camera_pose") == "/spatial_mllm/camera_pose"
    assert resolve_topic("~/camera_pose", namespace="/robot1") == "/robot1/spatial_mllm/camera_pose"
    assert resolve_topic("image") == "/image"
    assert resolve_topic("/a/b") == "/a/b"
    assert resolve_topic("") == ""


def test_rotation_to_quaternion_round_trip() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        r = quaternion_to_rotation(*q)
        back = rotation_to_quaternion(r)
        assert math.isclose(np.linalg.norm(back), 1.0, abs_tol=1e-12)
        assert back[3] >= 0
        assert np.allclose(quaternion_to_rotation(*back), r, atol=1e-12)
    # 180-degree rotations (trace -1) take the non-w branches
    for axis in np.eye(3):
        r = 2 * np.outer(axis, axis) - np.eye(3)
        assert np.allclose(quaternion_to_rotation(*rotation_to_quaternion(r)), r, atol=1e-12)


@pytest.mark.skipif(not REAL.is_dir(), reason="shared/data/real_rgbd_shelf is not beside the repo")
@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_from_rgbd_real_shelf(tmp_path: Path, storage: str, capsys) -> None:
    bag = tmp_path / "shelf"
    assert bag_from_rgbd_main([str(REAL), str(bag), "--rate", "5", "--storage", storage]) == 0
    assert "15 frames over 2.80 s" in capsys.readouterr().out
    frames, counters, warnings = _read_frames(bag)
    assert warnings == []
    assert counters["frames.complete"] == 15
    k = np.loadtxt(REAL / "camera_intrinsics.txt")
    assert np.allclose(frames[0].intrinsics.matrix, k)
    assert np.allclose(frames[7].pose, np.loadtxt(REAL / "frame-000007.pose.txt"), atol=1e-9)
    import cv2

    raw = cv2.imread(str(REAL / "frame-000007.depth.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(np.rint(frames[7].depth_m * 1000).astype(np.uint16), raw)
    assert [f.stamp_ns - frames[0].stamp_ns for f in frames[:3]] == [0, 200_000_000, 400_000_000]


def test_bag_from_rgbd_errors(tmp_path: Path, capsys) -> None:
    assert bag_from_rgbd_main([str(tmp_path / "nope"), str(tmp_path / "b")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert bag_from_rgbd_main([str(tmp_path), str(tmp_path / "b"), "--rate", "0"]) == 2
