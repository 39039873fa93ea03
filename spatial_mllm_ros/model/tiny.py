"""Generator of tiny (and "medium") checkpoints in the RELEASED Spatial-MLLM format.

``write_checkpoint(out_dir, layout="v1.1")`` writes a complete directory -- config.json (the
released form of the layout), generation_config.json, tokenizer files (a small byte-level BPE
built offline with ``tokenizers`` that carries every Qwen2.5-VL special token, Qwen2.5-VL's chat
template), preprocessor_config.json / video_preprocessor_config.json / chat_template.json as
Qwen2.5-VL ships them, and model.safetensors (or shards + index) with the released tensor names
at tiny shapes.  Seeded and deterministic.  The weights are random: answers are meaningless.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from spatial_mllm_ros.model.configuration import (
    CONNECTOR_V1_0,
    CONNECTOR_V1_1,
    SpatialMLLMConfig,
    released_config_dict,
)
from spatial_mllm_ros.model.layout import materialize_parameters, parameters_on_meta, to_released
from spatial_mllm_ros.model.vggt import VGGT, VGGTConfig

#: Qwen2.5-VL added tokens, in id order (the first 14 are special; all follow the BPE vocabulary).
QWEN_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)

#: Qwen2.5-VL's chat template (chat_template.json of Qwen/Qwen2.5-VL-3B-Instruct).
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: Qwen2's pre-tokenizer split pattern.
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

_CORPUS = [
    "How many chairs are in this room? Please answer the question using a single word or phrase.",
    "What is the distance between the sofa and the table (in meters)?",
    "If I am standing by the stove and facing the tv, is the sofa to my front-left or back-right?",
    "Answer with the option's letter from the given choices directly. A. B. C. D.",
    "The blue box is on the shelf next to the bag of straws. 0 1 2 3 4 5 6 7 8 9 10 0.5 1.25",
    "Measuring from the closest point of each object, which object is closest to the camera?",
    "What is the size of the room in square meters? What is the height of the box in cm?",
    '[{"bbox_2d": [10, 20, 110, 220], "label": "box"}] json object label bbox',
]

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


def build_tokenizer() -> Tokenizer:
    """Deterministic byte-level BPE with Qwen2's normalizer/pre-tokenizer and all added tokens."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=SIZES["tiny"]["bpe_vocab"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    from tokenizers import AddedToken

    tok.add_tokens([AddedToken(t, special=s, normalized=False) for t, s in QWEN_ADDED_TOKENS])
    return tok


def token_ids(tok: Tokenizer) -> dict[str, int]:
    ids = {t: tok.token_to_id(t) for t, _ in QWEN_ADDED_TOKENS}
    return {k: int(v) for k, v in ids.items() if v is not None}


def make_config(
    layout: str,
    size: str = "tiny",
    vocab_size: int = 0,
    ids: dict[str, int] | None = None,
    spatial_embeds_layer_idx: int = -1,
) -> SpatialMLLMConfig:
    """Tiny/medium configuration of ``layout`` (v1.0 or v1.1) for a vocabulary of ``vocab_size``."""
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
        max_position_embeddings=4096,
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
    return SpatialMLLMConfig(**kwargs)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_tokenizer(out: Path, tok: Tokenizer) -> None:
    """tokenizer.json, vocab.json, merges.txt, tokenizer_config.json, chat_template.json."""
    tok.save(str(out / "tokenizer.json"))
    tok.model.save(str(out))
    decoder = {
        str(tok.token_to_id(t)): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": s,
        }
        for t, s in QWEN_ADDED_TOKENS
    }
    _write_json(
        out / "tokenizer_config.json",
        {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": decoder,
            "additional_special_tokens": [
                t
                for t, s in QWEN_ADDED_TOKENS
                if s and t != "<|endoftext|>" and t not in ("<|im_end|>",)
            ],
            "bos_token": None,
            "chat_template": QWEN2_5_VL_CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|im_end|>",
            "errors": "replace",
            "extra_special_tokens": {},
            "model_max_length": 131072,
            "pad_token": "<|endoftext|>",
            "processor_class": "Qwen2_5_VLProcessor",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        },
    )
    _write_json(out / "chat_template.json", {"chat_template": QWEN2_5_VL_CHAT_TEMPLATE})


def write_processor_configs(out: Path) -> None:
    """preprocessor_config.json and video_preprocessor_config.json as Qwen2.5-VL ships them."""
    common = {
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
        "merge_size": 2,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "processor_class": "Qwen2_5_VLProcessor",
    }
    _write_json(
        out / "preprocessor_config.json",
        {
            **common,
            "image_processor_type": "Qwen2VLImageProcessor",
            "min_pixels": 3136,
            "max_pixels": 12845056,
        },
    )
    _write_json(
        out / "video_preprocessor_config.json",
        {
            **common,
            "video_processor_type": "Qwen2VLVideoProcessor",
            "min_pixels": 128 * 28 * 28,
            "max_pixels": 768 * 28 * 28,
            "size": {"shortest_edge": 128 * 28 * 28, "longest_edge": 768 * 28 * 28},
        },
    )


def write_generation_config(out: Path, ids: dict[str, int]) -> None:
    """generation_config.json in Qwen2.5-VL's form (eos: im_end and endoftext)."""
    _write_json(
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


def save_tensors(out: Path, tensors: dict[str, torch.Tensor], shards: int = 1) -> list[Path]:
    """model.safetensors, or ``shards`` files + model.safetensors.index.json (released naming)."""
    names = list(tensors)
    if shards <= 1:
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
        return [out / "model.safetensors"]
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    budget = total / shards
    groups: list[list[str]] = [[] for _ in range(shards)]
    acc, g = 0.0, 0
    for n in names:
        size = tensors[n].numel() * tensors[n].element_size()
        if acc + size / 2 > budget * (g + 1) and g < shards - 1 and groups[g]:
            g += 1
        groups[g].append(n)
        acc += size
    groups = [grp for grp in groups if grp]
    files, weight_map = [], {}
    for i, grp in enumerate(groups, 1):
        fname = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        save_file({n: tensors[n] for n in grp}, str(out / fname), metadata={"format": "pt"})
        files.append(out / fname)
        weight_map.update(dict.fromkeys(grp, fname))
    _write_json(
        out / "model.safetensors.index.json",
        {"metadata": {"total_size": total}, "weight_map": weight_map},
    )
    return files


def _init_(module: torch.nn.Module, seed: int) -> None:
    """Deterministic N(0, 0.02) weights, unit norms, zero biases."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif p.dim() == 1 and ("norm" in name or "ln_q" in name or name.endswith(".weight")):
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)


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
    """Write a complete checkpoint directory of ``layout`` (v1.0, v1.1 or vggt) and return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if layout == "vggt":
        return _write_vggt(out, size, shards, seed, dtype)
    if layout not in ("v1.0", "v1.1"):
        raise ValueError(f"unknown layout {layout!r}")
    from spatial_mllm_ros.model.modeling import SpatialMLLMForConditionalGeneration

    tok = build_tokenizer()
    ids = token_ids(tok)
    config = make_config(layout, size, tok.get_vocab_size(), ids, spatial_embeds_layer_idx)
    with parameters_on_meta():
        model = SpatialMLLMForConditionalGeneration(config)
    materialize_parameters(model)
    model.tie_weights()
    _init_(model, seed)
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
    _write_json(out / "config.json", cfg)
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
    _init_(vggt, seed)
    tensors = {n: p.detach().to(dtype).clone().contiguous() for n, p in vggt.named_parameters()}
    save_tensors(out, tensors, shards)
    _write_json(out / "config.json", config.to_dict())
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
