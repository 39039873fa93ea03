"""Frames handed to another process through shared memory arrive exactly, and no segment
outlives its sender."""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pytest

from spatial_mllm_ros.answering.shared_frames import (
    MIN_SEGMENT_BYTES,
    FrameReceiver,
    FrameSender,
    PackedFrames,
)
from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame

SHM = Path("/dev/shm")


def _frames(n: int, height: int, width: int, seed: int) -> list[Frame]:
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        pose = np.eye(4)
        pose[:3, 3] = rng.normal(size=3)
        frames.append(Frame(
            stamp_ns=1_000_000_000 + i * 33_000_000, frame_id="cam",
            rgb=rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
            depth_m=rng.random((height, width), dtype=np.float32),
            intrinsics=CameraIntrinsics(500.0 + i, 501.0, width / 2, height / 2, width, height),
            pose=pose, world_frame_id="map", seq=i,
        ))
    return frames


def _child(conn: Connection) -> None:
    """Unpack every request and send the frames back through the pipe (pickled)."""
    receiver = FrameReceiver()
    try:
        while (packed := conn.recv()) is not None:
            conn.send(receiver.unpack(packed))
    finally:
        receiver.close()


def _same(got: Frame, sent: Frame) -> None:
    assert got.rgb.dtype == np.uint8 and got.rgb.shape == sent.rgb.shape
    np.testing.assert_array_equal(got.rgb, sent.rgb)
    assert got.depth_m is None  # the model does not use depth: never handed over
    assert (got.stamp_ns, got.frame_id, got.seq, got.world_frame_id) == (
        sent.stamp_ns, sent.frame_id, sent.seq, sent.world_frame_id)
    assert got.intrinsics == sent.intrinsics
    assert got.pose is not None and sent.pose is not None
    np.testing.assert_array_equal(got.pose, sent.pose)


@pytest.fixture
def child() -> Connection:
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(there,), daemon=True)
    proc.start()
    there.close()
    yield here
    here.send(None)
    proc.join(30)
    assert proc.exitcode == 0


def test_another_process_sees_exactly_the_frames_pixels(child: Connection) -> None:
    sender = FrameSender()
    try:
        first = _frames(3, 48, 64, seed=1)
        # a non-contiguous image (a crop of a larger one) and a second size in one request
        crop = Frame(stamp_ns=5, frame_id="cam", rgb=_frames(1, 90, 120, seed=2)[0].rgb[7:57, 3:83])
        packed = sender.pack([*first, crop])
        assert all(f.rgb.size == 0 and f.depth_m is None for f in packed.frames)
        child.send(packed)
        got = child.recv()
        assert len(got) == 4
        for g, s in zip(got[:3], first, strict=True):
            _same(g, s)
        np.testing.assert_array_equal(got[3].rgb, crop.rgb)

        # the next request reuses the segment; different pixels arrive
        second = _frames(2, 48, 64, seed=3)
        packed2 = sender.pack(second)
        assert packed2.segment == packed.segment
        child.send(packed2)
        for g, s in zip(child.recv(), second, strict=True):
            _same(g, s)
    finally:
        sender.close()


def test_a_larger_request_replaces_the_segment_and_close_removes_it(child: Connection) -> None:
    sender = FrameSender()
    small = sender.pack(_frames(1, 8, 8, seed=4))
    assert (SHM / small.segment).exists()
    frames = 1 + MIN_SEGMENT_BYTES // (480 * 640 * 3)  # one more than the first segment holds
    big_frames = _frames(frames, 480, 640, seed=5)
    big = sender.pack(big_frames)
    assert big.segment != small.segment
    assert not (SHM / small.segment).exists()  # the outgrown segment is gone at once
    child.send(big)
    got = child.recv()
    _same(got[0], big_frames[0])
    _same(got[-1], big_frames[-1])
    sender.close()
    assert not (SHM / big.segment).exists()
    assert sender.segment_name is None
    sender.close()  # idempotent


def test_received_frames_own_their_pixels() -> None:
    sender, receiver = FrameSender(), FrameReceiver()
    try:
        sent = _frames(2, 16, 16, seed=6)
        got = receiver.unpack(sender.pack(sent))
        sender.pack(_frames(2, 16, 16, seed=7))  # overwrites the segment
        for g, s in zip(got, sent, strict=True):
            _same(g, s)
    finally:
        receiver.close()
        sender.close()


def test_a_frame_without_a_colour_image_is_refused() -> None:
    sender = FrameSender()
    bad = Frame(stamp_ns=1, frame_id="cam", rgb=np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        sender.pack([bad])
    assert sender.segment_name is None  # nothing was created for a refused request


def test_packed_frames_carry_no_pixels_through_the_pipe() -> None:
    import pickle

    sender = FrameSender()
    try:
        frames = _frames(4, 120, 160, seed=8)
        packed = sender.pack(frames)
        assert isinstance(packed, PackedFrames)
        size = len(pickle.dumps(packed))
        assert size < sum(f.rgb.nbytes for f in frames) / 20
    finally:
        sender.close()


def test_a_sender_never_closed_removes_its_segment_when_its_process_exits() -> None:
    import subprocess
    import sys

    code = ("import numpy as np; from spatial_mllm_ros.answering.shared_frames import FrameSender;"
            "from spatial_mllm_ros.core.frame import Frame; s = FrameSender();"
            "p = s.pack([Frame(1, 'cam', np.zeros((4, 4, 3), np.uint8))]); print(p.segment)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    segment = res.stdout.strip()
    assert segment
    assert not (SHM / segment).exists()
    assert "leaked" not in res.stderr  # removed by the sender, not by the resource tracker
