"""Plain Qwen2.5-VL spatial checkpoints (layout ``qwen2.5-vl``; issue 21 point 4).

VST-3B, SpatialLadder-3B and SenseNova-SI-1.1-Qwen2.5-VL-3B ship as a plain
``Qwen2_5_VLForConditionalGeneration``: recognised from config.json, loaded by the same safe
loader without a spatial encoder or connector, answering from the 2D features alone -- with
exactly the logits of transformers' own Qwen2.5-VL on the same inputs -- and predicting
geometry only when a VGGT checkpoint is given.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from testkit.tiny import SMALL_PIXELS, real_images, tiny_checkpoint
from transformers import Qwen2_5_VLForConditionalGeneration

from spatial_mllm_ros.model.cli import checkpoint_main
from spatial_mllm_ros.model.configuration import (
    PlainQwenConfig,
    config_from_dict,
    load_config,
    qwen2_5_vl_3b_kwargs,
)
from spatial_mllm_ros.model.engine import SpatialMLLMEngine, load_model
from spatial_mllm_ros.model.errors import ConfigError, GeometryUnavailableError

LAYOUT = "qwen2.5-vl"


@pytest.fixture(scope="module")
def plain() -> Path:
    return tiny_checkpoint(LAYOUT)


@pytest.fixture(scope="module")
def engine(plain: Path) -> SpatialMLLMEngine:
    return SpatialMLLMEngine.from_pretrained(plain, max_pixels=SMALL_PIXELS)


def test_released_qwen_config_is_recognised_as_plain() -> None:
    data = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
            **qwen2_5_vl_3b_kwargs()}
    config = config_from_dict(data)
    assert isinstance(config, PlainQwenConfig)
    assert config.layout == LAYOUT and not config.has_spatial_encoder
    assert config.connector_config is None
    with pytest.raises(ConfigError, match="qwen2_5_vl"):
        config_from_dict({**data, "model_type": "llava"})


def test_tiny_plain_checkpoint_config(plain: Path) -> None:
    saved = json.loads((plain / "config.json").read_text())
    assert saved["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    assert saved["model_type"] == "qwen2_5_vl"
    assert "spatial_config" not in saved and "connector_config" not in saved
    assert load_config(plain).layout == LAYOUT
    assert load_config(tiny_checkpoint("v1.1")).layout == "v1.1"


def test_inspect_names_the_model_layout(plain: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    assert checkpoint_main(["inspect", str(plain), "--no-progress"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["loads"] is True and info["model_layout"] == LAYOUT
    assert info["layout"] == "qwen"  # the tensor names' layout
    assert info["load_report"]["missing"] == [] and info["load_report"]["unexpected"] == []


def test_loads_without_spatial_encoder_or_connector(plain: Path) -> None:
    model, report = load_model(plain)
    assert model.spatial_encoder is None and model.connector is None
    assert report.missing == [] and report.unexpected == [] and report.missing_optional == []
    assert report.layouts == {str(plain): "qwen"}
    assert not [n for n, _ in model.named_parameters()
                if n.startswith(("spatial_encoder.", "connector."))]


def test_answers_from_the_2d_features_alone(engine: SpatialMLLMEngine) -> None:
    assert engine.checkpoint_layout == LAYOUT
    result = engine.answer_images(real_images(4), "How many boxes are there?", max_new_tokens=3)
    assert result.num_new_tokens >= 1
    assert result.timings_s["spatial"] == 0.0 and result.timings_s["connector"] == 0.0
    assert engine.model.stage_timer.calls["spatial"] == 0
    assert engine.model.encoder_calls.snapshot() == {"vision_2d": {"torch": 1}}


def test_logits_equal_transformers_qwen2_5_vl(plain: Path, engine: SpatialMLLMEngine) -> None:
    reference = Qwen2_5_VLForConditionalGeneration.from_pretrained(plain, dtype=torch.float32)
    reference.eval()
    batch = engine.model_inputs(engine.prepare(real_images(4)), "Where is the red box?")
    plain_inputs = {k: v for k, v in batch.items() if k != "video_tchw"}
    with torch.no_grad():
        ours = engine.model(**batch).logits
        theirs = reference(**plain_inputs).logits
    assert torch.equal(ours, theirs)


def test_geometry_needs_a_vggt_checkpoint(engine: SpatialMLLMEngine) -> None:
    assert not engine.model.has_geometry_heads
    with pytest.raises(GeometryUnavailableError, match=r"model\.vggt_checkpoint"):
        engine.predict_geometry(real_images(2))


def test_geometry_from_a_vggt_checkpoint(plain: Path, tmp_path: Path) -> None:
    vggt = tmp_path / "vggt"
    assert checkpoint_main(["tiny", str(vggt), "--layout", "vggt", "--no-progress"]) == 0
    engine = SpatialMLLMEngine.from_pretrained(plain, vggt_checkpoint=vggt,
                                               max_pixels=SMALL_PIXELS)
    assert engine.model.connector is None and engine.model.has_geometry_heads
    assert engine.report.unexpected == [] and engine.report.missing == []
    geometries = engine.predict_geometry(real_images(2))
    assert len(geometries) == 2
    engine.answer_images(real_images(2), "How many boxes are there?", max_new_tokens=1)
    assert "spatial" not in engine.model.encoder_calls.snapshot()  # answers stay 2D
    headless, report = load_model(plain, extra_sources=[vggt], geometry_heads=False)
    assert headless.spatial_encoder is None and report.loaded
    assert all(n.startswith("spatial_encoder.") for n in report.skipped) and report.skipped


def test_plain_config_beside_spatial_weights_is_refused(tmp_path: Path, plain: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_checkpoint("v1.1"), mixed)
    shutil.copy(plain / "config.json", mixed / "config.json")
    with pytest.raises(ConfigError, match="spatial-encoder/connector tensor"):
        load_model(mixed)


def test_int8_weight_quantized_plain_checkpoint_answers(plain: Path) -> None:
    engine = SpatialMLLMEngine.from_pretrained(plain, max_pixels=SMALL_PIXELS,
                                               quantization="int8_weight")
    quantized = engine.report.quantization.quantized
    assert quantized and all(n.startswith("model.language_model.layers.") for n in quantized)
    result = engine.answer_images(real_images(2), "How many boxes are there?", max_new_tokens=2)
    assert result.num_new_tokens >= 1 and result.timings_s["spatial"] == 0.0
