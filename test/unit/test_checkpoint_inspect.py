"""``spatial-mllm-checkpoint inspect`` diagnoses a checkpoint that cannot load: JSON with
``"loads": false`` and the error, exit status 1, never a traceback."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.model.cli import checkpoint_main


def _weights(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    save_file({"model.embed_tokens.weight": rng.standard_normal((8, 4), dtype=np.float32),
               "lm_head.weight": rng.standard_normal((8, 4), dtype=np.float32)}, str(path))
    return path


def _inspect(capsys: pytest.CaptureFixture[str], target: Path) -> dict[str, Any]:
    status = checkpoint_main(["inspect", str(target), "--no-progress"])
    out = capsys.readouterr()
    assert status == ExitCode.NOT_OK
    assert "Traceback" not in out.err
    info: dict[str, Any] = json.loads(out.out)
    assert info["loads"] is False
    assert info["dir"] == str(target)
    return info


def _bad_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    (size,) = struct.unpack("<Q", data[:8])
    data[8:8 + size] = b"{" + b"x" * (size - 1)  # same length, not JSON
    path.write_bytes(bytes(data))


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])


def _not_safetensors(path: Path) -> None:
    path.write_text("this is a text file, not safetensors\n", encoding="utf-8")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _oversized_header(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 1 << 40) + data[8:])


DAMAGE = {"bad_header": _bad_header, "truncated": _truncated,
          "not_safetensors": _not_safetensors, "empty": _empty,
          "oversized_header": _oversized_header}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_weights_file_is_reported(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, kind: str) -> None:
    DAMAGE[kind](_weights(tmp_path / "model.safetensors"))
    info = _inspect(capsys, tmp_path)
    assert info["error"].startswith("SafetensorError: ")
    assert info["error_file"] == "model.safetensors"
    assert info["files"] == ["model.safetensors"]
    assert info["weight_files"] == ["model.safetensors"]


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_file_given_directly_is_reported(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path, kind: str) -> None:
    target = _weights(tmp_path / "weights.safetensors")
    DAMAGE[kind](target)
    info = _inspect(capsys, target)
    assert info["error"].startswith("SafetensorError: ")
    assert info["error_file"] == "weights.safetensors"


def _sharded(root: Path, shards: list[str]) -> None:
    index = {"metadata": {}, "weight_map": {f"t{i}": name for i, name in enumerate(shards)}}
    (root / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")


def test_the_damaged_shard_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    for i, name in enumerate(names):
        _weights(tmp_path / name, seed=i)
    _sharded(tmp_path, names)
    _truncated(tmp_path / names[1])
    info = _inspect(capsys, tmp_path)
    assert info["weight_files"] == names
    assert info["error_file"] == names[1]


def test_a_missing_shard_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    _weights(tmp_path / names[0])
    _sharded(tmp_path, names)
    info = _inspect(capsys, tmp_path)
    assert info["error"].startswith("MissingShardError: ")
    assert names[1] in info["error"]
    assert "error_file" not in info


def test_a_broken_index_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _weights(tmp_path / "model-00001-of-00001.safetensors")
    (tmp_path / "model.safetensors.index.json").write_text("{not json", encoding="utf-8")
    assert _inspect(capsys, tmp_path)["error"].startswith("MissingShardError: ")


def test_pickle_weights_are_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04N.")
    assert _inspect(capsys, tmp_path)["error"].startswith("UnsafeCheckpointError: ")


def test_a_missing_directory_is_an_input_error(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    """Nothing to inspect: one line on stderr, exit INPUT, no JSON."""
    status = checkpoint_main(["inspect", str(tmp_path / "nowhere"), "--no-progress"])
    out = capsys.readouterr()
    assert status == ExitCode.INPUT and out.out == ""
    assert out.err.strip() == (f"spatial-mllm-checkpoint: error: {tmp_path / 'nowhere'} does "
                               "not exist; pass an existing checkpoint folder "
                               "(spatial-mllm-checkpoint tiny DIR makes one)")


def test_readable_weights_without_a_config_are_reported(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    """Headers read (their tensors are listed), the load fails for want of config.json."""
    _weights(tmp_path / "model.safetensors")
    info = _inspect(capsys, tmp_path)
    assert info["num_tensors"] == 2
    assert info["num_parameters"] == 64
    assert "error_file" not in info
    assert "config.json" in info["error"]
