"""rosbag2 reading/writing of camera topics (sqlite3 and mcap) and the bag errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from testkit.fakes import FifoStore
from testkit.paths import SHELF

from spatial_mllm_ros.bags import (
    BagError,
    BagFormatError,
    BagNotFoundError,
    BagSource,
    BagTopicsError,
    BagWriter,
    EmptyBagError,
    resolve_topic,
    topics_from_params,
    typestore,
    write_frames,
)
from spatial_mllm_ros.core.ingest import Ingestor
from spatial_mllm_ros.evaluation.cli import bag_from_rgbd_main
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.params import defaults
from spatial_mllm_ros.synthetic import make_walkthrough

REAL = SHELF
START = 1_700_000_000_000_000_000
TOPICS = topics_from_params(defaults())


@pytest.fixture(scope="module")
def scene():
    return make_walkthrough(5, n_frames=6, width=64, height=48, start_ns=START)


def _read_frames(bag: Path, topics=TOPICS):
    with BagSource(bag) as src:
        kinds, warnings = src.plan(topics)
        ing = Ingestor(FifoStore())
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
    with BagSource(bag) as src:
        first = next(iter(src.messages({compressed: "colour_compressed"}))).msg
    assert first.format == "rgb8; jpeg compressed bgr8"  # as image_transport writes it
    assert counters["in.colour_compressed.accepted"] == 6
    assert len(frames) == 6
    diff = np.abs(frames[2].rgb.astype(int) - scene.frames[2].rgb.astype(int))
    assert diff.mean() < 8  # jpeg quality 90


def test_poses_as_odometry_when_no_pose_topic(tmp_path: Path, scene) -> None:
    topics = TOPICS.with_overrides({"pose": "", "odometry": "/vo/odom"})
    counts = write_frames(scene.frames, tmp_path / "bag", topics)
    assert counts["/vo/odom"] == 6 and TOPICS.names["pose"] not in counts
    with BagSource(tmp_path / "bag") as src:
        assert src.info.topics["/vo/odom"] == ("nav_msgs/msg/Odometry", 6)
        odom = next(iter(src.messages({"/vo/odom": "odometry"}))).msg
    assert odom.child_frame_id == scene.frames[0].frame_id
    assert odom.header.frame_id == "map"
    frames, counters, _ = _read_frames(tmp_path / "bag", topics)
    assert counters["frames.complete"] == 6
    for got, want in zip(frames, scene.frames, strict=True):
        assert np.allclose(got.pose, want.pose, atol=1e-9)


def test_raw_messages_are_the_stored_cdr_in_log_time_order(tmp_path: Path, scene) -> None:
    bag = tmp_path / "bag"
    write_frames(scene.frames, bag, TOPICS)
    colour, pose = TOPICS.names["colour"], TOPICS.names["pose"]
    with BagSource(bag) as src:
        raw = list(src.raw_messages({colour, pose}))
        decoded = list(src.messages({colour: "colour", pose: "pose"}))
        types = {t: ty for t, (ty, _) in src.info.topics.items()}
    assert [(t, ns) for t, ns, _ in raw] == [(m.topic, m.log_time_ns) for m in decoded]
    assert len(raw) == 12 and [ns for _, ns, _ in raw] == sorted(ns for _, ns, _ in raw)
    ts = typestore()
    for (topic, _, data), m in zip(raw, decoded, strict=True):
        got, want = ts.deserialize_cdr(data, types[topic]).header, m.msg.header
        assert (got.stamp.sec, got.stamp.nanosec, got.frame_id) == (
            want.stamp.sec, want.stamp.nanosec, want.frame_id)


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
        w.write("/front/image", START, w.encoder.colour_image(scene.frames[0].rgb, START, "cam"))
    with BagSource(bag) as src, pytest.raises(BagTopicsError) as err:
        src.plan(TOPICS)
    text = str(err.value)
    assert "/camera/camera/color/image_raw" in text  # what was configured
    assert "/front/image [sensor_msgs/msg/Image] (1 msgs)" in text  # what the bag has


def test_wrong_type_on_a_configured_topic(tmp_path: Path, scene) -> None:
    bag = tmp_path / "wrong"
    depth_topic = TOPICS.names["depth"]
    with BagWriter(bag) as w:
        w.write(TOPICS.names["colour"], START,
                w.encoder.colour_image(scene.frames[0].rgb, START, "c"))
        w.write(depth_topic, START, w.encoder.pose_stamped(np.eye(4), START, "map"))
    with (
        BagSource(bag) as src,
        pytest.raises(BagTopicsError, match="expects sensor_msgs/msg/Image"),
    ):
        src.plan(TOPICS)


def test_partner_topics_missing_are_warnings(tmp_path: Path, scene) -> None:
    bag = tmp_path / "colour_only"
    with BagWriter(bag) as w:
        for f in scene.frames:
            w.write(TOPICS.names["colour"], f.stamp_ns,
                    w.encoder.colour_image(f.rgb, f.stamp_ns, "c"))
    frames, counters, warnings = _read_frames(bag)
    assert len(frames) == 6 and counters["frames.colour_only"] == 6
    assert any("topics.depth" in w for w in warnings)
    assert any("topics.pose" in w for w in warnings)


def test_output_bag_must_not_exist(tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    with pytest.raises(BagError, match="already exists"):
        BagWriter(tmp_path / "exists")


def test_resolve_topic() -> None:
    assert resolve_topic("~/camera_pose") == "/spatial_mllm/camera_pose"
    assert resolve_topic("~/camera_pose", namespace="/robot1") == "/robot1/spatial_mllm/camera_pose"
    assert resolve_topic("image") == "/image"
    assert resolve_topic("/a/b") == "/a/b"
    assert resolve_topic("") == ""


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
    assert bag_from_rgbd_main([str(tmp_path / "nope"), str(tmp_path / "b")]) == ExitCode.INPUT
    assert "is not a directory" in capsys.readouterr().err
    assert bag_from_rgbd_main([str(tmp_path), str(tmp_path / "b"), "--rate", "0"]) \
        == ExitCode.USAGE
