"""Synthetic data: rooms (determinism, ground truth), the procedural stream, injected faults."""

from __future__ import annotations

import numpy as np
import pytest
from testkit.fakes import FifoStore

from spatial_mllm_ros.core import convert as C
from spatial_mllm_ros.core.encode import MessageEncoder, namespace_factory
from spatial_mllm_ros.core.ingest import IngestConfig, Ingestor
from spatial_mllm_ros.synthetic import (
    INJECT_KINDS,
    UnknownInjectKindError,
    faulty_message,
    generate_layout,
    inject_schedule,
    make_walkthrough,
    ping_pong,
    procedural_frames,
)

ENC = MessageEncoder(namespace_factory())


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


def test_procedural_frames_have_parallax_consistent_with_depth() -> None:
    frames = procedural_frames(8, width=160, height=120)
    assert len(frames) == 8
    f0, f2 = frames[0], frames[2]
    assert f0.rgb.shape == (120, 160, 3) and f0.depth_m.dtype == np.float32
    assert np.all(f0.depth_m[: 120 // 16] == 0) and (f0.depth_m[120 // 16:] > 0).all()
    assert set(np.unique(f0.depth_m[120 // 16:])) == {np.float32(1.4), np.float32(2.5)}
    dx = f2.pose[0, 3] - f0.pose[0, 3]
    assert dx > 0.1 and np.allclose(f2.pose[1:3, 3], f0.pose[1:3, 3])
    # the box (at 1.4 m) moves by fx * dx / Z pixels to the left
    shift = round(f0.intrinsics.fx * dx / 1.4)
    box0 = np.flatnonzero((f0.depth_m == np.float32(1.4)).any(axis=0))
    box2 = np.flatnonzero((f2.depth_m == np.float32(1.4)).any(axis=0))
    assert box0[0] - box2[0] == pytest.approx(shift, abs=1)
    # poses are rigid transforms of the optical frame, optical z along world +y
    r = f0.pose[:3, :3]
    assert np.allclose(r @ r.T, np.eye(3)) and np.allclose(r[:, 2], [0, 1, 0])


def test_ping_pong_goes_back_and_forth() -> None:
    assert [ping_pong(3, i) for i in range(7)] == [0, 1, 2, 1, 0, 1, 2]
    assert [ping_pong(1, i) for i in range(3)] == [0, 0, 0]


def test_inject_schedule() -> None:
    assert inject_schedule(2, ["a", "b"], 2, 1) == [None, None, "a", "a", "b", "b", None]


@pytest.mark.parametrize("kind", sorted(INJECT_KINDS))
def test_each_fault_is_rejected_with_its_reason(kind: str) -> None:
    frame = procedural_frames(2, width=32, height=24)[0]
    stamp = 5_000_000_000
    topic, msg = faulty_message(ENC, kind, frame, stamp, last_colour_ns=stamp - 10)
    assert topic == INJECT_KINDS[kind][0]
    limits = C.ConvertLimits(max_pixels=2 * frame.width * frame.height)
    ing = Ingestor(FifoStore(), IngestConfig(limits=limits))
    if kind == "stamp_backwards":  # rejected after a good colour image
        ing.ingest("colour", ENC.colour_image(frame.rgb, stamp - 10, frame.frame_id), stamp)
    result = ing.ingest(topic, msg, stamp)
    assert result.rejected is not None
    assert result.rejected.reason.value == INJECT_KINDS[kind][1]
    assert ing.counters()[f"in.{topic}.rejected.{INJECT_KINDS[kind][1]}"] == 1


def test_unknown_fault_kind() -> None:
    frame = procedural_frames(2, width=32, height=24)[0]
    with pytest.raises(UnknownInjectKindError, match="one of"):
        faulty_message(ENC, "gremlins", frame, 1)
