"""core.rgbd_dir: RGB-D frame directories (write, load, spread subsets, errors, the real shelf)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from testkit.paths import SHELF

from spatial_mllm_ros.core.errors import RgbdDirError
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir, load_scene_json, write_rgbd_dir
from spatial_mllm_ros.synthetic import make_walkthrough, write_scene_dir


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    return make_walkthrough(11, n_frames=12, fps=4.0, width=96, height=72, keep_instance_masks=True)


def test_write_and_load_scene_directory_round_trip(scene, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = write_scene_dir(scene, tmp_path / "scene")
    names = {p.name for p in out.iterdir()}
    assert {
        "camera_intrinsics.txt",
        "scene.json",
        "frame-000000.color.png",
        "frame-000000.depth.png",
        "frame-000000.pose.txt",
        "frame-000000.segm.png",
    } <= names
    frames = load_rgbd_dir(out)
    assert len(frames) == len(scene.frames)
    for a, b in zip(scene.frames, frames, strict=True):
        assert a.stamp_ns == b.stamp_ns  # from scene.json
        assert np.array_equal(a.rgb, b.rgb)
        assert np.max(np.abs(a.depth_m - b.depth_m)) <= 0.0005 + 1e-6
        np.testing.assert_allclose(a.pose, b.pose, atol=1e-8)
        assert b.intrinsics is not None
        np.testing.assert_allclose(a.intrinsics.matrix, b.intrinsics.matrix, atol=1e-6)
    mask = cv2.imread(str(out / "frame-000003.segm.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(mask, scene.instance_masks[3])
    gt = load_scene_json(out)
    assert gt == json.loads(json.dumps(scene.ground_truth()))
    assert gt["room"]["floor_area_m2"] == pytest.approx(scene.layout.room.floor_area_m2)


def test_loader_synthesizes_stamps_and_handles_missing_files(scene, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = write_rgbd_dir(scene.frames, tmp_path / "s")  # no metadata: no scene.json
    assert not (out / "scene.json").exists() and not (out / "frame-000000.segm.png").exists()
    (out / "frame-000001.depth.png").unlink()
    (out / "frame-000002.pose.txt").unlink()
    frames = load_rgbd_dir(out, rate_hz=10.0, start_ns=5, frame_id="cam", world_frame_id="odom")
    assert [f.stamp_ns for f in frames[:3]] == [5, 5 + 10**8, 5 + 2 * 10**8]
    assert frames[1].depth_m is None and frames[2].pose is None and frames[2].world_frame_id == ""
    assert frames[0].frame_id == "cam" and frames[0].world_frame_id == "odom"
    assert [f.seq for f in frames] == list(range(12))


def test_max_frames_spreads_evenly_and_keeps_timing(scene, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = write_rgbd_dir(scene.frames, tmp_path / "s")
    frames = load_rgbd_dir(out, rate_hz=4.0, max_frames=4)
    assert [f.seq for f in frames] == [0, 4, 7, 11]  # first and last included
    assert [f.stamp_ns for f in frames] == [round(i * 1e9 / 4.0) for i in (0, 4, 7, 11)]
    assert np.array_equal(frames[1].rgb, scene.frames[4].rgb)
    assert len(load_rgbd_dir(out, max_frames=50)) == 12


def test_non_contiguous_indices_load_in_order(scene, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = write_rgbd_dir(scene.frames[:3], tmp_path / "s")
    for ext in ("color.png", "depth.png", "pose.txt"):
        (out / f"frame-000002.{ext}").rename(out / f"frame-000010.{ext}")
    frames = load_rgbd_dir(out)
    assert [f.seq for f in frames] == [0, 1, 10]
    assert np.array_equal(frames[2].rgb, scene.frames[2].rgb)


def test_errors(scene, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RgbdDirError, match="not a directory"):
        load_rgbd_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RgbdDirError, match="no frame-NNNNNN"):
        load_rgbd_dir(tmp_path / "empty")
    with pytest.raises(RgbdDirError, match=r"scene\.json"):
        load_scene_json(tmp_path / "empty")
    out = write_rgbd_dir(scene.frames[:2], tmp_path / "s")
    (out / "frame-000001.pose.txt").write_text("1 2 3\n")
    with pytest.raises(RgbdDirError, match="expected"):
        load_rgbd_dir(out)
    cv2.imwrite(str(out / "frame-000000.depth.png"), np.zeros((5, 5), np.uint16))
    with pytest.raises(RgbdDirError, match="uint16 depth"):
        load_rgbd_dir(out)
    with pytest.raises(RgbdDirError, match="no frames"):
        write_rgbd_dir([], tmp_path / "none")
    colour_only = Frame(0, "cam", scene.frames[0].rgb)
    with pytest.raises(RgbdDirError, match="intrinsics"):
        write_rgbd_dir([colour_only], tmp_path / "nok")
    assert issubclass(RgbdDirError, ValueError)


@pytest.mark.skipif(not SHELF.exists(), reason=f"real RGB-D sample not present at {SHELF}")
def test_loader_reads_the_real_shelf_convention() -> None:
    frames = load_rgbd_dir(SHELF, rate_hz=15.0)
    assert len(frames) == 15
    f = frames[0]
    assert f.rgb.shape == (480, 640, 3) and f.depth_m.dtype == np.float32
    assert f.intrinsics.fx == pytest.approx(611.6857, abs=1e-3)
    assert np.allclose(f.pose[3], [0, 0, 0, 1])
    steps = np.diff([x.stamp_ns for x in frames])
    assert np.all(np.abs(steps - 1e9 / 15) <= 1)
