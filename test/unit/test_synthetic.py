"""Synthetic rooms: determinism, ground truth sanity, depth encoding, directory round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spatial_mllm_ros.synthetic import (
    SceneFormatError,
    depth_from_mm,
    depth_to_mm,
    generate_layout,
    load_ground_truth,
    load_rgbd_dir,
    make_walkthrough,
    write_rgbd_dir,
)

SHELF = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real_rgbd_shelf"


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    return make_walkthrough(11, n_frames=12, fps=4.0, width=96, height=72, keep_instance_masks=True)


def test_same_seed_same_scene_and_different_seed_differs() -> None:
    a = make_walkthrough(2, n_frames=3, width=48, height=36)
    b = make_walkthrough(2, n_frames=3, width=48, height=36)
    c = make_walkthrough(3, n_frames=3, width=48, height=36)
    assert a.ground_truth() == b.ground_truth()
    for fa, fb in zip(a.frames, b.frames, strict=True):
        assert np.array_equal(fa.rgb, fb.rgb) and np.array_equal(fa.depth_m, fb.depth_m)
        assert np.array_equal(fa.pose, fb.pose)
    assert a.ground_truth()["objects"] != c.ground_truth()["objects"]


@pytest.mark.parametrize("seed", range(8))
def test_layout_objects_are_inside_the_room_and_disjoint(seed: int) -> None:
    layout = generate_layout(seed)
    room = layout.room
    assert room.floor_area_m2 == pytest.approx(room.width_m * room.length_m)
    assert len(layout.objects) >= 3
    assert [o.instance_id for o in layout.objects] == list(range(1, len(layout.objects) + 1))
    dims = np.array([room.width_m, room.length_m, room.height_m])
    for o in layout.objects:
        assert np.all(o.bbox_min >= -1e-6) and np.all(o.bbox_max <= dims + 1e-6)
        assert min(o.size_m) > 0
    for i, a in enumerate(layout.objects):
        for b in layout.objects[i + 1 :]:
            eps = 1e-6
            sep = (a.bbox_max[:2] <= b.bbox_min[:2] + eps) | (
                b.bbox_max[:2] <= a.bbox_min[:2] + eps
            )
            assert sep.any(), f"{a.label} and {b.label} overlap"


def test_frames_have_valid_rgbd_and_rate(scene) -> None:  # type: ignore[no-untyped-def]
    stamps = [f.stamp_ns for f in scene.frames]
    assert np.allclose(np.diff(stamps), 0.25e9)
    for f in scene.frames:
        assert f.rgb.dtype == np.uint8 and f.rgb.shape == (72, 96, 3)
        assert f.depth_m.dtype == np.float32 and (f.depth_m > 0).mean() > 0.99
        assert f.has_geometry
        assert f.rgb.reshape(-1, 3).std(axis=0).max() > 5  # shading varies


def test_visibility_matches_masks_and_appearance_order(scene) -> None:  # type: ignore[no-untyped-def]
    for vis, mask in zip(scene.visibility, scene.instance_masks, strict=True):
        for iid, n in vis.items():
            assert int((mask == iid).sum()) == n
    order = scene.appearance_order()
    seen = scene.first_seen_ns()
    assert set(order) == set(seen) and len(order) > 0
    assert [seen[i] for i in order] == sorted(seen[i] for i in order)
    first = scene.frames[0].stamp_ns
    assert set(scene.visibility[0]) == {i for i in order if seen[i] == first}


def test_depth_mm_round_trip() -> None:
    d = np.array([[0.0, 0.0004, 1.2344, np.nan], [70.0, -1.0, 2.0006, np.inf]], np.float32)
    mm = depth_to_mm(d)
    assert mm.dtype == np.uint16
    assert mm.tolist() == [[0, 0, 1234, 0], [65535, 0, 2001, 0]]
    back = depth_from_mm(mm)
    assert back.dtype == np.float32
    assert back[0, 2] == pytest.approx(1.234) and back[1, 2] == pytest.approx(2.001)


def test_write_and_load_directory_round_trip(scene, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = write_rgbd_dir(scene, tmp_path / "scene")
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
        assert a.stamp_ns == b.stamp_ns
        assert np.array_equal(a.rgb, b.rgb)
        assert np.max(np.abs(a.depth_m - b.depth_m)) <= 0.0005 + 1e-6
        np.testing.assert_allclose(a.pose, b.pose, atol=1e-8)
        assert b.intrinsics is not None
        np.testing.assert_allclose(a.intrinsics.matrix, b.intrinsics.matrix, atol=1e-6)
    gt = load_ground_truth(out)
    assert gt == json.loads(json.dumps(scene.ground_truth()))
    assert gt["room"]["floor_area_m2"] == pytest.approx(scene.layout.room.floor_area_m2)


def test_loader_synthesizes_stamps_and_handles_missing_files(scene, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = write_rgbd_dir(scene, tmp_path / "s")
    (out / "scene.json").unlink()
    (out / "frame-000001.depth.png").unlink()
    (out / "frame-000002.pose.txt").unlink()
    frames = load_rgbd_dir(out, rate_hz=10.0, start_ns=5)
    assert [f.stamp_ns for f in frames[:3]] == [5, 5 + 10**8, 5 + 2 * 10**8]
    assert frames[1].depth_m is None and frames[2].pose is None and frames[2].world_frame_id == ""
    with pytest.raises(SceneFormatError):
        load_rgbd_dir(tmp_path / "missing")
    with pytest.raises(SceneFormatError):
        load_ground_truth(out)


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
