"""One space-aware buffer for several cameras (issue 22 points 2-4): frames identified by
(camera, stamp), coverage over the voxels any camera saw, the order the picks are handed to the
model (grouped by camera, fewest temporal pairs across cameras), answers naming each frame's
camera; one camera keeps the reference's time order."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from testkit.fakes import ScriptedAnswerer
from testkit.frames import S, depth_frame

from spatial_mllm_ros.answering.pipeline import AnsweringPipeline, PipelineConfig
from spatial_mllm_ros.answering.types import AnswerStatus, QuestionRequest
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.geometry import frame_voxel_keys
from spatial_mllm_ros.core.poses import rigid_transform
from spatial_mllm_ros.sampling.online import BufferConfig, SpatialFrameBuffer
from spatial_mllm_ros.sampling.qwen_grid import TEMPORAL_PATCH_SIZE
from spatial_mllm_ros.sampling.selection import model_order
from spatial_mllm_ros.synthetic.rig import RigScene, make_rig_walkthrough, rig_extrinsic

K = 16
CONFIG = BufferConfig(depth_stride=2)


@pytest.fixture(scope="module")
def rig() -> RigScene:
    """A synthetic room seen by front, left and right cameras on one moving base (small
    images: 40 steps x 3 cameras)."""
    return make_rig_walkthrough(3, n_steps=40, width=160, height=120)


def _buffer(frames: list[Frame]) -> SpatialFrameBuffer:
    buf = SpatialFrameBuffer(CONFIG)
    for f in frames:
        buf.add(f)
    return buf


def _voxels(frames: tuple[Frame, ...]) -> int:
    keys = [frame_voxel_keys(f, CONFIG.voxel_size_m, CONFIG.depth_stride, CONFIG.max_depth_m)
            for f in frames]
    return len(np.unique(np.concatenate([k for k in keys if k is not None])))


def _cross_pairs(cameras: list[str]) -> int:
    """Temporal pairs (frames 0-1, 2-3, ...) whose two frames come from two cameras."""
    return sum(a != b for a, b in zip(cameras[::2], cameras[1::2], strict=False))


def test_the_shared_buffer_covers_more_than_the_best_single_camera(rig: RigScene) -> None:
    shared = _buffer(rig.all_frames()).select(K, "coverage")
    single = {name: _voxels(_buffer(frames).select(K, "coverage").frames)
              for name, frames in rig.frames.items()}
    assert len(shared.frames) == K
    assert _voxels(shared.frames) > max(single.values()), single
    assert len(set(shared.frame_cameras)) > 1


def test_the_answer_names_the_cameras_of_its_frames(rig: RigScene) -> None:
    model = ScriptedAnswerer("3")
    pipeline = AnsweringPipeline(model, PipelineConfig(frame_budget=K, grounding=False),
                                 clock=lambda: 0.0)
    rec = pipeline.answer(QuestionRequest(1, "How many chairs are in this room?"),
                          _buffer(rig.all_frames()))
    assert rec.status is AnswerStatus.OK, rec.error
    assert len(set(rec.frame_cameras)) > 1
    assert len(rec.frame_cameras) == len(rec.frame_stamps_ns) == K
    assert rec.to_json()["frame_cameras"] == rec.frame_cameras
    assert model.answered[0] == rec.frame_stamps_ns  # the model got them in the stated order
    groups = [name for name, _ in itertools.groupby(rec.frame_cameras)]
    assert len(groups) == len(set(groups))  # each camera's frames together
    for name in groups:
        stamps = [s for s, c in zip(rec.frame_stamps_ns, rec.frame_cameras, strict=True)
                  if c == name]
        assert stamps == sorted(stamps)


def test_rig_poses_are_the_base_pose_times_the_extrinsic(rig: RigScene) -> None:
    for name, frames in rig.frames.items():
        e = rig_extrinsic(name)
        mount = rigid_transform(e.translation, e.rotation_xyzw)
        for base, frame in zip(rig.base, frames, strict=True):
            assert frame.pose is not None and frame.camera == name
            np.testing.assert_allclose(frame.pose, base @ mount, atol=1e-12)
            assert frame.frame_id == f"{name}_color_optical_frame"


def test_frames_of_two_cameras_at_one_stamp_are_both_kept() -> None:
    buf = SpatialFrameBuffer(BufferConfig(max_frames=8))
    front = replace(depth_frame(0), camera="front")
    left = replace(depth_frame(0), camera="left")
    assert buf.add(front).admitted
    assert buf.add(left).admitted  # the same stamp: another camera's frame
    again = buf.add(replace(depth_frame(0), camera="left"))
    assert not again.admitted and again.reason == "duplicate_stamp"
    assert [f.camera for f in buf.snapshot().frames] == ["front", "left"]


def _frames(cameras: str) -> list[Frame]:
    """One frame per letter, in time order, the letter its camera."""
    return [replace(depth_frame(i), camera=c) for i, c in enumerate(cameras)]


def test_one_camera_is_handed_over_in_time_order() -> None:
    frames = _frames("aaaaaaaa")
    assert model_order(frames, [5, 1, 7, 0]) == [0, 1, 5, 7]


@pytest.mark.parametrize(
    ("cameras", "picks", "expected"),
    [
        ("abab", [0, 1, 2, 3], [0, 2, 1, 3]),  # by camera, each in time order
        ("aabbb", [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]),  # even group first: no pair across
        ("abbba", [0, 1, 2, 3, 4], [0, 4, 1, 2, 3]),  # a's two frames first, though b came
        ("abcab", [0, 1, 2, 3, 4], [0, 3, 1, 4, 2]),  # a, b even: first; c odd: last
        ("abcbb", [0, 1, 3, 4], [0, 1, 3, 4]),  # c not picked; a, b odd: by first stamp
    ],
    ids=["interleaved", "even-first", "even-group-first", "odd-last", "subset"],
)
def test_several_cameras_are_grouped(cameras: str, picks: list[int],
                                     expected: list[int]) -> None:
    assert model_order(_frames(cameras), picks) == expected


@pytest.mark.parametrize("seed", range(20))
def test_the_order_joins_the_fewest_pairs_across_cameras(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cameras = "".join(rng.choice(list("abc"), size=12))
    picks = sorted(rng.choice(12, size=int(rng.integers(2, 12)), replace=False).tolist())
    frames = _frames(cameras)
    order = model_order(frames, picks)
    assert sorted(order) == picks
    got = _cross_pairs([frames[j].camera for j in order])
    counts = [sum(frames[j].camera == c for j in picks) for c in "abc"]
    odd = sum(n % 2 for n in counts if n)
    assert TEMPORAL_PATCH_SIZE == 2
    assert got == odd // 2  # the fewest possible: one per two cameras of an odd count


def test_one_camera_selections_are_todays(rig: RigScene) -> None:
    """Every strategy on a one-camera buffer: the frames in time order, indices ascending,
    every frame the default camera -- the selection the reference's sort gives."""
    frames = [replace(f, camera="default") for f in rig.frames["front"]]
    buf = _buffer(frames)
    for strategy in ("coverage", "scored", "uniform"):
        sel = buf.select(8, strategy)
        assert list(sel.indices) == sorted(sel.selection_order)
        assert list(sel.frame_stamps_ns) == sorted(sel.frame_stamps_ns)
        assert set(sel.frame_cameras) == {"default"}
    assert Frame(S, "cam", np.zeros((2, 2, 3), np.uint8)).camera == "default"


def test_clearing_one_camera_keeps_the_others_frames_and_their_voxels(rig: RigScene) -> None:
    buf = _buffer(rig.all_frames())
    before = set(buf.snapshot().frames)
    assert {f.camera for f in before} == {"front", "left", "right"}
    buf.clear_camera("left")
    kept = buf.snapshot().frames
    assert set(kept) == {f for f in before if f.camera != "left"}
    assert buf.union_voxels == _voxels(kept)  # the union forgot left's voxels alone
    assert buf.add(rig.frames["left"][0]).admitted  # its first frame is new coverage again
