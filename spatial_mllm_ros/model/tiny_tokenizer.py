"""Tokenizer and processor files of the generated tiny checkpoints (see ``model.tiny``).

A small byte-level BPE built offline with ``tokenizers`` that carries every Qwen2.5-VL special
token, Qwen2.5-VL's chat template, and preprocessor_config.json /
video_preprocessor_config.json / chat_template.json as Qwen2.5-VL ships them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)

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


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented UTF-8 JSON with a final newline (the form of the released files)."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_tokenizer(bpe_vocab: int) -> Tokenizer:
    """Deterministic byte-level BPE of ``bpe_vocab`` learned tokens, Qwen2's normalizer and
    pre-tokenizer, then every Qwen2.5-VL added token (ids ``bpe_vocab`` onwards)."""
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
        vocab_size=bpe_vocab,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=s, normalized=False) for t, s in QWEN_ADDED_TOKENS])
    return tok


def token_ids(tok: Tokenizer) -> dict[str, int]:
    """Id of each Qwen2.5-VL added token in ``tok`` (name -> id)."""
    ids = {t: tok.token_to_id(t) for t, _ in QWEN_ADDED_TOKENS}
    return {k: int(v) for k, v in ids.items() if v is not None}


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
    write_json(
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
    write_json(out / "chat_template.json", {"chat_template": QWEN2_5_VL_CHAT_TEMPLATE})


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
    write_json(
        out / "preprocessor_config.json",
        {
            **common,
            "image_processor_type": "Qwen2VLImageProcessor",
            "min_pixels": 3136,
            "max_pixels": 12845056,
        },
    )
    write_json(
        out / "video_preprocessor_config.json",
        {
            **common,
            "video_processor_type": "Qwen2VLVideoProcessor",
            "min_pixels": 128 * 28 * 28,
            "max_pixels": 768 * 28 * 28,
            "size": {"shortest_edge": 128 * 28 * 28, "longest_edge": 768 * 28 * 28},
        },
    )
