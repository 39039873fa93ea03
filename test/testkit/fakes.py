"""Stand-ins for the model behind an ``Answerer`` (and a ``GeometryPredictor``), and a
plain store for the ingestor: they record what they were given."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from spatial_mllm_ros.answering.types import GenerationResult
from spatial_mllm_ros.core.frame import Frame
from testkit.frames import S

__all__ = ["FifoStore", "GeometryAnswerer", "ScriptedAnswerer"]


class ScriptedAnswerer:
    """Answers every prompt with ``text`` (grounding prompts, those starting with "Locate",
    with ``grounding_text``) as if the model saw the frames at half size; raises a simulated
    out-of-memory error instead with ``fail``.  ``calls`` records (frame stamps, prompt)."""

    checkpoint_layout = "v1.1"

    def __init__(self, text: str, grounding_text: str = "[]", fail: bool = False) -> None:
        self.text = text
        self.grounding_text = grounding_text
        self.fail = fail
        self.calls: list[tuple[list[int], str]] = []

    @property
    def answered(self) -> list[list[int]]:
        """The frame stamps of each answered call."""
        return [stamps for stamps, _ in self.calls]

    def answer(
        self,
        frames: Sequence[Frame],
        prompt: str,
        max_new_tokens: int = 64,
        *,
        on_token: Callable[[list[int], str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """The scripted text, "generated" one word per token: ``on_token`` hears each word,
        and ``should_stop`` ends it between words (``stopped``)."""
        if self.fail:
            raise RuntimeError("CUDA out of memory (simulated)")
        self.calls.append(([f.stamp_ns for f in frames], prompt))
        text = self.grounding_text if prompt.startswith("Locate") else self.text
        words = text.split(" ")
        said: list[str] = []
        stopped = False
        for i, word in enumerate(words[:max_new_tokens]):
            said.append(word)
            if on_token is not None:
                on_token(list(range(i + 1)), " ".join(said))
            if should_stop is not None and should_stop() and i + 1 < len(words):
                stopped = True
                break
        w, h = frames[0].width // 2, frames[0].height // 2  # the model saw half size
        return GenerationResult(" ".join(said), {"vision_2d": 0.01, "decode": 0.02}, len(said),
                                (w, h), stopped=stopped)


class GeometryAnswerer(ScriptedAnswerer):
    """A :class:`ScriptedAnswerer` (text "3") that also predicts geometry: for a frame made by
    ``testkit.frames.colour_frame(i)`` (stamp ``(i + 1)`` s), entry ``i`` of ``scene``.
    With ``fail``, prediction raises as when the VGGT heads are not loaded.  ``predicted``
    records the frame stamps of each prediction."""

    def __init__(self, scene: Sequence[Any], fail: bool = False) -> None:
        super().__init__("3")
        self.scene = scene
        self.geometry_fails = fail
        self.predicted: list[list[int]] = []

    def predict_geometry(self, frames: Sequence[Frame]) -> list[Any]:
        self.predicted.append([f.stamp_ns for f in frames])
        if self.geometry_fails:
            raise RuntimeError("the VGGT heads are not loaded (simulated)")
        return [self.scene[f.stamp_ns // S - 1] for f in frames]


@dataclass(frozen=True)
class _Kept:
    evicted_count: int
    admitted: bool = True
    reason: str = "fifo"


class FifoStore:
    """The ``core.buffer.FrameStore`` protocol at its plainest: keeps every frame, evicting
    the oldest beyond ``max_frames``."""

    def __init__(self, max_frames: int = 1_000_000) -> None:
        self.max_frames = max_frames
        self._frames: list[Frame] = []

    def add(self, frame: Frame) -> _Kept:
        self._frames.append(frame)
        over = max(0, len(self._frames) - self.max_frames)
        del self._frames[:over]
        return _Kept(over)

    def snapshot(self) -> tuple[Frame, ...]:
        """The frames held, oldest first."""
        return tuple(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def clear(self) -> None:
        self._frames.clear()

    def clear_camera(self, camera: str) -> None:
        self._frames = [f for f in self._frames if f.camera != camera]

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self._frames)
