"""core.buffer: bounded FIFO by frame count and bytes, thread-safe."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from spatial_mllm_ros.core.buffer import FrameBuffer, FrameStore
from spatial_mllm_ros.core.frame import Frame


def frame(i: int, side: int = 10) -> Frame:
    return Frame(i, "cam", np.zeros((side, side, 3), np.uint8), seq=i)


def test_count_bound_evicts_oldest_first():
    b = FrameBuffer(max_frames=3, max_bytes=10**9)
    evicted = [e.seq for i in range(5) for e in b.add(frame(i)).evicted]
    assert evicted == [0, 1]
    assert [f.seq for f in b.snapshot()] == [2, 3, 4]
    assert len(b) == 3 and b.nbytes == 3 * 300


def test_byte_bound():
    b = FrameBuffer(max_frames=100, max_bytes=1000)
    for i in range(4):
        b.add(frame(i))  # 300 B each
    assert [f.seq for f in b.snapshot()] == [1, 2, 3] and b.nbytes == 900
    evicted = b.add(frame(9, side=20)).evicted  # 1200 B: larger than the bound, evicts everything
    assert [e.seq for e in evicted] == [1, 2, 3, 9]
    assert len(b) == 0 and b.nbytes == 0


def test_snapshot_is_immutable_copy():
    b = FrameBuffer(2, 10**6)
    b.add(frame(0))
    snap = b.snapshot()
    b.add(frame(1))
    b.add(frame(2))
    assert isinstance(snap, tuple) and [f.seq for f in snap] == [0]


def test_thread_safety_bounds_hold():
    b = FrameBuffer(50, 10**9)

    def work(base: int) -> None:
        for i in range(500):
            b.add(frame(base + i))
            assert len(b.snapshot()) <= 50

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(b) == 50 and b.nbytes == 50 * 300


def test_protocol_and_validation():
    assert isinstance(FrameBuffer(1, 1), FrameStore)
    with pytest.raises(ValueError):
        FrameBuffer(0, 10)
    with pytest.raises(ValueError):
        FrameBuffer(1, 0)

