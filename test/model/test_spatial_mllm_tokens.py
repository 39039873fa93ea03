"""Token accounting and merge order of the connectors; config.json forms."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from testkit.tiny import tiny_checkpoint

from spatial_mllm_ros.model.configuration import config_from_dict, load_config
from spatial_mllm_ros.model.connector import build_connector, merge_v1_0, merge_v1_1
from spatial_mllm_ros.model.engine import SpatialMLLMEngine
from spatial_mllm_ros.model.errors import ConfigError
from spatial_mllm_ros.model.processing import build_inputs, prepare_clip


@pytest.fixture(scope="module")
def engine() -> SpatialMLLMEngine:
    return SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"))


@pytest.mark.parametrize(
    ("frames", "size", "max_pixels"),
    [
        (2, (56, 56), 56 * 56),
        (4, (120, 90), 84 * 112),
        (6, (90, 160), 112 * 168),
        (3, (100, 70), 56 * 84),
        (5, (640, 480), 112 * 140),
        (1, (30, 200), 56 * 280),
    ],
)
def test_spatial_tokens_match_video_tokens(
    engine: SpatialMLLMEngine, frames: int, size: tuple[int, int], max_pixels: int
) -> None:
    rng = np.random.default_rng(frames)
    w, h = size
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(frames)]
    clip = prepare_clip(images, min_pixels=56 * 56, max_pixels=max_pixels)
    assert clip.frames.shape[0] == frames + frames % 2 and clip.num_padded == frames % 2
    rw, rh = clip.resized_size
    assert rw % 28 == 0 and rh % 28 == 0 and rw * rh <= max_pixels
    inputs = build_inputs(engine.processor, clip, "How many?")
    n_video = int((inputs["input_ids"] == engine.model.config.video_token_id).sum())
    assert n_video == (clip.frames.shape[0] // 2) * (rh // 28) * (rw // 28)
    with torch.no_grad():
        fused = engine.model.encode_video(
            inputs["pixel_values_videos"], inputs["video_grid_thw"], inputs["video_tchw"]
        )
    text: Any = engine.model.config.text_config
    assert fused.shape == (n_video, text.hidden_size)


def _coded_tokens(s: int, h: int, w: int, c: int) -> torch.Tensor:
    """tokens[0, f, r*w + q, ch] = 1000*f + 100*r + 10*q + ch (decodable positions)."""
    f, r, q, ch = torch.meshgrid(
        torch.arange(s), torch.arange(h), torch.arange(w), torch.arange(c), indexing="ij"
    )
    return (1000 * f + 100 * r + 10 * q + ch).reshape(1, s, h * w, c).float()


def test_merge_orders_follow_released_code() -> None:
    tokens = _coded_tokens(4, 4, 6, 3)
    v10, v11 = merge_v1_0(tokens, (4, 6)), merge_v1_1(tokens, (4, 6))
    assert v10.shape == v11.shape == (2 * 2 * 3, 2 * 2 * 2 * 3)
    # token 0 of temporal group 1, merged row 1, merged column 2 -> index 1*6 + 1*3 + 2
    row = 6 + 3 + 2
    f0, r0, q0 = 2, 2, 4
    # v1.0 features: (frame-in-pair, row-in-block, col-in-block, channel), channel fastest
    want10 = [
        1000 * (f0 + t) + 100 * (r0 + a) + 10 * (q0 + b) + ch
        for t in range(2)
        for a in range(2)
        for b in range(2)
        for ch in range(3)
    ]
    # v1.1 features: (row-in-block, col-in-block, channel, frame-in-pair), frame fastest
    want11 = [
        1000 * (f0 + t) + 100 * (r0 + a) + 10 * (q0 + b) + ch
        for a in range(2)
        for b in range(2)
        for ch in range(3)
        for t in range(2)
    ]
    assert v10[row].tolist() == want10
    assert v11[row].tolist() == want11


def test_gated_connector_starts_as_additive_fusion() -> None:
    torch.manual_seed(0)
    add = build_connector("mlp_add", vggt_dim=4, hidden=8, layer_idx=-1)
    gated = build_connector("gated", vggt_dim=4, hidden=8, layer_idx=-1)
    gated.load_state_dict(add.state_dict(), strict=False)
    tokens = torch.randn(1, 2, 5 + 16, 8)
    video = torch.randn(4, 8)
    assert torch.allclose(add(video, tokens, 5, (4, 4)), gated(video, tokens, 5, (4, 4)), atol=1e-5)


def test_released_config_forms() -> None:
    v11 = json.loads((tiny_checkpoint("v1.1") / "config.json").read_text())
    assert v11["model_type"] == "spatial-mllm" and v11["architectures"] == [
        "SpatialMLLMForConditionalGeneration"
    ]
    assert v11["connector_config"] == {"connector_type": "mlp_add", "spatial_embeds_layer_idx": -1}
    # The released v1.1 spatial_config names only three sizes: the rest are VGGT-1B's.
    minimal = {k: v for k, v in v11.items() if k != "spatial_config"}
    minimal["spatial_config"] = {
        "model_type": "vggt_spatial_encoder",
        "img_size": 518,
        "patch_size": 14,
        "embed_dim": 1024,
    }
    minimal["connector_config"] = {"connector_type": "mlp_add", "spatial_embeds_layer_idx": 12}
    cfg = config_from_dict(minimal)
    spatial: Any = cfg.spatial_config
    connector: Any = cfg.connector_config
    assert spatial.depth == 24 and spatial.embed_dim == 1024
    assert connector.spatial_embeds_layer_idx == 12 and cfg.layout == "v1.1"
    v10 = load_config(tiny_checkpoint("v1.0"))
    assert v10.layout == "v1.0" and v10.connector_type == "vggt_embedding_merger"
    plain = {k: v for k, v in v11.items() if k not in ("connector_config", "spatial_config")}
    plain.update(model_type="qwen2_5_vl", architectures=["Qwen2_5_VLForConditionalGeneration"])
    assert config_from_dict(plain).layout == "qwen2.5-vl"  # a plain Qwen2.5-VL model (issue 21)
    with pytest.raises(ConfigError, match=r"neither a Spatial-MLLM nor a plain Qwen2\.5-VL"):
        config_from_dict({**plain, "model_type": "llava"})


def test_tiny_tokenizer_carries_qwen_special_tokens(engine: SpatialMLLMEngine) -> None:
    tok = engine.processor.tokenizer
    specials = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|object_ref_start|>",
        "<|object_ref_end|>",
        "<|box_start|>",
        "<|box_end|>",
        "<|quad_start|>",
        "<|quad_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|vision_pad|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ]
    for s in specials:
        ids = tok.encode(s, add_special_tokens=False)
        assert len(ids) == 1 and tok.decode(ids) == s
    cfg = engine.model.config
    assert tok.convert_tokens_to_ids("<|video_pad|>") == cfg.video_token_id
    text = engine.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "hi"}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|video_pad|><|vision_end|>hi<|im_end|>\n<|im_start|>assistant\n"
    )
