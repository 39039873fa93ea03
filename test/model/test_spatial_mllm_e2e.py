"""Tiny v1.0 / v1.1 checkpoints: load cleanly, answer on real frames, cache-consistent generate."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from testkit.tiny import (
    SMALL_PIXELS,
    real_frames,
    real_images,
    require_data,
    tiny_checkpoint,
)

from spatial_mllm_ros.answering import types as answering_types
from spatial_mllm_ros.answering.commands import fill_buffer
from spatial_mllm_ros.cli.infer import infer_main
from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.model.engine import SpatialMLLMEngine, load_model
from spatial_mllm_ros.model.modeling import STAGES
from spatial_mllm_ros.model.processing import SAMPLING_WIDTH, sampling_tensor
from spatial_mllm_ros.sampling.online import BufferConfig

PROMPT = (
    "These are frames of a video.\nHow many boxes are there?\n"
    "Please answer the question using a single word or phrase."
)


@pytest.fixture(scope="module", params=["v1.0", "v1.1"])
def engine(request: pytest.FixtureRequest) -> SpatialMLLMEngine:
    return SpatialMLLMEngine.from_pretrained(
        tiny_checkpoint(request.param), max_pixels=SMALL_PIXELS
    )


def test_tiny_loads_with_every_tensor_accounted_for(engine: SpatialMLLMEngine) -> None:
    report = engine.report
    assert report.missing == [] and report.missing_optional == [] and report.unexpected == []
    assert report.duplicates == [] and report.dropped_heads == []
    assert not any(p.is_meta for p in engine.model.parameters())
    assert len(report.loaded) == len(set(report.loaded))


def test_answers_on_real_frames(engine: SpatialMLLMEngine) -> None:
    frames = real_frames(4)
    result = engine.answer(frames, PROMPT, max_new_tokens=5)
    assert 1 <= result.num_new_tokens <= 5
    assert isinstance(result.text, str)
    assert set(result.timings_s) == set(STAGES)
    assert all(v > 0 for v in result.timings_s.values())
    w, h = result.resized_size
    assert w % 28 == 0 and h % 28 == 0 and w * h <= SMALL_PIXELS
    assert result.original_size == (640, 480)
    # 4 frames -> 2 temporal groups of (h/28)*(w/28) merged tokens each
    assert result.num_video_tokens == 2 * (h // 28) * (w // 28)


def test_kv_cache_gives_same_greedy_tokens(engine: SpatialMLLMEngine) -> None:
    images = real_images(2)
    cached = engine.answer_images(images, PROMPT, max_new_tokens=6, use_cache=True)
    uncached = engine.answer_images(images, PROMPT, max_new_tokens=6, use_cache=False)
    assert cached.token_ids == uncached.token_ids
    assert cached.timings_s["decode"] > 0


def test_spatial_stream_changes_the_logits() -> None:
    """The connector output reaches the language model (fusion at the video tokens)."""
    engine = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"), max_pixels=SMALL_PIXELS)
    from spatial_mllm_ros.model.processing import build_inputs

    clip = engine.prepare(real_images(2))
    inputs = build_inputs(engine.processor, clip, PROMPT)
    with torch.no_grad():
        base = engine.model(**inputs).logits
        connector: Any = engine.model.connector
        for p in connector.mlp[2].parameters():
            p.add_(0.5)
        changed = engine.model(**inputs).logits
    assert not torch.allclose(base, changed)


def test_geometry_heads_shapes(engine: SpatialMLLMEngine) -> None:
    images = real_images(3)
    geoms = engine.predict_geometry(images)
    assert len(geoms) == 3
    # at VGGT's input, as the reference's space-aware sampling prepares it: 518 px wide
    h, w = sampling_tensor(images).shape[-2:]
    assert w == SAMPLING_WIDTH and h == round(480 * SAMPLING_WIDTH / 640 / 14) * 14
    for g in geoms:
        assert g.world_points.shape == (h, w, 3)
        assert g.confidence.shape == (h, w)
        assert g.camera_to_world.shape == (4, 4)
        assert np.isfinite(g.world_points).all()
        assert (g.intrinsics.width, g.intrinsics.height) == (w, h)


INFER_ARGS = [
    "--question", "Which is closer to the camera, the box or the bag?",
    "--type", "object_rel_distance",
    "--options", "A. box", "B. bag",
    "--frame-budget", "4",
    "--max-new-tokens", "4",
    "--max-pixels", str(SMALL_PIXELS),
]


def _json_keys() -> set[str]:
    """The keys of infer's JSON: the answer's one JSON form and infer's own additions."""
    request = answering_types.QuestionRequest(query_id=0, question="q")
    status = answering_types.AnswerStatus.OK
    record = answering_types.AnswerRecord.failure(request, status, "").to_json()
    return set(record) | {"vision_backend", "command_timings_s", "token_ids"}


@pytest.mark.parametrize("layout", ["v1.0", "v1.1"])
def test_infer_command_answers_through_the_pipeline(
    layout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = require_data()
    status = infer_main(["--checkpoint", str(tiny_checkpoint(layout)), "--frames", str(data),
                         *INFER_ARGS])
    out = json.loads(capsys.readouterr().out)
    assert status == 0, out
    assert set(out) == _json_keys()
    assert out["status"] == "OK" and out["error"] == ""
    assert out["question_type"] == "object_rel_distance"
    assert out["option"] in ("", "A", "B")
    # the frames went through the node's buffer (its admission keeps the views that add
    # geometry), then the pipeline chose up to 4 of those by coverage
    admitted = fill_buffer(load_rgbd_dir(data), BufferConfig()).snapshot().frames
    assert len(out["frame_stamps_ns"]) == min(4, len(admitted))
    assert set(out["frame_stamps_ns"]) <= {f.stamp_ns for f in admitted}
    assert out["frame_stamps_ns"] == sorted(out["frame_stamps_ns"])
    assert out["strategy"] == "coverage"
    assert out["coverage"] is not None and 0.0 < out["coverage"] <= 1.0
    assert out["world_frame_id"] != ""
    assert list(out["timings_s"]) == [*answering_types.STAGES[:-1], "other", "total"]
    assert out["vision_backend"]["used"] == {"vision_2d": "torch", "spatial": "torch"}
    assert out["timings_s"]["decode"] > 0 and out["timings_s"]["total"] > 0
    # boxes, if the random model wrote any, are on the last selected frame
    assert all(b["stamp_ns"] == out["frame_stamps_ns"][-1] for b in out["boxes"])


def test_infer_command_model_that_cannot_load_is_a_model_error_answer(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text("{}")  # a folder, but no Spatial-MLLM config
    status = infer_main(["--checkpoint", str(tmp_path), "--frames",
                         str(require_data()), *INFER_ARGS])
    out = json.loads(capsys.readouterr().out)
    assert status == ExitCode.MODEL
    assert set(out) == _json_keys()
    assert out["status"] == "MODEL_ERROR" and "model failed to load" in out["error"]
    assert out["vision_backend"]["used"] == {"vision_2d": "none", "spatial": "none"}


def test_infer_command_missing_checkpoint_is_refused_before_loading(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status = infer_main(["--checkpoint", str(tmp_path / "missing"), "--frames",
                         str(require_data()), *INFER_ARGS])
    captured = capsys.readouterr()
    assert status == ExitCode.INPUT and captured.out == ""
    assert f"checkpoint directory {tmp_path / 'missing'} does not exist" in captured.err


def test_infer_command_without_frames_gives_no_answer(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status = infer_main(["--checkpoint", str(tiny_checkpoint("v1.1")), "--frames",
                         str(tmp_path), *INFER_ARGS])
    captured = capsys.readouterr()
    assert status == ExitCode.INPUT and captured.out == ""
    assert "loading the model" not in captured.err
    assert "no frame-NNNNNN.color.png" in captured.err


@pytest.mark.parametrize(("name", "dtype"), [("bfloat16", torch.bfloat16),
                                             ("float16", torch.float16),
                                             ("float32", torch.float32)])
def test_load_in_each_dtype(name: str, dtype: torch.dtype) -> None:
    model, report = load_model(tiny_checkpoint("v1.1"), dtype=name)
    assert report.missing == [] and report.unexpected == []
    assert {p.dtype for p in model.parameters()} == {dtype}
