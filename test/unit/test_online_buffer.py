"""SpatialFrameBuffer: admission, bounds, eviction, colour-only frames, threads, determinism."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.geometry import frame_voxel_keys
from spatial_mllm_ros.sampling import (
    BufferConfig,
    SpatialFrameBuffer,
    UnknownStrategyError,
)
from spatial_mllm_ros.synthetic import make_walkthrough

W, H = 80, 60


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    return make_walkthrough(5, n_frames=80, fps=5.0, width=W, height=H, laps=2.0)


def _cfg(**kw: object) -> BufferConfig:
    base = {"max_frames": 12, "depth_stride": 2, "min_new_voxels": 5, "max_interval_s": 1000.0}
    base.update(kw)
    return BufferConfig(**base)  # type: ignore[arg-type]


def _union(sets: tuple) -> int:  # type: ignore[type-arg]
    arrays = [s for s in sets if s is not None and s.size]
    return int(np.unique(np.concatenate(arrays)).size) if arrays else 0


def test_bounds_hold_and_union_bookkeeping_is_exact(scene) -> None:  # type: ignore[no-untyped-def]
    frame_bytes = scene.frames[0].nbytes
    cfg = _cfg(max_frames=10, max_bytes=int(frame_bytes * 6.5))
    buf = SpatialFrameBuffer(cfg)
    for f in scene.frames:
        buf.add(f)
        assert len(buf) <= cfg.max_frames
        assert buf.nbytes <= cfg.max_bytes
        snap = buf.snapshot()
        assert snap.union_voxels == _union(snap.voxel_sets)
        stamps = [x.stamp_ns for x in snap.frames]
        assert stamps == sorted(stamps)
    assert 2 <= len(buf) < cfg.max_frames  # the byte bound was the binding one


def test_eviction_removes_the_most_redundant_frame(scene) -> None:  # type: ignore[no-untyped-def]
    cfg = _cfg(max_frames=6)
    buf = SpatialFrameBuffer(cfg)
    checked = 0
    for f in scene.frames:
        before = buf.snapshot()
        keys = frame_voxel_keys(f, cfg.voxel_size_m, cfg.depth_stride, cfg.max_depth_m)
        d = buf.add(f)
        if not d.evicted_stamps_ns:
            continue
        sets = [*before.voxel_sets, keys]
        redundancy = []
        for i, s in enumerate(before.voxel_sets):
            others = np.unique(np.concatenate([x for j, x in enumerate(sets) if j != i]))
            exclusive = s.size - np.isin(s, others).sum()
            redundancy.append((exclusive / s.size, exclusive, before.frames[i].stamp_ns))
        assert d.evicted_stamps_ns[0] == min(redundancy)[2]
        checked += 1
    assert checked > 5


def test_redundant_eviction_keeps_more_coverage_than_fifo(scene) -> None:  # type: ignore[no-untyped-def]
    cfg = _cfg(max_frames=8)
    buf = SpatialFrameBuffer(cfg)
    admitted = []
    for f in scene.frames:
        if buf.add(f).admitted:
            admitted.append(frame_voxel_keys(f, cfg.voxel_size_m, cfg.depth_stride))
    fifo = _union(tuple(admitted[-cfg.max_frames :]))
    assert buf.union_voxels >= fifo


def test_admission_rejects_redundant_frames_until_interval(scene) -> None:  # type: ignore[no-untyped-def]
    buf = SpatialFrameBuffer(_cfg(max_interval_s=2.0))
    f = scene.frames[0]
    assert buf.add(f).reason == "first"
    assert buf.add(f).reason == "duplicate_stamp"
    again = replace(f, stamp_ns=f.stamp_ns + 10**9)
    d = buf.add(again)
    assert not d.admitted and d.reason == "redundant" and d.new_voxels == 0
    later = replace(f, stamp_ns=f.stamp_ns + 3 * 10**9)
    assert buf.add(later).reason == "interval"
    assert len(buf) == 2


def test_too_large_frame_is_rejected(scene) -> None:  # type: ignore[no-untyped-def]
    buf = SpatialFrameBuffer(_cfg(max_bytes=100))
    assert buf.add(scene.frames[0]).reason == "too_large"
    assert len(buf) == 0 and buf.nbytes == 0


def test_colour_only_frames_stay_in_their_share_and_fill_selection(scene) -> None:  # type: ignore[no-untyped-def]
    cfg = _cfg(max_frames=8, colour_only_share=0.25, colour_min_interval_s=0.0)
    buf = SpatialFrameBuffer(cfg)
    for f in scene.frames[:3]:
        buf.add(f)
    for i in range(6):
        c = Frame(10**12 + i * 10**9, "cam", scene.frames[10 + i].rgb)
        assert buf.add(c).admitted
    snap = buf.snapshot()
    n_colour = sum(s is None for s in snap.voxel_sets)
    assert n_colour == cfg.max_colour_frames == 2
    geo = sum(s is not None for s in snap.voxel_sets)
    sel = buf.select(geo + 2, "coverage")
    assert len(sel.frames) == geo + 2
    assert sel.coverage == pytest.approx(1.0)
    assert list(sel.frame_stamps_ns) == sorted(sel.frame_stamps_ns)


def test_colour_only_frames_are_throttled(scene) -> None:  # type: ignore[no-untyped-def]
    buf = SpatialFrameBuffer(_cfg(colour_min_interval_s=0.5))
    rgb = scene.frames[0].rgb
    assert buf.add(Frame(0, "cam", rgb)).admitted
    assert buf.add(Frame(10**8, "cam", rgb)).reason == "colour_throttled"
    assert buf.add(Frame(6 * 10**8, "cam", rgb)).admitted


def test_selection_reports_coverage_and_is_never_below_uniform() -> None:
    for seed in (0, 1, 2):
        scene = make_walkthrough(seed, n_frames=60, width=W, height=H)
        buf = SpatialFrameBuffer(_cfg(max_frames=40))
        for f in scene.frames:
            buf.add(f)
        sel = buf.select(8)
        assert len(sel.frames) == 8 and sel.strategy == "coverage"
        assert 0 < sel.uniform_coverage <= sel.coverage <= 1.0
        assert sel.indices == tuple(sorted(sel.selection_order))
    with pytest.raises(UnknownStrategyError):
        buf.select(4, "bogus")


def test_deterministic(scene) -> None:  # type: ignore[no-untyped-def]
    results = []
    for _ in range(2):
        buf = SpatialFrameBuffer(_cfg())
        decisions = [buf.add(f) for f in scene.frames]
        results.append((decisions, buf.select(6).frame_stamps_ns))
    assert results[0] == results[1]


def test_concurrent_add_and_select(scene) -> None:  # type: ignore[no-untyped-def]
    buf = SpatialFrameBuffer(_cfg(max_frames=10))
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                snap = buf.snapshot()
                assert snap.union_voxels == _union(snap.voxel_sets)
                if len(snap):
                    buf.select(4, snapshot=snap)
        except BaseException as err:
            errors.append(err)

    t = threading.Thread(target=reader)
    t.start()
    for f in scene.frames:
        buf.add(f)
    done.set()
    t.join()
    assert not errors
    buf.clear()
    assert len(buf) == 0 and buf.nbytes == 0
