"""Back-projection, voxel keys and predicted-geometry helpers (synthetic + real RGB-D)."""

from __future__ import annotations

import numpy as np
import pytest
from testkit.paths import SHELF

from spatial_mllm_ros.core.frame import CameraIntrinsics
from spatial_mllm_ros.core.geometry import (
    VOXEL_AXIS_OFFSET,
    GeometryError,
    backproject_depth,
    decode_voxel_keys,
    paper_voxel_size,
    project_points,
    select_voxel_size,
    voxel_centers,
    voxel_keys,
)
from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir
from spatial_mllm_ros.synthetic import make_walkthrough
from spatial_mllm_ros.synthetic.render import render_view


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    return make_walkthrough(3, n_frames=4, width=160, height=120, keep_instance_masks=True)


def test_backprojected_object_pixels_lie_in_their_ground_truth_boxes(scene) -> None:  # type: ignore[no-untyped-def]
    checked = 0
    for f, mask in zip(scene.frames, scene.instance_masks, strict=True):
        for obj in scene.layout.objects:
            sel = mask == obj.instance_id
            if sel.sum() < 20:
                continue
            depth = np.where(sel, f.depth_m, 0).astype(np.float32)
            pts = backproject_depth(depth, f.intrinsics, f.pose)
            assert np.all(pts >= obj.bbox_min - 0.01) and np.all(pts <= obj.bbox_max + 0.01)
            checked += 1
        structure = np.where(mask == 0, f.depth_m, 0).astype(np.float32)
        pts = backproject_depth(structure, f.intrinsics, f.pose)
        room = scene.layout.room
        assert np.all(pts >= -0.01)
        assert np.all(pts <= np.array([room.width_m, room.length_m, room.height_m]) + 0.01)
    assert checked > 0


def test_backprojection_round_trips_through_projection(scene) -> None:  # type: ignore[no-untyped-def]
    f = scene.frames[0]
    pts = backproject_depth(f.depth_m, f.intrinsics, f.pose, stride=5)
    uv, z = project_points(pts, f.intrinsics, f.pose)
    vs, us = np.nonzero(f.depth_m[::5, ::5] > 0)
    np.testing.assert_allclose(uv[:, 0], us * 5, atol=1e-6)
    np.testing.assert_allclose(uv[:, 1], vs * 5, atol=1e-6)
    np.testing.assert_allclose(z, f.depth_m[::5, ::5][vs, us], rtol=1e-6)


def test_backprojection_ignores_invalid_depth_and_checks_shapes() -> None:
    k = CameraIntrinsics(100.0, 100.0, 1.5, 1.5, 4, 4)
    depth = np.array(
        [[0, 1, np.nan, -1], [2, 0, 0, 0], [0, 0, 30, 0], [0, 0, 0, 0]], dtype=np.float32
    )
    pts = backproject_depth(depth, k, None, max_depth_m=10.0)
    np.testing.assert_allclose(sorted(pts[:, 2]), [1.0, 2.0])
    with pytest.raises(GeometryError):
        backproject_depth(np.zeros((3, 4), np.float32), k)
    with pytest.raises(GeometryError):
        backproject_depth(depth, k, np.eye(3))


def test_voxel_keys_decode_to_the_floor_cells_and_never_collide() -> None:
    rng = np.random.default_rng(0)
    size = 0.1
    lim = VOXEL_AXIS_OFFSET * size
    pts = rng.uniform(-lim * 0.999, lim * 0.999, size=(5000, 3))
    # include the extreme cells on every axis
    pts[:8] = np.array(
        [
            [sx, sy, sz]
            for sx in (-lim + 1e-3, lim - 1e-3)
            for sy in (-lim + 1e-3, lim - 1e-3)
            for sz in (-lim + 1e-3, lim - 1e-3)
        ]
    )
    keys = voxel_keys(pts, size)
    cells = np.unique(np.floor(pts / size).astype(np.int64), axis=0)
    assert keys.size == cells.shape[0]  # distinct cells -> distinct keys
    assert np.all(np.diff(keys) > 0)
    decoded = decode_voxel_keys(keys)
    assert {tuple(c) for c in decoded} == {tuple(c) for c in cells}
    centres = voxel_centers(keys, size)
    assert np.all(np.floor(centres / size).astype(np.int64) == decoded)


def test_voxel_keys_drop_points_outside_the_bounds() -> None:
    size = 1.0
    pts = np.array([[0.5, 0.5, 0.5], [VOXEL_AXIS_OFFSET + 1.0, 0, 0], [np.nan, 0, 0]])
    keys = voxel_keys(pts, size)
    assert decode_voxel_keys(keys).tolist() == [[0, 0, 0]]
    with pytest.raises(GeometryError):
        voxel_keys(pts, 0.0)


def test_paper_voxel_size_and_offline_selection() -> None:
    pts = np.array([[0, 0, 0], [4.0, 2.0, 6.0]])
    assert paper_voxel_size(pts) == pytest.approx(0.1)
    assert select_voxel_size([pts], (0.05, 0.1, 0.2)) == pytest.approx(0.1)
    assert select_voxel_size([pts * 3], (0.05, 0.1, 0.2)) == pytest.approx(0.2)
    with pytest.raises(GeometryError):
        paper_voxel_size(np.zeros((5, 3)))


def test_render_depth_is_optical_z_distance_to_a_known_wall() -> None:
    scene = make_walkthrough(0, n_frames=1, width=64, height=48)
    layout = scene.layout
    f = scene.frames[0]
    empty = type(layout)(layout.seed, layout.room, ())
    res = render_view(empty, f.intrinsics, f.pose)
    pts = backproject_depth(res.depth_m, f.intrinsics, f.pose)
    room = layout.room
    dims = np.array([room.width_m, room.length_m, room.height_m])
    on_face = np.isclose(pts, 0.0, atol=1e-3) | np.isclose(pts, dims, atol=1e-3)
    assert np.all(on_face.any(axis=1))  # every point lies on a room face


# ----------------------------------------------------------------- real data
shelf = pytest.mark.skipif(
    not (SHELF / "camera_intrinsics.txt").exists(),
    reason=f"real RGB-D sample not present at {SHELF}",
)


def _reprojection_error(a, b, stride: int = 4) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    pts = backproject_depth(a.depth_m, a.intrinsics, a.pose, stride=stride)
    uv, z = project_points(pts, b.intrinsics, b.pose)
    u = np.rint(uv[:, 0]).astype(int)
    v = np.rint(uv[:, 1]).astype(int)
    inside = (z > 0) & (u >= 0) & (u < b.width) & (v >= 0) & (v < b.height)
    db = b.depth_m[v[inside], u[inside]]
    valid = db > 0  # holes in the other view are ignored
    err = np.abs(db[valid] - z[inside][valid])
    return float(np.median(err)), float(valid.mean())


@shelf
def test_real_shelf_points_from_two_views_agree() -> None:
    frames = load_rgbd_dir(SHELF)
    assert len(frames) == 15
    assert all(f.has_geometry for f in frames)
    valid = (frames[0].depth_m > 0).mean()
    assert 0.05 < valid < 0.9  # real holes are present
    for b in frames[1:]:
        med, overlap = _reprojection_error(frames[0], b)
        assert overlap > 0.1
        assert med < 0.02, f"median reprojection depth error {med:.3f} m to frame {b.seq}"


@shelf
def test_real_shelf_consistency_breaks_with_a_wrong_pose() -> None:
    frames = load_rgbd_dir(SHELF)
    a, b = frames[0], frames[7]
    shifted = b.pose.copy()
    shifted[:3, 3] += np.array([0.1, 0.0, 0.1])
    bad = type(b)(b.stamp_ns, b.frame_id, b.rgb, b.depth_m, b.intrinsics, shifted)
    assert _reprojection_error(a, bad)[0] > 3 * _reprojection_error(a, b)[0]


@shelf
def test_real_shelf_voxel_sets_overlap_between_views() -> None:
    frames = load_rgbd_dir(SHELF)
    sets = [
        voxel_keys(backproject_depth(f.depth_m, f.intrinsics, f.pose, stride=4), 0.02)
        for f in frames[:3]
    ]
    inter = np.intersect1d(sets[0], sets[1]).size
    assert inter > 0.3 * min(sets[0].size, sets[1].size)
