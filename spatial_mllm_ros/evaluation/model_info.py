"""Which model an evaluation ran, as far as its scores are concerned: a generated checkpoint
with random weights (the embedded tiny default, ``spatial-mllm-checkpoint tiny``) gives
meaningless answers, so its scores say nothing about Spatial-MLLM -- the report says so at
its top (:func:`model_info`).

A generated checkpoint is recognised by what :mod:`spatial_mllm_ros.model.tiny` writes into
it: its ``README.md`` heading ``# Tiny Spatial-MLLM <layout> checkpoint (generated, seed N)``,
or else its ``config.json``'s vocabulary of a few hundred tokens (the generator's byte-level
BPE; a released Spatial-MLLM has Qwen2.5-VL's 151,936).  Read only: nothing
here loads the model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RANDOM_WEIGHTS_NOTE", "ModelInfo", "model_info"]

#: The heading of the README.md that the tiny-checkpoint generator writes.
_GENERATED_README = re.compile(r"^# Tiny Spatial-MLLM \S+ checkpoint \(generated\b")
#: Vocabularies below this are the generator's, never a released model's.
_GENERATED_VOCAB_MAX = 4096

RANDOM_WEIGHTS_NOTE = (
    "the model is a generated checkpoint with random weights (the embedded tiny default or "
    "`spatial-mllm-checkpoint tiny`): its answers are meaningless, so are the scores (0 and "
    "unparseable answers are expected). Frame selection, coverage and timings are real. For "
    "real scores pass --checkpoint DIR of a released Spatial-MLLM checkpoint."
)


@dataclass(frozen=True)
class ModelInfo:
    """The evaluated checkpoint.

    Attributes:
        checkpoint: its directory, as the run recorded it.
        random_weights: a generated checkpoint (random weights: meaningless answers).
        evidence: how that was recognised ("" when it was not).
        note: a sentence for the report ("" for a released model).
    """

    checkpoint: str
    random_weights: bool
    evidence: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "random_weights": self.random_weights,
                "evidence": self.evidence, "note": self.note}


def _readme_heading(directory: Path) -> str:
    try:
        with (directory / "README.md").open(encoding="utf-8") as f:
            return f.readline().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _vocab_size(directory: Path) -> int | None:
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    size = config.get("vocab_size", text.get("vocab_size"))
    return size if isinstance(size, int) else None


def model_info(checkpoint: str | Path) -> ModelInfo:
    """What the checkpoint directory ``checkpoint`` is (see the module docstring)."""
    directory = Path(checkpoint)
    heading = _readme_heading(directory)
    if _GENERATED_README.match(heading):
        return ModelInfo(str(checkpoint), True, f"README.md: {heading!r}", RANDOM_WEIGHTS_NOTE)
    vocab = _vocab_size(directory)
    if vocab is not None and vocab < _GENERATED_VOCAB_MAX:
        return ModelInfo(str(checkpoint), True,
                         f"config.json: a vocabulary of {vocab} tokens", RANDOM_WEIGHTS_NOTE)
    return ModelInfo(str(checkpoint), False)
