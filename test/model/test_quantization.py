"""model.quantization on the tiny model (torchao, CPU): which weights are quantized, what stays
at model.dtype, the logits' distance to float32's (stated tolerances), and model.geometry_heads
false leaving out exactly what answering does not read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from testkit.tiny import SMALL_PIXELS, tiny_checkpoint

from spatial_mllm_ros.model.engine import SpatialMLLMEngine
from spatial_mllm_ros.model.fit import check_fit
from spatial_mllm_ros.model.quantization import DECODER_LINEAR, quantization_problem
from spatial_mllm_ros.model.spec import EngineSpec, load_engine
from spatial_mllm_ros.model.tiny import write_checkpoint
from spatial_mllm_ros.settings import Settings

PROMPT = "These are frames of a video.\nHow many chairs are there?"

#: Largest |logit - float32 logit| of the last prompt token, over the float32 logits' largest
#: magnitude.  Measured on the tiny model (random weights, 2 decoder layers): int8 0.002,
#: int4 0.033; the bounds leave room for other seeds and CPUs.
TOLERANCE = {"int8_weight": 0.02, "int4_weight": 0.15}


def _images(count: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 255, (112, 140, 3), dtype=np.uint8) for _ in range(count)]


def _last_logits(engine: SpatialMLLMEngine) -> torch.Tensor:
    clip = engine.prepare(_images())
    batch = engine.model_inputs(clip, PROMPT)
    with torch.no_grad():
        out: Any = engine.model(**batch)
    return out.logits[0, -1].float()


@pytest.fixture(scope="module")
def reference() -> torch.Tensor:
    engine = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"), max_pixels=SMALL_PIXELS)
    return _last_logits(engine)


@pytest.mark.parametrize("quantization", ["int8_weight", "int4_weight"])
def test_quantized_logits_stay_within_the_stated_tolerance_of_float32(
        quantization: str, reference: torch.Tensor) -> None:
    engine = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"), max_pixels=SMALL_PIXELS,
                                               quantization=quantization)
    logits = _last_logits(engine)
    error = float((logits - reference).abs().max() / reference.abs().max())
    assert 0.0 < error <= TOLERANCE[quantization], error  # > 0: the weights did change


@pytest.mark.parametrize("quantization, kind", [("int8_weight", "Int8Tensor"),
                                                ("int4_weight", "Int4OpaqueTensor")])
def test_only_the_decoder_linear_weights_are_quantized(quantization: str, kind: str) -> None:
    engine = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"), max_pixels=SMALL_PIXELS,
                                               quantization=quantization)
    model = engine.model
    layers = int(model.config.text_config.num_hidden_layers)
    assert len(engine.report.quantization.quantized) == 7 * layers  # q k v o gate up down
    for name, param in model.named_parameters():
        if DECODER_LINEAR.match(name):
            assert type(param).__name__ == kind, name
        else:  # embeddings, tied lm_head, norms, biases, vision, VGGT, connector
            assert type(param) is torch.nn.Parameter and param.dtype == torch.float32, name
    assert "lm_head.weight" not in engine.report.quantization.quantized
    result = engine.answer_images(_images(), PROMPT, 4)
    assert 1 <= result.num_new_tokens <= 4


def test_without_geometry_heads_the_unread_blocks_are_not_loaded_and_answers_are_unchanged(
        tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "layer1", "v1.1", spatial_embeds_layer_idx=1)
    full = SpatialMLLMEngine.from_pretrained(ckpt, max_pixels=SMALL_PIXELS)
    lean = SpatialMLLMEngine.from_pretrained(ckpt, max_pixels=SMALL_PIXELS, geometry_heads=False)
    aggregator = lean.model.spatial_encoder.aggregator
    assert aggregator.loaded_depth == 2 < aggregator.depth  # layers 0 and 1: the connector's
    assert not lean.model.has_geometry_heads and full.model.has_geometry_heads
    skipped = lean.report.skipped
    assert any(".frame_blocks.2." in n for n in skipped)
    assert any(n.startswith("spatial_encoder.camera_head.") for n in skipped)
    assert not any(".frame_blocks.1." in n for n in skipped)
    n_full = sum(p.numel() for p in full.model.parameters())
    n_lean = sum(p.numel() for p in lean.model.parameters())
    assert n_lean < n_full
    assert torch.equal(_last_logits(lean), _last_logits(full))


def test_int4_on_cuda_needs_bfloat16_and_other_devices_are_refused() -> None:
    assert quantization_problem("int4_weight", "cpu", "float32") == ""
    assert quantization_problem("int8_weight", "cuda:0", "float16") == ""
    assert "model.dtype bfloat16" in quantization_problem("int4_weight", "cuda", "float16")
    assert "cpu or cuda" in quantization_problem("int8_weight", "mps", "float32")


def test_fit_check_of_the_tiny_checkpoint_names_what_to_lower() -> None:
    settings = Settings.from_values({"model.checkpoint": str(tiny_checkpoint("v1.1")),
                                     "model.geometry_heads": False, "model.max_pixels": 0,
                                     "sampling.max_frame_budget": 256})
    spec, values = settings.engine, settings.values
    refused = check_fit(spec, 256, 1.5, int(values["sampling.monocular_candidates"]))
    assert "lower sampling.max_frame_budget to" in refused.problem
    assert refused.plan is not None and not refused.plan.fits
    fits = check_fit(spec, refused.plan.max_frame_budget_that_fits, 1.5, 32)
    assert fits.problem == "" and fits.plan is not None and fits.plan.fits
    # cpu without a budget: no check; cuda without one: the device's total memory
    assert check_fit(spec, 256, 0.0, 32).plan is None
    cuda = EngineSpec(**{**spec.__dict__, "device": "cuda"})
    assert "cuda's total memory" in check_fit(cuda, 256, 0.0, 32, lambda d: 1.5).problem


def test_the_parameters_reach_the_load_through_the_engine_spec() -> None:
    settings = Settings.from_values({"model.checkpoint": str(tiny_checkpoint("v1.1")),
                                     "model.quantization": "int8_weight",
                                     "model.geometry_heads": False})
    engine, reason = load_engine(settings.engine)
    assert engine is not None, reason
    assert engine.report.quantization.quantization == "int8_weight"
    assert engine.report.quantization.quantized and not engine.model.has_geometry_heads
