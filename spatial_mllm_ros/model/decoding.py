"""How answers are decoded: the checkpoint's ``generation_config.json``, with stated overrides.

The released checkpoints ship a ``generation_config.json`` (Qwen2.5-VL's: ``do_sample`` with
``top_k=1``, ``top_p=0.001``, ``temperature=0.1`` -- greedy in effect -- and
``repetition_penalty=1.05``). The authors' evaluation decodes with it: ``generate`` merges the
checkpoint's file with its explicit ``do_sample=True, temperature=0.1, top_p=0.001``. Decoding
here goes through transformers' :class:`~transformers.GenerationConfig` and its logits
processors; nothing is sampled by hand.

Modes (parameter ``answer.decoding``):

``checkpoint``
    the file as it is (a checkpoint without one decodes greedily, transformers' default);
``reference``
    the file plus the reference evaluation's explicit settings (:data:`REFERENCE_OVERRIDES`);
    the same as ``checkpoint`` for a file in Qwen2.5-VL's form;
``greedy``
    plain greedy search, no repetition penalty (the project's earlier behaviour).

``answer.repetition_penalty`` > 0 replaces the penalty in any mode.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from spatial_mllm_ros import params as P
from spatial_mllm_ros.model.errors import InputError

if TYPE_CHECKING:  # DecodingSpec is plain data: the model process's parent never imports torch
    from transformers import GenerationConfig

__all__ = [
    "DECODING_MODES",
    "REFERENCE_OVERRIDES",
    "DecodingSpec",
    "generation_config_for",
    "load_generation_config",
]

DecodingMode = Literal["checkpoint", "reference", "greedy"]
DECODING_MODES: tuple[str, ...] = ("checkpoint", "reference", "greedy")

REFERENCE_OVERRIDES: dict[str, Any] = {"do_sample": True, "temperature": 0.1, "top_p": 0.001}
"""What Spatial-MLLM's VSI-Bench evaluation (both branches) passes to ``generate``."""

_SAMPLING_KEYS = ("temperature", "top_p", "top_k")


@dataclass(frozen=True)
class DecodingSpec:
    """Decoding overrides on top of the checkpoint's generation config.

    Attributes:
        mode: ``checkpoint``, ``reference`` or ``greedy`` (see the module docstring).
        repetition_penalty: > 0 replaces the checkpoint's penalty; 0 keeps it.
    """

    mode: DecodingMode = P.bound("answer.decoding")
    repetition_penalty: float = P.bound("answer.repetition_penalty")

    def __post_init__(self) -> None:
        if self.mode not in DECODING_MODES:
            raise InputError(f"unknown decoding mode {self.mode!r}; expected {DECODING_MODES}")
        if self.repetition_penalty < 0:
            raise InputError(f"repetition_penalty must be >= 0, got {self.repetition_penalty}")


def load_generation_config(checkpoint_dir: str | Path, model_config: Any) -> GenerationConfig:
    """The checkpoint's ``generation_config.json``, or one derived from ``model_config`` (its
    token ids, greedy) when the directory has none."""
    from transformers import GenerationConfig

    path = Path(checkpoint_dir)
    if (path / "generation_config.json").is_file():
        return GenerationConfig.from_pretrained(str(path))
    return GenerationConfig.from_model_config(model_config)


def generation_config_for(base: GenerationConfig, spec: DecodingSpec) -> GenerationConfig:
    """A copy of ``base`` with ``spec`` applied."""
    config = copy.deepcopy(base)
    if spec.mode == "reference":
        config.update(**REFERENCE_OVERRIDES)
    elif spec.mode == "greedy":
        config.update(do_sample=False, repetition_penalty=1.0, **dict.fromkeys(_SAMPLING_KEYS))
    if spec.repetition_penalty > 0:
        config.repetition_penalty = spec.repetition_penalty
    return config
