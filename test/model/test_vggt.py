"""VGGT geometry model: checkpoint layout, tiny forward, geometry helpers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from spatial_mllm_ros.model.vggt import (
    VGGT,
    VGGTConfig,
    VGGTConfigError,
    VGGTInputError,
    depth_to_world_points,
    extrinsics_intrinsics_to_pose_encoding,
    pose_encoding_to_extrinsics_intrinsics,
    vggt_geometry,
    vggt_layout,
)
from spatial_mllm_ros.model.vggt.geometry import invert_se3, mat_to_quat, quat_to_mat

LAYOUT_TSV = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "reference"
    / "checkpoint_layouts"
    / "vggt_1b.tsv"
)
H, W, S = 56, 84, 3


def _read_tsv(path: Path) -> set[tuple[str, tuple[int, ...]]]:
    rows = set()
    for line in path.read_text().splitlines():
        name, shape = line.split("\t")
        rows.add((name, tuple(int(d) for d in shape.split("x"))))
    return rows


@pytest.fixture(scope="module")
def tiny() -> VGGT:
    torch.manual_seed(0)
    return VGGT(VGGTConfig.tiny()).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(S, 3, H, W, generator=torch.Generator().manual_seed(0))


@pytest.mark.skipif(
    not LAYOUT_TSV.exists(), reason="shared/reference/checkpoint_layouts/vggt_1b.tsv not present"
)
def test_real_size_layout_equals_released_checkpoint() -> None:
    expected = _read_tsv(LAYOUT_TSV)
    layout = vggt_layout(VGGTConfig.vggt_1b())
    assert len(layout) == len(set(layout)) == 1797
    assert set(layout) == expected
    assert sum(math.prod(s) for _, s in layout) == pytest.approx(1.2565e9, rel=1e-3)


def test_tiny_layout_has_same_names_as_real_size() -> None:
    def pattern(name: str) -> str:  # collapse block indices
        return ".".join("#" if part.isdigit() else part for part in name.split("."))

    real = {pattern(n) for n, _ in vggt_layout(VGGTConfig.vggt_1b())}
    small = {pattern(n) for n, _ in vggt_layout(VGGTConfig.tiny())}
    assert small == real


def test_disabled_heads_are_absent() -> None:
    names = [n for n, _ in vggt_layout(VGGTConfig.tiny(enable_track=False, enable_point=False))]
    assert not any(n.startswith(("track_head.", "point_head.")) for n in names)
    assert any(n.startswith("depth_head.") for n in names)


def test_config_rejects_inconsistent_sizes() -> None:
    with pytest.raises(VGGTConfigError):
        VGGTConfig.tiny(intermediate_layer_idx=[0, 1, 2, 9])
    with pytest.raises(VGGTConfigError):
        VGGTConfig.tiny(aa_order=["frame", "frame"])


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    cfg = VGGTConfig.tiny()
    cfg.save_pretrained(tmp_path)
    again = VGGTConfig.from_pretrained(tmp_path)
    assert again.to_dict() == cfg.to_dict()
    assert again.model_type == "spatial_mllm_vggt"


def test_tiny_forward_shapes_and_finite(tiny: VGGT, images: torch.Tensor) -> None:
    with torch.no_grad():
        out = tiny(images, return_tokens=True)
    assert out["pose_enc"].shape == (1, S, 9)
    assert out["depth"].shape == (1, S, H, W, 1)
    assert out["depth_conf"].shape == (1, S, H, W)
    assert out["world_points"].shape == (1, S, H, W, 3)
    assert out["world_points_conf"].shape == (1, S, H, W)
    for key in ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf"):
        assert torch.isfinite(out[key]).all(), key
    assert (out["depth"] > 0).all()
    assert (out["depth_conf"] > 1).all() and (out["world_points_conf"] > 1).all()
    assert (out["pose_enc"][..., 7:] >= 0).all()  # FoVs go through ReLU
    assert len(out["pose_enc_list"]) == tiny.config.camera_iterations


def test_aggregator_layer_format(tiny: VGGT, images: torch.Tensor) -> None:
    cfg = tiny.config
    clip = images.unsqueeze(0)
    with torch.no_grad():
        layers, start = tiny.aggregator(clip)
        kept, start2 = tiny.aggregator.forward_layers(clip, [-1, 1])
    assert start == start2 == cfg.patch_start_idx == 1 + cfg.num_register_tokens
    p = start + (H // 14) * (W // 14)
    assert len(layers) == cfg.depth
    assert all(t.shape == (1, S, p, 2 * cfg.embed_dim) for t in layers)
    assert sorted(kept) == [1, cfg.depth - 1]
    torch.testing.assert_close(kept[cfg.depth - 1], layers[-1])
    torch.testing.assert_close(kept[1], layers[1])
    # frame half and global half differ (they are outputs of different blocks)
    assert not torch.allclose(layers[0][..., : cfg.embed_dim], layers[0][..., cfg.embed_dim :])


def test_aggregator_first_frame_is_special(tiny: VGGT, images: torch.Tensor) -> None:
    """Frame 0 gets its own camera/register tokens: swapping frames changes its outputs."""
    with torch.no_grad():
        a = tiny(images)["pose_enc"][0]
        b = tiny(images.flip(0))["pose_enc"][0]
    assert not torch.allclose(a[0], b[-1], atol=1e-6)


def test_batched_and_unbatched_inputs_agree(tiny: VGGT, images: torch.Tensor) -> None:
    with torch.no_grad():
        a = tiny(images)
        b = tiny(torch.stack((images, images)))
    torch.testing.assert_close(b["depth"][1], a["depth"][0])
    torch.testing.assert_close(b["pose_enc"][0], a["pose_enc"][0])


def test_frame_chunking_does_not_change_dense_outputs(tiny: VGGT, images: torch.Tensor) -> None:
    with torch.no_grad():
        a = tiny(images, frames_chunk_size=None)
        b = tiny(images, frames_chunk_size=2)
    torch.testing.assert_close(a["depth"], b["depth"])
    torch.testing.assert_close(a["world_points"], b["world_points"])


def test_rejects_bad_image_sizes(tiny: VGGT) -> None:
    with pytest.raises(VGGTInputError):
        tiny(torch.rand(2, 3, 50, 84))
    with pytest.raises(VGGTInputError):
        tiny(torch.rand(2, 4, 56, 84))


def test_track_head_runs(tiny: VGGT, images: torch.Tensor) -> None:
    queries = torch.tensor([[10.0, 20.0], [60.0, 30.0], [0.0, 0.0]])
    with torch.no_grad():
        out = tiny(images, query_points=queries)
    assert out["track"].shape == (1, S, 3, 2)
    assert out["vis"].shape == out["conf"].shape == (1, S, 3)
    assert torch.isfinite(out["track"]).all()
    torch.testing.assert_close(out["track"][0, 0], queries)  # frame 0 keeps the queries
    assert ((out["vis"] >= 0) & (out["vis"] <= 1)).all()


def test_state_dict_safetensors_round_trip(
    tiny: VGGT, images: torch.Tensor, tmp_path: Path
) -> None:
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.state_dict().items()}, str(path))
    fresh = VGGT(VGGTConfig.tiny())
    result = fresh.load_state_dict(load_file(str(path)), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(images)["depth"], tiny(images)["depth"])


def _random_rotations(n: int, seed: int) -> torch.Tensor:
    q = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return quat_to_mat(q / q.norm(dim=-1, keepdim=True))


def test_rotation_quaternion_round_trip() -> None:
    rot = _random_rotations(64, 1)
    assert torch.allclose(
        rot @ rot.transpose(-1, -2), torch.eye(3, dtype=rot.dtype).expand(64, 3, 3), atol=1e-12
    )
    q = mat_to_quat(rot)
    assert (q[:, 3] >= 0).all()
    torch.testing.assert_close(quat_to_mat(q), rot)
    # XYZW order: 90 degrees about z
    qz = torch.tensor([0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)], dtype=torch.float64)
    torch.testing.assert_close(
        quat_to_mat(qz),
        torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64),
    )


def test_pose_encoding_round_trip() -> None:
    n, hw = 8, (56, 84)
    rot = _random_rotations(n, 2)
    t = torch.randn(n, 3, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ext = torch.cat((rot, t), dim=-1)
    k = torch.zeros(n, 3, 3, dtype=torch.float64)
    k[:, 0, 0] = torch.linspace(40, 90, n, dtype=torch.float64)
    k[:, 1, 1] = torch.linspace(50, 70, n, dtype=torch.float64)
    k[:, 0, 2], k[:, 1, 2], k[:, 2, 2] = hw[1] / 2, hw[0] / 2, 1.0
    enc = extrinsics_intrinsics_to_pose_encoding(ext, k, hw)
    assert enc.shape == (n, 9)
    ext2, k2 = pose_encoding_to_extrinsics_intrinsics(enc, hw)
    torch.testing.assert_close(ext2, ext)
    torch.testing.assert_close(k2, k)
    # FoV definition: 2 * atan(H / 2 / fy)
    torch.testing.assert_close(enc[:, 7], 2 * torch.atan(hw[0] / 2 / k[:, 1, 1]))


def test_depth_unprojection_matches_point_formula() -> None:
    """Constructed scene: known world points seen by a known camera give back those points."""
    hw = (6, 8)
    rot = _random_rotations(1, 4)[0]
    t = torch.tensor([0.3, -0.2, 1.5], dtype=torch.float64)
    ext = torch.cat((rot, t[:, None]), dim=-1)
    k = torch.tensor([[7.0, 0.0, 4.0], [0.0, 6.0, 3.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    depth = 1.0 + torch.rand(hw, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    world = depth_to_world_points(depth[None, ..., None], ext[None], k[None])[0]
    assert world.shape == (*hw, 3)
    # Project back: p_cam = R p_world + t must have z = depth and land on its pixel.
    cam = world @ rot.T + t
    torch.testing.assert_close(cam[..., 2], depth)
    pix = cam @ k.T
    u, v = pix[..., 0] / pix[..., 2], pix[..., 1] / pix[..., 2]
    vv, uu = torch.meshgrid(torch.arange(hw[0]), torch.arange(hw[1]), indexing="ij")
    torch.testing.assert_close(u, uu.double())
    torch.testing.assert_close(v, vv.double())
    torch.testing.assert_close(
        invert_se3(ext) @ torch.cat((ext, torch.tensor([[0, 0, 0, 1.0]], dtype=torch.float64))),
        torch.eye(4, dtype=torch.float64),
    )


def test_vggt_geometry_feeds_sampler(tiny: VGGT, images: torch.Tensor) -> None:
    from spatial_mllm_ros.sampling.predicted import predicted_voxel_sets

    with torch.no_grad():
        out = tiny(images)
    frames = vggt_geometry(out)
    assert len(frames) == S
    for f in frames:
        assert f.world_points.shape == (H, W, 3) and f.world_points.dtype == np.float32
        assert f.confidence.shape == (H, W) and f.confidence.dtype == np.float32
        assert f.camera_to_world.shape == (4, 4) and f.camera_to_world.dtype == np.float64
        assert (f.intrinsics.width, f.intrinsics.height) == (W, H)
        assert np.isfinite(f.intrinsics.fx) and np.isfinite(f.intrinsics.fy)
        np.testing.assert_allclose(f.camera_to_world[3], [0, 0, 0, 1])
    voxels = predicted_voxel_sets(frames)  # the sampler's filter and grid accept them
    assert any(len(v) for v in voxels.sets)
    # Point-map source has the point head's values verbatim.
    pts = vggt_geometry(out, source="points")
    np.testing.assert_allclose(pts[1].world_points, out["world_points"][0, 1].numpy(), rtol=1e-6)


def test_vggt_geometry_depth_route_is_consistent_with_cameras() -> None:
    """Given a synthetic output, the unprojected points reproject to their pixels with the
    returned camera_to_world and intrinsics (what the sampler relies on)."""
    hw = (14, 28)
    ext = torch.cat((_random_rotations(2, 6), torch.randn(2, 3, 1, dtype=torch.float64)), dim=-1)
    ext[0] = torch.eye(3, 4, dtype=torch.float64)
    k = torch.tensor([[20.0, 0, 14.0], [0, 18.0, 7.0], [0, 0, 1.0]], dtype=torch.float64).expand(
        2, 3, 3
    )
    enc = extrinsics_intrinsics_to_pose_encoding(ext, k, hw).float()
    depth = 2.0 + torch.rand(1, 2, *hw, 1)
    out = {"pose_enc": enc[None], "depth": depth, "depth_conf": torch.ones(1, 2, *hw)}
    frames = vggt_geometry(out)
    np.testing.assert_allclose(frames[0].camera_to_world, np.eye(4), atol=1e-6)
    f = frames[1]
    w2c = np.linalg.inv(f.camera_to_world)
    cam = f.world_points.reshape(-1, 3).astype(np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    np.testing.assert_allclose(cam[:, 2], depth[0, 1, ..., 0].numpy().ravel(), rtol=1e-4)
    u = f.intrinsics.fx * cam[:, 0] / cam[:, 2] + f.intrinsics.cx
    np.testing.assert_allclose(u, np.tile(np.arange(hw[1]), hw[0]), atol=1e-3)
    with pytest.raises(VGGTInputError):
        vggt_geometry({"pose_enc": enc[None]})
