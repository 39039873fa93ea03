"""How long a prompt the loaded checkpoint takes, known without loading the model (no torch).

The node checks every question's prompt before queueing it (INVALID_QUESTION at once, never
BUSY for a bad question); it runs in a different process from the model, so it reads what it
needs from the checkpoint directory itself: the context length from ``config.json`` and the
tokenizer from ``tokenizer.json`` (the ``tokenizers`` library, a few ms to load).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spatial_mllm_ros.model.errors import ConfigError

__all__ = ["PromptLimits", "prompt_limits", "utf8_token_bound"]


def utf8_token_bound(text: str) -> int:
    """An upper bound of the tokens of ``text`` under a byte-level BPE (Qwen2's): its UTF-8
    bytes -- every token covers at least one byte."""
    return len(text.encode("utf-8"))


@dataclass(frozen=True)
class PromptLimits:
    """The checkpoint's prompt limits.

    Attributes:
        context_tokens: the language model's context (``max_position_embeddings``), tokens.
        count: tokens of a text under the checkpoint's tokenizer.
    """

    context_tokens: int
    count: Callable[[str], int]


def prompt_limits(checkpoint_dir: str | Path) -> PromptLimits:
    """The limits of the checkpoint in ``checkpoint_dir``; without a ``tokenizer.json`` the
    count is :func:`utf8_token_bound` (never below the real count).

    Raises:
        ConfigError: ``config.json`` is missing, unreadable or has no context length.
    """
    path = Path(checkpoint_dir)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path / 'config.json'}: cannot read: {err}") from err
    text = config.get("text_config") or {}
    context = text.get("max_position_embeddings", config.get("max_position_embeddings"))
    if not isinstance(context, int) or context <= 0:
        raise ConfigError(f"{path / 'config.json'}: no max_position_embeddings")
    count: Callable[[str], int] = utf8_token_bound
    if (path / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))

        def count(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return PromptLimits(int(context), count)
