"""The memory planner (spatial_mllm_ros.model.plan) on the released layouts' shapes
(``../shared/reference/checkpoint_layouts``): weights per part, quantization, the peak, and
the reverse question (what fits a memory budget)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from testkit.paths import LAYOUTS

from spatial_mllm_ros.model.plan import (
    ModelSizes,
    PlanRequest,
    Quantization,
    WeightGroups,
    fit,
    plan,
    weight_groups,
)


def _tsv(name: str) -> list[tuple[str, tuple[int, ...]]]:
    path = LAYOUTS / name
    if not path.is_file():
        pytest.skip(f"{path} is not here (CI lays shared/ beside the checkout)")
    rows = []
    for line in Path(path).read_text().splitlines():
        n, s = line.split("\t")
        rows.append((n, tuple(int(x) for x in s.split("x"))))
    return rows


@pytest.fixture(scope="module")
def v11() -> WeightGroups:
    return weight_groups(_tsv("spatial_mllm_v1_1_instruct.tsv"))


def test_parts_of_the_released_v1_1_checkpoint(v11: WeightGroups) -> None:
    # the sizes the public configs state: LM ~3.1 B (tied lm_head once), vision 0.67 B,
    # aggregator 0.9 B, connector 0.3 B
    assert v11.lm_linear + v11.lm_other == pytest.approx(3.086e9, rel=1e-3)
    assert v11.vision == pytest.approx(0.669e9, rel=1e-3)
    assert v11.aggregator == pytest.approx(0.909e9, rel=1e-3)
    assert v11.connector == pytest.approx(0.302e9, rel=1e-3)
    # 36 layers x (q 2048 + k 256 + v 256 + o 2048 + gate 11008 + up 11008 + down 2048)
    assert v11.lm_linear_rows == 36 * (2048 + 256 + 256 + 2048 + 11008 + 11008 + 2048)


def test_tied_lm_head_counted_once_unless_untied() -> None:
    rows = _tsv("qwen2_5_vl_3b_instruct.tsv")
    tied, untied = weight_groups(rows), weight_groups(rows, tie_word_embeddings=False)
    assert untied.lm_other - tied.lm_other == 151936 * 2048


def test_quantization_shrinks_only_the_language_models_linear_weights(v11: WeightGroups) -> None:
    req = PlanRequest(memory_gb=80, dtype="bfloat16")
    by_q = {q: plan(v11, ModelSizes(), replace(req, quantization=q)) for q in Quantization}
    none, int8, int4 = (by_q[q].weights_by_part_gb for q in Quantization)
    for part in ("vision", "spatial_encoder", "connector"):
        assert none[part] == int8[part] == int4[part]
    lm_bf16 = (v11.lm_linear + v11.lm_other) * 2 / 1e9
    assert none["language_model"] == pytest.approx(lm_bf16, abs=1e-3)
    # torchao's Int8Tensor: one float32 scale per output channel
    int8_expected = (v11.lm_linear * 1 + v11.lm_linear_rows * 4 + v11.lm_other * 2) / 1e9
    assert int8["language_model"] == pytest.approx(int8_expected, abs=1e-3)
    # Int4OpaqueTensor / tinygemm: a scale and a zero point at the model dtype per 128 weights
    int4_expected = (v11.lm_linear * (0.5 + 4 / 128) + v11.lm_other * 2) / 1e9
    assert int4["language_model"] == pytest.approx(int4_expected, abs=1e-3)
    assert int4["language_model"] < int8["language_model"] < none["language_model"]
    # the whole bf16 model is the ~10 GB the issue quotes (heads not loaded)
    assert by_q[Quantization.NONE].weights_gb == pytest.approx(9.93, abs=0.05)


def test_the_peak_grows_with_frames_and_pixels(v11: WeightGroups) -> None:
    base = PlanRequest(memory_gb=80, dtype="bfloat16", frame_budget=8, max_pixels=112 * 140)
    peaks = [plan(v11, ModelSizes(), replace(base, frame_budget=f)).peak_gb
             for f in (2, 8, 16, 32)]
    assert peaks == sorted(peaks) and peaks[0] < peaks[-1]
    pix = [plan(v11, ModelSizes(), replace(base, max_pixels=p)).peak_gb
           for p in (112 * 140, 224 * 308, 476 * 644)]
    assert pix == sorted(pix) and pix[0] < pix[-1]


def test_fit_returns_the_largest_budget_that_fits(v11: WeightGroups) -> None:
    sizes = ModelSizes()
    req = PlanRequest(memory_gb=11.5, dtype="bfloat16", frame_budget=16, max_pixels=476 * 644)
    frames, pixels = fit(v11, sizes, req, max_frames=256)
    assert frames >= 2 and pixels > 0
    assert plan(v11, sizes, replace(req, frame_budget=frames)).peak_gb <= 11.5
    assert plan(v11, sizes, replace(req, frame_budget=frames + 2)).peak_gb > 11.5
    assert plan(v11, sizes, replace(req, max_pixels=pixels)).peak_gb <= 11.5
    assert plan(v11, sizes, replace(req, max_pixels=pixels + 28 * 28)).peak_gb > 11.5


def test_a_budget_that_cannot_fit_is_refused_with_what_to_lower(v11: WeightGroups) -> None:
    too_small = plan(v11, ModelSizes(), PlanRequest(memory_gb=8, dtype="bfloat16"))
    assert not too_small.fits
    assert too_small.max_frame_budget_that_fits == 0 and too_small.max_pixels_that_fit == 0
    assert "quantization" in too_small.advice
    frames = plan(v11, ModelSizes(), PlanRequest(memory_gb=11.5, dtype="bfloat16",
                                                 frame_budget=64, max_pixels=476 * 644))
    assert not frames.fits and "sampling.frame_budget" in frames.advice
    # int4 brings the bf16 model under an Orin Nano's 8 GB
    assert plan(v11, ModelSizes(), PlanRequest(memory_gb=8, dtype="bfloat16",
                                               quantization=Quantization.INT4_WEIGHT)).fits


def test_heads_add_weights_and_a_geometry_stage(v11: WeightGroups) -> None:
    req = PlanRequest(memory_gb=80, dtype="bfloat16")
    without, with_heads = plan(v11, ModelSizes(), req), plan(v11, ModelSizes(),
                                                              replace(req, heads=True))
    assert without.weights_by_part_gb["vggt_heads"] == 0.0
    assert with_heads.weights_by_part_gb["vggt_heads"] == pytest.approx(
        v11.heads * 2 / 1e9, abs=1e-3)
    assert "geometry" in with_heads.activations_by_stage_gb
    assert "geometry" not in without.activations_by_stage_gb


def test_a_plain_qwen_layout_has_no_spatial_stage() -> None:
    groups = weight_groups(_tsv("qwen2_5_vl_3b_instruct.tsv"))
    p = plan(groups, ModelSizes(spatial=False), PlanRequest(memory_gb=16, dtype="bfloat16"))
    assert groups.aggregator == groups.connector == 0
    assert "spatial" not in p.activations_by_stage_gb
