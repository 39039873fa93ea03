"""Qwen2.5-VL box parsing, mapping back to the original frame, and 3D box positions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatial_mllm_ros.core.frame import CameraIntrinsics
from spatial_mllm_ros.vsibench.boxes import Box2D, box_position, parse_boxes, position_frame
from spatial_mllm_ros.vsibench.errors import BoxError

# The model saw a 448x336 image resized from a 640x480 frame: sx = 640/448, sy = 480/336
# (both 10/7, as a real Qwen resize to multiples of 28 would give).
RESIZED = (448, 336)
ORIGINAL = (640, 480)
S = 640 / 448


def corners(b: Box2D) -> tuple[float, float, float, float]:
    return (b.x_min, b.y_min, b.x_max, b.y_max)


def test_json_fenced_list_is_mapped_back() -> None:
    text = (
        "Here are the objects:\n```json\n"
        '[\n  {"bbox_2d": [28, 56, 140, 168], "label": "chair"},\n'
        '  {"bbox_2d": [224, 0, 448, 336], "label": "shelf"}\n]\n```'
    )
    boxes = parse_boxes(text, RESIZED, ORIGINAL)
    assert [b.label for b in boxes] == ["chair", "shelf"]
    # 28 * 10/7 = 40, 56 * 10/7 = 80, 140 * 10/7 = 200, 168 * 10/7 = 240
    assert corners(boxes[0]) == pytest.approx((40.0, 80.0, 200.0, 240.0))
    # 224 * 10/7 = 320; the box spans the full height 0..480
    assert corners(boxes[1]) == pytest.approx((320.0, 0.0, 640.0, 480.0))
    assert all(math.isnan(b.score) and b.frame_index == -1 and b.position is None for b in boxes)


def test_anisotropic_resize() -> None:
    # 1000x500 frame seen as 280x280: sx = 1000/280, sy = 500/280.
    boxes = parse_boxes('{"bbox_2d": [28, 28, 56, 140], "label": "cup"}', (280, 280), (1000, 500))
    assert len(boxes) == 1
    # x: 28 * 1000/280 = 100, 56 * 1000/280 = 200; y: 28 * 500/280 = 50, 140 * 500/280 = 250
    assert corners(boxes[0]) == pytest.approx((100.0, 50.0, 200.0, 250.0))


def test_single_object_swapped_corners_and_clipping() -> None:
    text = '{"bbox_2d": [140, 168, -14, 400], "label": "lamp", "score": 0.8}'
    (b,) = parse_boxes(text, RESIZED, ORIGINAL)
    # x: sorted(140, -14) * 10/7 = (-20, 200) -> clipped (0, 200)
    # y: sorted(168, 400) * 10/7 = (240, 571.4) -> clipped (240, 480)
    assert corners(b) == pytest.approx((0.0, 240.0, 200.0, 480.0))
    assert b.score == pytest.approx(0.8)


def test_special_token_form() -> None:
    text = (
        "<|object_ref_start|>the red chair<|object_ref_end|>"
        "<|box_start|>(28,56),(140,168)<|box_end|> and "
        "<|object_ref_start|>mugs<|object_ref_end|>"
        "<|box_start|>(0,0),(7,7)<|box_end|><|box_start|>(14, 14), (21, 21)<|box_end|>"
    )
    boxes = parse_boxes(text, RESIZED, ORIGINAL)
    assert [b.label for b in boxes] == ["the red chair", "mugs", "mugs"]
    assert corners(boxes[0]) == pytest.approx((40.0, 80.0, 200.0, 240.0))
    assert corners(boxes[1]) == pytest.approx((0.0, 0.0, 10.0, 10.0))
    assert corners(boxes[2]) == pytest.approx((20.0, 20.0, 30.0, 30.0))


def test_special_token_normalized_1000_option() -> None:
    text = "<|box_start|>(100,250),(500,1000)<|box_end|>"
    (b,) = parse_boxes(text, RESIZED, ORIGINAL, token_coords="normalized_1000")
    # 100/1000*640 = 64, 250/1000*480 = 120, 500/1000*640 = 320, 1000/1000*480 = 480
    assert corners(b) == pytest.approx((64.0, 120.0, 320.0, 480.0))
    assert b.label == ""


def test_truncated_and_malformed_entries_are_skipped() -> None:
    text = (
        '```json\n[{"bbox_2d": [28, 56, 140, 168], "label": "chair"}, '
        '{"bbox_2d": [1, 2, 3], "label": "three numbers"}, '
        '{"bbox_2d": ["a", 2, 3, 4], "label": "text"}, '
        '{"bbox_2d": [700, 700, 900, 900], "label": "outside"}, '
        '{"label": "no box"}, '
        '{"bbox_2d": [0, 0, 14, 14], "label": "last", "sco'
    )
    boxes = parse_boxes(text, RESIZED, ORIGINAL)
    assert [b.label for b in boxes] == ["chair"]


def test_nested_json_and_mixed_forms_keep_text_order() -> None:
    text = (
        "<|object_ref_start|>a<|object_ref_end|><|box_start|>(0,0),(14,14)<|box_end|> "
        '{"objects": [{"bbox_2d": [14, 14, 28, 28], "label": "b"}]}'
    )
    assert [b.label for b in parse_boxes(text, RESIZED, ORIGINAL)] == ["a", "b"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no boxes here",
        "```json\n```",
        "[[[[[[",
        "{" * 5000,
        '{"bbox_2d": null}',
        '{"bbox_2d": [NaN, 1, 2, 3]}',
        '[{"bbox_2d": [1e400, 0, 5, 5]}]',
        "<|box_start|>(1,2)<|box_end|>",
        "<|object_ref_start|>x<|object_ref_end|><|box_start|>",
        '{"bbox_2d": [true, 1, 2, 3]}',
    ],
)
def test_bad_text_never_raises(text: str) -> None:
    assert parse_boxes(text, RESIZED, ORIGINAL) == []


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('{}[]",:0123456789.- abcbbox_2dlabel<|>()'))))
def test_arbitrary_text_never_raises(text: str) -> None:
    for b in parse_boxes(text, RESIZED, ORIGINAL):
        assert 0.0 <= b.x_min < b.x_max <= 640.0 and 0.0 <= b.y_min < b.y_max <= 480.0


def test_bad_sizes_raise() -> None:
    with pytest.raises(BoxError):
        parse_boxes("", (0, 10), ORIGINAL)
    with pytest.raises(BoxError):
        parse_boxes("", RESIZED, (640,))  # type: ignore[arg-type]


def test_to_dict_is_json() -> None:
    b = Box2D("cup", math.nan, 1.0, 2.0, 3.0, 4.0, frame_index=2, position=np.array([1.0, 2, 3]))
    d = json.loads(json.dumps(b.to_dict(), allow_nan=False))
    assert d == {
        "label": "cup",
        "score": None,
        "bbox": [1.0, 2.0, 3.0, 4.0],
        "frame_index": 2,
        "position": [1.0, 2.0, 3.0],
    }


# --- 3D positions --------------------------------------------------------------------------

K = CameraIntrinsics(fx=500.0, fy=400.0, cx=320.0, cy=240.0, width=640, height=480)


def plane(z: float) -> np.ndarray:
    return np.full((480, 640), z, dtype=np.float32)


def test_position_on_fronto_parallel_plane() -> None:
    # Box pixels x in [399, 402) -> centre pixels u in {399, 400, 401} for fraction 1,
    # y in [139, 142) -> v in {139, 140, 141}. Median u = 400, v = 140 at z = 2:
    #   X = (400 - 320) * 2 / 500 = 0.32, Y = (140 - 240) * 2 / 400 = -0.5, Z = 2.
    box = Box2D("cup", math.nan, 399.0, 139.0, 402.0, 142.0)
    p = box_position(box, plane(2.0), K, None, central_fraction=1.0)
    assert p is not None
    np.testing.assert_allclose(p, [0.32, -0.5, 2.0], atol=1e-9)
    assert position_frame(None) == "camera"


def test_position_median_ignores_outliers_and_holes() -> None:
    depth = plane(2.0)
    depth[100:200, 300:400] = 0.0  # holes (no measurement)
    depth[200:206, 400:406] = 9.0  # a few far outliers inside the central region
    depth[210, 410] = np.nan
    box = Box2D("box", math.nan, 300.0, 100.0, 500.0, 300.0)
    p = box_position(box, depth, K, None)
    assert p is not None and p[2] == pytest.approx(2.0)


def test_position_in_world_frame() -> None:
    # Camera 1 m above the world origin, optical axis along world +x:
    # world = R @ cam + t with R mapping cam z -> world x, cam x -> world -y, cam y -> world -z.
    pose = np.eye(4)
    pose[:3, :3] = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    pose[:3, 3] = [0.0, 0.0, 1.0]
    box = Box2D("cup", math.nan, 399.0, 139.0, 402.0, 142.0)
    p = box_position(box, plane(2.0), K, pose, central_fraction=1.0)
    assert p is not None
    # cam (0.32, -0.5, 2) -> world (2, -0.32, 0.5 + 1)
    np.testing.assert_allclose(p, [2.0, -0.32, 1.5], atol=1e-9)
    assert position_frame(pose) == "world"
    cam = box_position(box, plane(2.0), K, pose, to_world=False, central_fraction=1.0)
    assert cam is not None and cam[0] == pytest.approx(0.32)
    assert position_frame(pose, to_world=False) == "camera"


def test_position_scales_to_a_smaller_depth_image() -> None:
    # Depth at half resolution (320x240): the box and intrinsics are halved.
    box = Box2D("cup", math.nan, 398.0, 138.0, 404.0, 144.0)
    full = box_position(box, plane(2.0), K, None, central_fraction=1.0)
    half = box_position(box, np.full((240, 320), 2.0, np.float32), K, None, central_fraction=1.0)
    assert full is not None and half is not None
    # Full: u in 398..403 (median 400.5); half: u in 199..201 (median 200), scaled
    # cx = 160, fx = 250: X = (200 - 160) * 2 / 250 = 0.32 vs (400.5 - 320) * 2 / 500 = 0.322.
    assert half[0] == pytest.approx(0.32) and full[0] == pytest.approx(0.322)


def test_position_none_without_valid_depth() -> None:
    box = Box2D("cup", math.nan, 10.0, 10.0, 50.0, 50.0)
    assert box_position(box, plane(0.0), K, None) is None
    far = plane(20.0)
    assert box_position(box, far, K, None, max_depth_m=10.0) is None


def test_position_falls_back_to_whole_box() -> None:
    depth = plane(0.0)
    depth[10:14, 10:14] = 3.0  # valid only near a corner, outside the central half
    box = Box2D("cup", math.nan, 10.0, 10.0, 50.0, 50.0)
    p = box_position(box, depth, K, None)
    assert p is not None and p[2] == pytest.approx(3.0)


def test_position_bad_arguments() -> None:
    box = Box2D("cup", math.nan, 10.0, 10.0, 50.0, 50.0)
    with pytest.raises(BoxError):
        box_position(box, np.zeros((4, 4, 1)), K, None)
    with pytest.raises(BoxError):
        box_position(box, plane(1.0), K, None, central_fraction=0.0)
    with pytest.raises(BoxError):
        box_position(box, plane(1.0), K, np.eye(3))
