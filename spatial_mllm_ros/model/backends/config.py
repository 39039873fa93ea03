"""What selects and configures the accelerated vision encoders: :class:`VisionSpec`.

Plain data (no torch), carried inside :class:`~spatial_mllm_ros.model.spec.EngineSpec` to the
model process. No defaults here: they live in the parameter schema (``model.vision_*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spatial_mllm_ros import params as P

__all__ = [
    "BACKENDS",
    "DEFAULT_TOLERANCE",
    "PRECISIONS",
    "VisionSpec",
    "parse_sizes",
]

#: Vision backends: PyTorch (the model's own encoders), ONNX Runtime, TensorRT.
BACKENDS = ("torch", "onnxruntime", "tensorrt")
#: Precisions of an accelerated encoder (TensorRT builder flags; onnxruntime runs float32).
PRECISIONS = ("fp32", "fp16", "bf16")
#: Parity tolerance per precision: the largest relative RMS error
#: ``||accelerated - torch|| / ||torch||`` over each encoder's output on the probe clip.
DEFAULT_TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2, "bf16": 5e-2}
#: Frames per temporal patch: clip lengths are multiples of it.
_TEMPORAL = 2


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """``"476x644,364x504"`` -> ((476, 644), (364, 504)); "" -> ().

    Raises:
        ValueError: an item is not ``HxW`` with positive multiples of 28.
    """
    sizes: list[tuple[int, int]] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        h, sep, w = item.lower().partition("x")
        if not sep or not h.isdigit() or not w.isdigit():
            raise ValueError(f"expected HxW (e.g. 476x644), got {item!r}")
        size = (int(h), int(w))
        if min(size) <= 0 or size[0] % 28 or size[1] % 28:
            raise ValueError(f"{item}: both sides must be positive multiples of 28")
        sizes.append(size)
    return tuple(sizes)


@dataclass(frozen=True)
class VisionSpec:
    """How the two vision encoders run (parameters ``model.vision_*``).

    Attributes:
        backend: one of :data:`BACKENDS`.
        precision: one of :data:`PRECISIONS` (TensorRT); onnxruntime always runs float32.
        cache_dir: where ONNX graphs and engines are cached; "" = the default cache
            (``$XDG_CACHE_HOME/spatial_mllm_ros/engines``).
        sizes: model input sizes (height, width), multiples of 28, whose engines are prepared
            as soon as the model is loaded; other sizes are prepared on first use.
        min_frames, opt_frames, max_frames: the engines' frame-count profile (even numbers);
            a clip outside it runs the torch encoders.
        parity_tolerance: largest relative RMS error against torch on the probe clip;
            0 = the precision's :data:`DEFAULT_TOLERANCE`, or the model dtype's if looser.
        build_wait_s: how long an answer at a size whose engine is still being prepared waits
            for it, seconds; 0 = the torch encoders answer meanwhile.
    """

    backend: str = field(metadata=P.binding("model.vision_backend"))
    precision: str = field(metadata=P.binding("model.vision_precision"))
    cache_dir: str = field(metadata=P.binding("model.vision_cache_dir"))
    sizes: tuple[tuple[int, int], ...] = field(
        metadata=P.binding("model.vision_sizes", parse_sizes))
    min_frames: int
    opt_frames: int
    max_frames: int
    parity_tolerance: float = field(metadata=P.binding("model.vision_parity_tolerance"))
    build_wait_s: float = field(metadata=P.binding("model.vision_build_wait_s"))

    @property
    def accelerated(self) -> bool:
        """True unless the backend is ``torch``."""
        return self.backend != "torch"

    def tolerance(self, model_dtype: str) -> float:
        """The parity tolerance in effect for a model of ``model_dtype`` (a torch dtype name:
        a bfloat16 reference is itself only that exact)."""
        if self.parity_tolerance > 0:
            return self.parity_tolerance
        precision = self.precision if self.backend == "tensorrt" else "fp32"
        ref = {"bfloat16": "bf16", "float16": "fp16"}.get(model_dtype, "fp32")
        return max(DEFAULT_TOLERANCE[precision], DEFAULT_TOLERANCE[ref])

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> VisionSpec:
        """The spec of validated parameter values (``model.vision_*``); the engines' frame
        profile spans the clips the sampling can give: 2 .. ``sampling.max_frame_budget``,
        optimised for ``sampling.frame_budget``, even numbers.

        Raises:
            ValueError: ``model.vision_sizes`` is malformed.
        """
        # the frame profile is derived from two parameters bound elsewhere (PipelineConfig)
        budget = int(values["sampling.frame_budget"])
        top = max(int(values["sampling.max_frame_budget"]), budget)
        return cls(
            **P.bound_values(cls, values),
            min_frames=_TEMPORAL,
            opt_frames=budget + budget % _TEMPORAL,
            max_frames=top + top % _TEMPORAL,
        )

    @classmethod
    def torch_only(cls) -> VisionSpec:
        """The model's own encoders, nothing accelerated."""
        return cls("torch", "fp32", "", (), 2, 2, 2, 0.0, 0.0)
