"""Checkpoint loading: safe formats, shards, layouts, and clear failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from testkit.tiny import fresh_copy, tiny_checkpoint

from spatial_mllm_ros.model.cli import checkpoint_main
from spatial_mllm_ros.model.engine import SpatialMLLMEngine, load_model
from spatial_mllm_ros.model.errors import (
    GeometryUnavailableError,
    MissingShardError,
    MissingTensorError,
    ShapeMismatchError,
    UnexpectedTensorError,
    UnsafeCheckpointError,
)
from spatial_mllm_ros.model.loading import weight_files


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_pickle_checkpoint_is_refused(tmp_path: Path) -> None:
    ckpt = fresh_copy(tiny_checkpoint("v1.1"), "pickle")
    tensors = load_file(str(ckpt / "model.safetensors"))
    (ckpt / "model.safetensors").unlink()
    torch.save(tensors, ckpt / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match="safetensors"):
        load_model(ckpt)
    with pytest.raises(UnsafeCheckpointError, match="save_file"):
        weight_files(ckpt / "pytorch_model.bin")


def test_missing_shard_fails() -> None:
    ckpt = fresh_copy(tiny_checkpoint("v1.0", shards=3), "missing-shard")
    (ckpt / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(MissingShardError, match="model-00002-of-00003"):
        load_model(ckpt)


def _rewrite(ckpt: Path, edit: str) -> None:
    tensors = load_file(str(ckpt / "model.safetensors"))
    if edit == "shape":
        tensors["connector.mlp.2.weight"] = torch.zeros(3, 5)
    elif edit == "missing":
        del tensors["model.layers.0.mlp.up_proj.weight"]
    elif edit == "unexpected":
        tensors["connector.extra.weight"] = torch.zeros(2)
    save_file(tensors, str(ckpt / "model.safetensors"))


def test_wrong_shape_fails() -> None:
    ckpt = fresh_copy(tiny_checkpoint("v1.1"), "shape")
    _rewrite(ckpt, "shape")
    with pytest.raises(ShapeMismatchError, match=r"connector\.mlp\.2\.weight"):
        load_model(ckpt)


def test_missing_tensor_fails() -> None:
    ckpt = fresh_copy(tiny_checkpoint("v1.1"), "missing")
    _rewrite(ckpt, "missing")
    with pytest.raises(MissingTensorError) as info:
        load_model(ckpt)
    assert info.value.missing == ["model.language_model.layers.0.mlp.up_proj.weight"]


def test_unexpected_tensor_fails() -> None:
    ckpt = fresh_copy(tiny_checkpoint("v1.1"), "unexpected")
    _rewrite(ckpt, "unexpected")
    with pytest.raises(UnexpectedTensorError) as info:
        load_model(ckpt)
    assert info.value.unexpected == ["connector.extra.weight"]


@pytest.mark.parametrize("layout", ["v1.0", "v1.1"])
def test_sharded_equals_single_file(layout: str) -> None:
    single, _ = load_model(tiny_checkpoint(layout))
    sharded, report = load_model(tiny_checkpoint(layout, shards=3))
    index = json.loads(
        (tiny_checkpoint(layout, shards=3) / "model.safetensors.index.json").read_text()
    )
    assert len(set(index["weight_map"].values())) == 3
    a, b = _state(single), _state(sharded)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert report.missing == [] and report.unexpected == []


def test_vggt_checkpoint_supplies_missing_heads(tmp_path: Path) -> None:
    no_heads = tiny_checkpoint("v1.1", with_heads=False)
    engine = SpatialMLLMEngine.from_pretrained(no_heads)
    assert set(engine.report.dropped_heads) == {
        "camera_head",
        "depth_head",
        "point_head",
        "track_head",
    }
    assert engine.report.missing == []
    with pytest.raises(GeometryUnavailableError, match="vggt_checkpoint"):
        engine.predict_geometry([torch.zeros(56, 56, 3, dtype=torch.uint8).numpy()] * 2)

    vggt_dir = tmp_path / "vggt"
    assert checkpoint_main(["tiny", str(vggt_dir), "--layout", "vggt", "--seed", "7"]) == 0
    model, report = load_model(no_heads, extra_sources=[vggt_dir])
    assert report.layouts[str(vggt_dir)] == "vggt"
    assert report.missing_optional == [] and report.dropped_heads == []
    # The aggregator comes from the Spatial-MLLM file (first source), heads from VGGT-1B.
    assert len(report.duplicates) > 0 and all(
        d.startswith("aggregator.") for d in report.duplicates
    )
    vggt = load_file(str(vggt_dir / "model.safetensors"))
    depth_head: Any = model.spatial_encoder.depth_head
    heads = {f"depth_head.{k}": v for k, v in depth_head.state_dict().items()}
    assert heads and all(torch.equal(v, vggt[k]) for k, v in heads.items())


def _split_qwen(src: Path, dst_main: Path, dst_qwen: Path, transformers5: bool) -> None:
    """Main dir: config + spatial/connector tensors; qwen dir: the Qwen2.5-VL tensors only."""
    tensors = load_file(str(src / "model.safetensors"))
    qwen = {k: v for k, v in tensors.items() if k.startswith(("visual.", "model.", "lm_head."))}
    rest = {k: v for k, v in tensors.items() if k not in qwen}
    qwen.pop("lm_head.weight")  # tie_word_embeddings: tied to embed_tokens when absent
    if transformers5:
        qwen = {
            (
                "model." + k
                if k.startswith("visual.")
                else "model.language_model." + k[len("model.") :]
            ): v
            for k, v in qwen.items()
        }
    dst_main.mkdir(parents=True)
    dst_qwen.mkdir(parents=True)
    (dst_main / "config.json").write_text((src / "config.json").read_text())
    save_file(rest, str(dst_main / "model.safetensors"))
    save_file(qwen, str(dst_qwen / "model.safetensors"))


@pytest.mark.parametrize("transformers5", [False, True])
def test_qwen_key_checkpoint_loads(tmp_path: Path, transformers5: bool) -> None:
    src = tiny_checkpoint("v1.1")
    reference, _ = load_model(src)
    _split_qwen(src, tmp_path / "main", tmp_path / "qwen", transformers5)
    model, report = load_model(tmp_path / "main", extra_sources=[tmp_path / "qwen"])
    assert report.layouts[str(tmp_path / "qwen")] == "qwen"
    assert report.tied == ["lm_head.weight"]
    assert report.missing == [] and report.unexpected == []
    assert model.lm_head.weight is model.model.language_model.embed_tokens.weight
    a, b = _state(reference), _state(model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_qwen_only_checkpoint_without_spatial_parts_fails(tmp_path: Path) -> None:
    src = tiny_checkpoint("v1.1")
    _split_qwen(src, tmp_path / "main", tmp_path / "qwen", False)
    (tmp_path / "qwen" / "config.json").write_text((src / "config.json").read_text())
    with pytest.raises(MissingTensorError) as info:
        load_model(tmp_path / "qwen")
    assert any(m.startswith("connector.") for m in info.value.missing)
    assert any(m.startswith("spatial_encoder.aggregator.") for m in info.value.missing)


def test_inspect_reports_layout(capsys: pytest.CaptureFixture[str]) -> None:
    assert checkpoint_main(["inspect", str(tiny_checkpoint("v1.0", shards=3))]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "v1.0" and info["loads"] is True
    assert info["load_report"]["missing"] == [] and info["load_report"]["unexpected"] == []
    assert info["prefixes"]["vggt_embedding_merger"] == 10
