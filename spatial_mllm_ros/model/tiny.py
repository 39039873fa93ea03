"""Generator of tiny (and "medium") checkpoints in the RELEASED Spatial-MLLM format.

``write_checkpoint(out_dir, layout="v1.1")`` writes a complete directory -- config.json (the
released form of the layout), generation_config.json, tokenizer files (a small byte-level BPE
built offline with ``tokenizers`` that carries every Qwen2.5-VL special token, Qwen2.5-VL's chat
template), preprocessor_config.json / video_preprocessor_config.json / chat_template.json as
Qwen2.5-VL ships them, and model.safetensors (or shards + index) with the released tensor names
at tiny shapes.  Seeded and deterministic.  The weights are random: answers are meaningless.

This module sizes and assembles the checkpoint (config.json, generation_config.json); the
tokenizer and processor files come from ``model.tiny_tokenizer``, the weights files from
``model.tiny_weights``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from spatial_mllm_ros.model.configuration import (
    CONNECTOR_V1_0,
    CONNECTOR_V1_1,
    PLAIN_QWEN_LAYOUT,
    PlainQwenConfig,
    SpatialMLLMConfig,
    released_config_dict,
)
from spatial_mllm_ros.model.layout import materialize_parameters, parameters_on_meta, to_released
from spatial_mllm_ros.model.tiny_tokenizer import (
    build_tokenizer,
    token_ids,
    write_json,
    write_processor_configs,
    write_tokenizer,
)
from spatial_mllm_ros.model.tiny_weights import init_weights, save_tensors
from spatial_mllm_ros.model.vggt import VGGT, VGGTConfig

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "bpe_vocab": 384,
        "text": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "mrope_section": [2, 3, 3],
        },
        "vision": {
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "fullatt_block_indexes": [1],
        },
        "vggt": {},
    },
    "medium": {
        "bpe_vocab": 512,
        "text": {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 10,
            "num_attention_heads": 12,
            "num_key_value_heads": 4,
            "mrope_section": [8, 12, 12],
        },
        "vision": {
            "depth": 4,
            "hidden_size": 256,
            "intermediate_size": 768,
            "num_heads": 4,
            "fullatt_block_indexes": [1, 3],
        },
        "vggt": {
            "embed_dim": 128,
            "num_heads": 4,
            "patch_embed_num_heads": 4,
            "camera_num_heads": 4,
        },
    },
}


def make_config(
    layout: str,
    size: str = "tiny",
    vocab_size: int = 0,
    ids: dict[str, int] | None = None,
    spatial_embeds_layer_idx: int = -1,
) -> SpatialMLLMConfig:
    """Tiny/medium configuration of ``layout`` (v1.0, v1.1 or qwen2.5-vl: no connector) for a
    vocabulary of ``vocab_size``."""
    spec = SIZES[size]
    ids = ids or {}
    text = dict(spec["text"])
    mrope = text.pop("mrope_section")
    vision = {
        **spec["vision"],
        "out_hidden_size": text["hidden_size"],
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "tokens_per_second": 2,
        "hidden_act": "silu",
    }
    connector = CONNECTOR_V1_0 if layout == "v1.0" else CONNECTOR_V1_1
    kwargs: dict[str, Any] = dict(
        spatial_config=VGGTConfig.tiny(**spec["vggt"]),
        connector_config={
            "connector_type": connector,
            "spatial_embeds_layer_idx": spatial_embeds_layer_idx,
        },
        vision_config=vision,
        vocab_size=vocab_size,
        hidden_act="silu",
        max_position_embeddings=32768,  # long enough for the largest default clip
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        rope_scaling={"type": "mrope", "mrope_section": mrope},
        tie_word_embeddings=True,
        bos_token_id=ids.get("<|endoftext|>"),
        eos_token_id=ids.get("<|im_end|>"),
        image_token_id=ids.get("<|image_pad|>", 0),
        video_token_id=ids.get("<|video_pad|>", 0),
        vision_start_token_id=ids.get("<|vision_start|>", 0),
        vision_end_token_id=ids.get("<|vision_end|>", 0),
        **text,
    )
    if layout == PLAIN_QWEN_LAYOUT:
        del kwargs["connector_config"]
        return PlainQwenConfig(**kwargs)
    return SpatialMLLMConfig(**kwargs)


def write_generation_config(out: Path, ids: dict[str, int]) -> None:
    """generation_config.json in Qwen2.5-VL's form (eos: im_end and endoftext)."""
    write_json(
        out / "generation_config.json",
        {
            "bos_token_id": ids["<|endoftext|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "do_sample": True,
            "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
            "repetition_penalty": 1.05,
            "temperature": 0.1,
            "top_k": 1,
            "top_p": 0.001,
            "transformers_version": "4.51.3",
        },
    )


def write_checkpoint(
    out_dir: str | Path,
    layout: str = "v1.1",
    size: str = "tiny",
    shards: int = 1,
    seed: int = 0,
    with_heads: bool = True,
    dtype: torch.dtype = torch.float32,
    spatial_embeds_layer_idx: int = -1,
) -> Path:
    """Write a complete checkpoint directory of ``layout`` (v1.0, v1.1, qwen2.5-vl or vggt) and
    return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if layout == "vggt":
        return _write_vggt(out, size, shards, seed, dtype)
    if layout not in ("v1.0", "v1.1", PLAIN_QWEN_LAYOUT):
        raise ValueError(f"unknown layout {layout!r}")
    from spatial_mllm_ros.model.modeling import SpatialMLLMForConditionalGeneration

    tok = build_tokenizer(SIZES["tiny"]["bpe_vocab"])
    ids = token_ids(tok)
    config = make_config(layout, size, tok.get_vocab_size(), ids, spatial_embeds_layer_idx)
    with parameters_on_meta():
        model = SpatialMLLMForConditionalGeneration(config)
    materialize_parameters(model)
    model.tie_weights()
    init_weights(model, seed)
    heads = ("camera_head", "depth_head", "point_head", "track_head")
    tensors: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if not with_heads and any(name.startswith(f"spatial_encoder.{h}.") for h in heads):
            continue
        tensors[to_released(name, layout)] = p.detach().to(dtype).clone().contiguous()
    emb = tensors["model.embed_tokens.weight"]
    tensors["lm_head.weight"] = emb.clone()
    save_tensors(out, tensors, shards)
    cfg = released_config_dict(config, vision_token_id=ids["<|vision_pad|>"])
    cfg["torch_dtype"] = str(dtype).removeprefix("torch.")
    write_json(out / "config.json", cfg)
    write_generation_config(out, ids)
    write_tokenizer(out, tok)
    write_processor_configs(out)
    (out / "README.md").write_text(
        f"# Tiny Spatial-MLLM {layout} checkpoint (generated, seed {seed})\n\n"
        "Random weights at tiny shapes, in the released file format and tensor names. "
        "It exercises\n"
        "every stage of the pipeline; its answers are meaningless.\n",
        encoding="utf-8",
    )
    return out


def _write_vggt(out: Path, size: str, shards: int, seed: int, dtype: torch.dtype) -> Path:
    config = VGGTConfig.tiny(**SIZES[size]["vggt"])
    with parameters_on_meta():
        vggt = VGGT(config)
    materialize_parameters(vggt)
    init_weights(vggt, seed)
    tensors = {n: p.detach().to(dtype).clone().contiguous() for n, p in vggt.named_parameters()}
    save_tensors(out, tensors, shards)
    write_json(out / "config.json", config.to_dict())
    return out


def write_all(out_root: str | Path, layouts: Sequence[str] = ("v1.0", "v1.1")) -> list[Path]:
    """Tiny checkpoints of several layouts under ``out_root/<layout>``."""
    return [write_checkpoint(Path(out_root) / lay, lay) for lay in layouts]


def ensure_checkpoint(out_dir: str | Path, layout: str = "v1.1") -> Path:
    """Return ``out_dir`` holding a tiny checkpoint of ``layout``, generating it if absent.

    Generation writes into a private temporary directory that is renamed into place, so
    several processes may call this at once and none ever sees a half-written checkpoint.
    """
    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    write_checkpoint(tmp, layout=layout)
    try:
        tmp.rename(out)
    except OSError:  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out / "config.json").is_file():
            raise
    return out
