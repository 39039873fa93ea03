"""The engine cache heals itself: a changed ONNX graph, a corrupt or mismatched plan, or a plan
the runtime refuses is rebuilt (logged once); stale engines are removed. A fake builder and
loader stand in for TensorRT (test/model/test_vision_backends.py runs the real one where a GPU
and tensorrt are present)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from spatial_mllm_ros.model.backends.cache import (
    EngineCache,
    EngineKey,
    checkpoint_fingerprint,
    file_digest,
)
from spatial_mllm_ros.model.backends.errors import EngineBuildError

PROFILE = ((80, 1176), (320, 1176), (640, 1176))


class FakeBuilder:
    """Builds 'plans' that name the ONNX digest they were built from; counts builds."""

    def __init__(self) -> None:
        self.builds = 0

    def build(self, key: EngineKey) -> bytes:
        self.builds += 1
        return f"PLAN {key.onnx_sha256} {key.precision} #{self.builds}".encode()

    @staticmethod
    def load(plan: bytes) -> str:
        if not plan.startswith(b"PLAN "):
            raise RuntimeError("not a plan")
        return plan.decode()


def _graph(tmp_path: Path, content: bytes) -> list[Path]:
    onnx = tmp_path / "vision_encoder.onnx"
    onnx.write_bytes(content)
    return [onnx]


def _key(files: list[Path], precision: str = "fp16", trt: str = "10.3.0") -> EngineKey:
    return EngineKey("vision_encoder-112x140", file_digest(files), precision, trt, "8.7", PROFILE)


def _get(cache: EngineCache, key: EngineKey, builder: FakeBuilder) -> str:
    return cache.get_or_build(key, lambda: builder.build(key), FakeBuilder.load)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[EngineCache, FakeBuilder, list[Path]]:
    return EngineCache(tmp_path / "cache"), FakeBuilder(), _graph(tmp_path, b"graph v1")


def test_built_once_then_loaded_from_the_cache(setup: tuple) -> None:
    cache, builder, files = setup
    key = _key(files)
    first = _get(cache, key, builder)
    again = _get(EngineCache(cache.root), key, builder)  # another process: same files
    assert first == again and builder.builds == 1
    (entry,) = cache.entries()
    assert entry["key"] == key.to_dict()
    assert Path(entry["directory"]) == cache.directory(key)


def test_changed_onnx_hash_is_rebuilt_and_the_stale_engine_removed(
    setup: tuple, tmp_path: Path
) -> None:
    cache, builder, files = setup
    old = _key(files)
    _get(cache, old, builder)
    files = _graph(tmp_path, b"graph v2, other weights")
    os.utime(files[0], ns=(1, 1))  # the memoised hash is keyed by size and mtime too
    new = _key(files)
    assert new.onnx_sha256 != old.onnx_sha256 and new.digest != old.digest
    plan = _get(cache, new, builder)
    assert builder.builds == 2 and new.onnx_sha256 in plan
    assert [e["key"]["onnx_sha256"] for e in cache.entries()] == [new.onnx_sha256]
    assert not cache.directory(old).exists()


def test_other_precision_or_tensorrt_version_is_its_own_engine(setup: tuple) -> None:
    cache, builder, files = setup
    _get(cache, _key(files, "fp16"), builder)
    _get(cache, _key(files, "fp32"), builder)
    assert builder.builds == 2 and len(cache.entries()) == 2  # both valid: neither is stale
    _get(cache, _key(files, "fp16", trt="10.7.0"), builder)  # replaces the 10.3 fp16 engine
    assert builder.builds == 3
    assert sorted((e["key"]["precision"], e["key"]["trt_version"]) for e in cache.entries()) == [
        ("fp16", "10.7.0"), ("fp32", "10.3.0")]


def test_corrupt_engine_file_is_rebuilt_and_logged_once(
    setup: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    cache, builder, files = setup
    key = _key(files)
    good = _get(cache, key, builder)
    plan_file = cache.directory(key) / EngineCache.PLAN
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        plan_file.write_bytes(plan_file.read_bytes()[:10])  # truncated
        assert _get(cache, key, builder) != good  # rebuilt, not the damaged bytes
    assert builder.builds == 3
    rebuilt = [r for r in caplog.records if "rebuilding" in r.getMessage()]
    assert len(rebuilt) == 1 and "corrupt" in rebuilt[0].getMessage()
    assert _get(cache, key, builder).endswith("#3") and builder.builds == 3  # now valid


def test_plan_the_runtime_refuses_is_rebuilt(setup: tuple) -> None:
    cache, builder, files = setup
    key = _key(files)
    _get(cache, key, builder)
    refusals = []

    def picky(plan: bytes) -> str:
        if plan.endswith(b"#1"):  # e.g. serialised by another TensorRT build
            refusals.append(plan)
            raise RuntimeError("deserialization failed")
        return plan.decode()

    assert cache.get_or_build(key, lambda: builder.build(key), picky).endswith("#2")
    assert len(refusals) == 1 and builder.builds == 2


def test_mismatched_key_file_is_rebuilt(setup: tuple) -> None:
    cache, builder, files = setup
    key = _key(files)
    _get(cache, key, builder)
    meta_file = cache.directory(key) / EngineCache.KEY
    meta = json.loads(meta_file.read_text())
    meta["key"]["compute_capability"] = "9.0"
    meta_file.write_text(json.dumps(meta))
    _get(cache, key, builder)
    assert builder.builds == 2
    assert json.loads(meta_file.read_text())["key"] == key.to_dict()


def test_failed_build_raises_and_caches_nothing(setup: tuple) -> None:
    cache, _, files = setup
    key = _key(files)

    def broken() -> bytes:
        raise RuntimeError("out of memory")

    with pytest.raises(EngineBuildError, match="out of memory"):
        cache.get_or_build(key, broken, FakeBuilder.load)
    assert cache.entries() == []


def test_checkpoint_fingerprint_follows_the_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 10)
    first = checkpoint_fingerprint(tmp_path)
    assert checkpoint_fingerprint(tmp_path) == first
    weights.write_bytes(b"b" * 11)
    assert checkpoint_fingerprint(tmp_path) != first
    assert checkpoint_fingerprint(tmp_path, "vggt") != checkpoint_fingerprint(tmp_path)
