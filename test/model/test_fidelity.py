"""Answers as the released checkpoints give them: video timing, decoding, resizing.

Expected numbers come from the reference setting, not from running this code: transformers
4.51's processor default ``fps=2.0`` gives ``second_per_grid_ts = 2 / 2.0 = 1.0``, and with
Qwen2.5-VL's ``tokens_per_second = 2`` frame pair ``t`` sits at temporal position ``2 t``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from testkit.tiny import SMALL_PIXELS, fresh_copy, real_images, tiny_checkpoint

from spatial_mllm_ros.model.engine import SpatialMLLMEngine
from spatial_mllm_ros.model.processing import (
    resize_rgb,
    sampling_tensor,
    second_per_grid,
    target_size,
)
from spatial_mllm_ros.model.spec import load_engine
from spatial_mllm_ros.settings import Settings


def _settings(checkpoint: Path, **overrides: Any) -> Settings:
    return Settings.from_profile("cpu_tiny", {
        "model.checkpoint": str(checkpoint), "model.max_pixels": SMALL_PIXELS,
        "model.num_threads": 0, **overrides})


def _engine(checkpoint: Path, **overrides: Any) -> SpatialMLLMEngine:
    engine, error = load_engine(_settings(checkpoint, **overrides).engine)
    assert engine is not None, error
    return engine


def _temporal_row(engine: SpatialMLLMEngine, n_frames: int) -> tuple[torch.Tensor, Any]:
    """Temporal M-RoPE positions of the video tokens (relative to the first) and the inputs."""
    rng = np.random.default_rng(n_frames)
    images = [rng.integers(0, 255, (84, 112, 3), dtype=np.uint8) for _ in range(n_frames)]
    inputs = engine.model_inputs(engine.prepare(images), "How many chairs are in this room?")
    qwen = engine.model.model
    positions, _ = qwen.get_rope_index(
        inputs["input_ids"], inputs["mm_token_type_ids"], None, inputs["video_grid_thw"],
        inputs["second_per_grid_ts"], inputs["attention_mask"],
    )
    video = inputs["input_ids"][0] == engine.model.config.video_token_id
    temporal = positions[0, 0][video]
    return temporal - temporal[0], inputs


@pytest.fixture(scope="module")
def engine() -> SpatialMLLMEngine:
    return _engine(tiny_checkpoint("v1.1"))


@pytest.mark.parametrize("n_frames", [8, 16])
def test_temporal_positions_are_the_reference_ones(
    engine: SpatialMLLMEngine, n_frames: int
) -> None:
    temporal, inputs = _temporal_row(engine, n_frames)
    assert inputs["second_per_grid_ts"].tolist() == [1.0]
    t, gh, gw = (int(v) for v in inputs["video_grid_thw"][0])
    assert t == n_frames // 2
    per_step = gh * gw // 4  # merged tokens per temporal step
    expected = torch.arange(0, 2 * t, 2).repeat_interleave(per_step)
    assert temporal.tolist() == expected.tolist()  # 0,0,..,2,2,..,2(t-1)


def test_another_video_fps_changes_the_positions(engine: SpatialMLLMEngine) -> None:
    fast = SpatialMLLMEngine(engine.model, engine.processor, engine.report,
                             min_pixels=engine.min_pixels, max_pixels=engine.max_pixels,
                             video_fps=24.0)
    temporal, inputs = _temporal_row(fast, 16)
    assert inputs["second_per_grid_ts"].item() == pytest.approx(2 / 24)
    # What transformers 5 would do without the fix: 8 steps squeezed into positions 0 and 1.
    assert sorted(set(temporal.tolist())) == [0, 1]


def test_video_fps_comes_from_the_schema_for_every_profile() -> None:
    for profile in ("cpu_tiny", "desktop_gpu", "jetson_orin"):
        spec = Settings.from_profile(profile).engine
        assert second_per_grid(spec.video_fps) == 1.0


def _penalised_copy(penalty: float) -> Path:
    ckpt = fresh_copy(tiny_checkpoint("v1.1"), f"penalty-{penalty}")
    path = ckpt / "generation_config.json"
    data = json.loads(path.read_text())
    data["repetition_penalty"] = penalty
    path.write_text(json.dumps(data))
    return ckpt


def test_generation_config_json_changes_decoding() -> None:
    images = real_images(4)
    ids = {}
    for penalty in (1.0, 5.0):
        loaded = _engine(_penalised_copy(penalty))
        assert loaded.generation_config.repetition_penalty == penalty
        result = loaded.answer_images(images, "How many chairs are in this room?", 8)
        ids[penalty] = result.token_ids
    # Without a penalty the tiny model repeats one token; the checkpoint's penalty breaks that.
    assert len(set(ids[1.0])) == 1
    assert ids[5.0] != ids[1.0]
    assert len(set(ids[5.0])) > 1


def test_parameters_override_the_checkpoint_decoding() -> None:
    ckpt = _penalised_copy(5.0)
    greedy = _engine(ckpt, **{"answer.decoding": "greedy"})
    assert greedy.generation_config.repetition_penalty == 1.0
    assert not greedy.generation_config.do_sample
    override = _engine(ckpt, **{"answer.repetition_penalty": 1.3})
    assert override.generation_config.repetition_penalty == 1.3
    reference = _engine(ckpt, **{"answer.decoding": "reference"})
    gc = reference.generation_config
    assert (gc.do_sample, gc.temperature, gc.top_p, gc.top_k) == (True, 0.1, 0.001, 1)
    assert gc.repetition_penalty == 5.0


def test_model_process_honours_generation_config() -> None:
    """The node's model process decodes as the in-process engine does, penalty included."""
    from spatial_mllm_ros.answering.process import ProcessAnswerer
    from spatial_mllm_ros.core.frame import Frame

    settings = _settings(_penalised_copy(5.0))
    images = real_images(2)
    local = _engine(_penalised_copy(5.0))
    want = local.answer_images(images, "How far is the sofa?", 6)
    child = ProcessAnswerer(settings.engine)
    try:
        frames = [Frame(stamp_ns=i, frame_id="cam", rgb=img) for i, img in enumerate(images)]
        got = child.answer(frames, "How far is the sofa?", 6)
    finally:
        child.close()
    assert got.text == want.text and got.num_new_tokens == want.num_new_tokens
    assert child.checkpoint_layout == "v1.1"


def test_resize_is_pil_bicubic_on_the_shelf_frames() -> None:
    for image in real_images(3):
        size = target_size(image.shape[1], image.shape[0])
        assert size != (image.shape[1], image.shape[0])  # a real resize happens
        ours = resize_rgb(image, size)
        pil = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
        assert ours.shape == pil.shape
        assert int(np.abs(ours.astype(int) - pil.astype(int)).max()) <= 1


@pytest.mark.parametrize(
    ("width", "height", "expected_hw"),
    [(640, 480, (392, 518)), (1920, 1080, (294, 518)), (480, 640, (392, 518)),
     (300, 900, (168, 518))],
)
def test_sampling_input_is_the_reference_one(width: int, height: int,
                                             expected_hw: tuple[int, int]) -> None:
    """VGGT's input for space-aware sampling: 518 px wide (portrait turned), height rounded to
    14 px and centre-cropped to 518 (Spatial-MLLM's ``load_and_preprocess_images``)."""
    rng = np.random.default_rng(width)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    x = sampling_tensor([image])
    assert tuple(x.shape) == (1, 1, 3, *expected_hw)
    pil = Image.fromarray(image)
    if height > width:
        pil = pil.rotate(-90, expand=True)
    new_h = round(pil.height * 518 / pil.width / 14) * 14
    ref = np.asarray(pil.resize((518, new_h), Image.Resampling.BICUBIC)).astype(np.float32)
    top = max(new_h - 518, 0) // 2
    ref = ref[top : top + 518] / 255.0
    got = x[0, 0].permute(1, 2, 0).numpy()
    assert np.abs(got - ref).max() < 1e-6


def test_geometry_for_sampling_comes_from_the_point_head() -> None:
    engine = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"))
    images = real_images(2)
    geometry = engine.predict_geometry(images)
    x = sampling_tensor(images)
    with torch.no_grad():
        output = engine.model.spatial_encoder(x)
    assert len(geometry) == 2
    assert geometry[0].world_points.shape == (*x.shape[-2:], 3)
    np.testing.assert_allclose(geometry[1].world_points,
                               output["world_points"][0, 1].double().numpy(), rtol=1e-5)
    np.testing.assert_allclose(geometry[1].confidence,
                               output["world_points_conf"][0, 1].numpy(), rtol=1e-5)


def test_tokens_stream_and_generation_stops_between_tokens(engine: SpatialMLLMEngine) -> None:
    """on_token sees every token as it comes; should_stop ends generation within one token."""
    images = real_images(2)
    seen: list[tuple[list[int], str]] = []
    full = engine.answer_images(images, "How far is the sofa?", 6,
                                on_token=lambda ids, text: seen.append((ids, text)))
    assert [ids for ids, _ in seen] == [full.token_ids[: i + 1] for i in range(len(seen))]
    assert seen[-1][0] == full.token_ids and not full.stopped

    got: list[list[int]] = []  # a cancel that arrives while the second token is generated
    cut = engine.answer_images(images, "How far is the sofa?", 6,
                               on_token=lambda ids, text: got.append(ids),
                               should_stop=lambda: len(got) >= 2)
    # the request is seen at the next check: at most one token after the second
    assert cut.stopped and 2 <= len(cut.token_ids) <= 3 < len(full.token_ids)
    assert cut.token_ids == full.token_ids[: len(cut.token_ids)]
