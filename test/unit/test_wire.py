"""The robot <-> model server format (spatial_mllm_ros.answering.wire): lossless frames at the
model's input size, every bound checked before a pixel is decoded, the token compared whole."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spatial_mllm_ros.answering.wire import (
    WireError,
    WireLimits,
    decode_frames,
    decode_geometry,
    decode_request,
    encode_geometry,
    encode_request,
    geometry_images,
    load_token,
    model_images,
    pack,
    result_from_json,
    result_to_json,
    token_matches,
    unpack,
)
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.sampling.predicted import PredictedGeometry
from spatial_mllm_ros.sampling.qwen_grid import FACTOR, smart_resize
from spatial_mllm_ros.sampling.resize import vggt_image

pytestmark = pytest.mark.unit


def _frames(n: int = 3, h: int = 84, w: int = 112, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("encoding", ["png", "raw"])
def test_lossless_encodings_give_back_the_same_pixels(encoding: str) -> None:
    frames = _frames()
    body = encode_request("answer", frames, prompt="how many?", max_new_tokens=4,
                          camera_size=(640, 480), encoding=encoding)
    request, blobs = decode_request(body, WireLimits())
    assert (request.prompt, request.max_new_tokens, request.camera_size) == \
        ("how many?", 4, (640, 480))
    decoded = decode_frames(request, blobs)
    assert all(np.array_equal(a, b) for a, b in zip(frames, decoded, strict=True))


def test_jpeg_is_smaller_and_lossy() -> None:
    frames = [np.tile(np.linspace(0, 255, 112, dtype=np.uint8)[None, :, None], (84, 1, 3))]
    frames.append(_frames(1)[0])
    png = encode_request("answer", frames, max_new_tokens=1, encoding="png")
    jpeg = encode_request("answer", frames, max_new_tokens=1, encoding="jpeg", jpeg_quality=50)
    request, blobs = decode_request(jpeg, WireLimits())
    assert len(jpeg) < len(png)
    assert not np.array_equal(decode_frames(request, blobs)[1], frames[1])


def test_too_many_frames_and_too_large_bodies_are_refused_before_decoding() -> None:
    body = encode_request("answer", _frames(5), max_new_tokens=1)
    with pytest.raises(WireError, match="5 blobs, more than 4") as err:
        decode_request(body, WireLimits(max_frames=4))
    assert err.value.too_large
    with pytest.raises(WireError, match="more than 1000") as err:
        decode_request(body, WireLimits(max_bytes=1000))
    assert err.value.too_large
    with pytest.raises(WireError, match="above 9000 pixels"):
        decode_request(body, WireLimits(max_frame_pixels=9000))


def test_a_frame_that_claims_another_size_than_its_png_header_is_refused() -> None:
    small = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(small, format="PNG")
    header = {"method": "answer", "max_new_tokens": 1,
              "frames": [{"encoding": "png", "width": 8, "height": 8}]}
    decode_request(pack(header, [small.getvalue()]), WireLimits())  # honest: accepted
    bomb = io.BytesIO()
    Image.fromarray(np.zeros((600, 600, 3), np.uint8)).save(bomb, format="PNG")
    with pytest.raises(WireError, match="claims png 8x8, holds png 600x600"):
        decode_request(pack(header, [bomb.getvalue()]), WireLimits())


@pytest.mark.parametrize("body, why", [
    (b"GET / HTTP/1.1", "bad magic"),
    (b"SML1" + struct.pack(">I", 10**9), "header length"),
    (b"SML1" + struct.pack(">I", 2) + b"{}", "blob_bytes"),
])
def test_malformed_bodies_are_refused(body: bytes, why: str) -> None:
    with pytest.raises(WireError, match=why):
        unpack(body, WireLimits())


def test_blob_lengths_must_add_up() -> None:
    body = pack({"method": "answer"}, [b"abc"])
    with pytest.raises(WireError, match="do not add up"):
        unpack(body + b"x", WireLimits())


def test_raw_frame_of_the_wrong_length_is_refused() -> None:
    header = {"method": "answer", "max_new_tokens": 1,
              "frames": [{"encoding": "raw", "width": 4, "height": 4}]}
    with pytest.raises(WireError, match="raw frame of 47 bytes"):
        decode_request(pack(header, [b"\0" * 47]), WireLimits())


def test_model_images_are_at_the_engines_size_for_the_first_frame() -> None:
    frames = _frames(2, 480, 640) + _frames(1, 240, 320)
    images = model_images(frames, 15680, 15680)
    h, w = smart_resize(480, 640, FACTOR, 15680, 15680)
    assert [im.shape for im in images] == [(h, w, 3)] * 3


def test_geometry_images_are_vggts_input_and_not_resized_again() -> None:
    portrait = _frames(1, 200, 100)[0]
    once = geometry_images([portrait])[0]
    assert once.shape[1] == 518 and once.shape[0] % 14 == 0
    assert np.array_equal(vggt_image(once, 518), once)


def test_results_and_geometry_survive_the_round_trip() -> None:
    result = GenerationResult("two", {"decode": 0.5}, 2, (140, 84), "two<|box|>", (640, 480),
                              [17, 18], 30, True)
    assert result_from_json(json.loads(json.dumps(result_to_json(result)))) == result
    geometry = [PredictedGeometry(np.arange(24, dtype=np.float32).reshape(2, 4, 3),
                                  np.ones((2, 4), np.float32))]
    back = decode_geometry(encode_geometry(geometry), WireLimits())
    assert np.array_equal(back[0].world_points, geometry[0].world_points)
    assert np.array_equal(back[0].confidence, geometry[0].confidence)
    with pytest.raises(WireError, match="malformed result"):
        result_from_json({"text": "x"})


def test_the_token_matches_only_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert token_matches("s3cret", "Bearer s3cret")
    for given in (None, "", "Bearer s3cre", "Bearer s3cret ", "bearer s3cret", "s3cret"):
        assert not token_matches("s3cret", given)
    assert not token_matches("", "Bearer ")  # no token configured: nobody gets in
    monkeypatch.setenv("SPATIAL_MLLM_TOKEN", " from-env \n")
    assert load_token() == "from-env"
    (tmp_path / "token").write_text("from-file\nignored\n")
    assert load_token(str(tmp_path / "token")) == "from-file"
