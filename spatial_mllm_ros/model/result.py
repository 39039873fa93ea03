"""What the model returns for one prompt over a set of frames (plain Python: no torch).

The one result type of a generation, shared by the engine, the model process and every
:class:`~spatial_mllm_ros.answering.types.Answerer` (the answering layer re-exports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["GenerationResult"]


@dataclass(frozen=True)
class GenerationResult:
    """One generation.

    Attributes:
        text: the generated answer text, special tokens skipped.
        timings_s: seconds per model stage (``vision_2d``, ``spatial``, ``connector``,
            ``prefill``, ``decode``); missing stages count as 0.
        num_new_tokens: number of generated tokens.
        resized_size: (width, height) in pixels of the frames as the model saw them, used to
            map boxes back to the original frames.
        raw_text: the text with special tokens kept (Qwen2.5-VL's ``<|box_start|>`` box
            form lives there); "" when the same as ``text``.
        original_size: (width, height) of the first input frame; (0, 0) when not known.
        token_ids: the generated token ids; empty when not known.
        num_video_tokens: video tokens in the prompt (= merged spatial tokens); 0 when not
            known.
        stopped: generation was stopped early by the caller (a cancel or a deadline) rather
            than ending by itself; ``text`` is what was generated until then.
    """

    text: str
    timings_s: dict[str, float]
    num_new_tokens: int
    resized_size: tuple[int, int]
    raw_text: str = ""
    original_size: tuple[int, int] = (0, 0)
    token_ids: list[int] = field(default_factory=list)
    num_video_tokens: int = 0
    stopped: bool = False

    @property
    def box_text(self) -> str:
        """The text to look for boxes in."""
        return self.raw_text or self.text
