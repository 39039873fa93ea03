"""What the vision encoders are running on, as plain data for logs and ``/diagnostics``.

Torch-free on purpose: the model process sends a :class:`VisionStatus` to the node, which
unpickles it without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ENCODERS", "SIZE_STATES", "SizeStatus", "VisionStatus", "VisionUsage"]

#: The two vision encoders, as statuses, parity reports and usage name them.
ENCODERS = ("vision_2d", "spatial")

#: States of one input size's accelerated encoders, in the order they are passed through.
#: ``active``: the accelerated encoders run; ``fallback``: they disagreed with torch beyond the
#: tolerance, torch runs; ``failed``: they could not be prepared, torch runs.
SIZE_STATES = ("queued", "exporting", "building", "checking", "active", "fallback", "failed")


@dataclass(frozen=True)
class SizeStatus:
    """One model input size.

    Attributes:
        size: ``HxW`` (model input pixels).
        state: one of :data:`SIZE_STATES`.
        message: why (the error, the parity figures), "" when active.
        parity: encoder (``vision_2d``, ``spatial``) -> relative RMS error against torch on
            the probe clip (empty until checked).
        tolerance: the parity tolerance applied.
        accelerated_calls, torch_calls: encoder calls served by each path.
    """

    size: str
    state: str
    message: str = ""
    parity: dict[str, float] = field(default_factory=dict)
    tolerance: float = 0.0
    accelerated_calls: int = 0
    torch_calls: int = 0


@dataclass(frozen=True)
class VisionStatus:
    """The vision backend of an engine.

    Attributes:
        requested: the configured backend (``model.vision_backend``).
        precision: the configured precision.
        sizes: per input size, in the order they were first seen.
        note: a backend-wide problem (e.g. "tensorrt is not installed"), "" = none.
    """

    requested: str
    precision: str
    sizes: tuple[SizeStatus, ...] = ()
    note: str = ""

    @property
    def level(self) -> str:
        """``ok``, or ``warn`` when the requested backend is not what runs (a fallback, a
        failure, a missing package)."""
        bad = self.note or any(s.state in ("fallback", "failed") for s in self.sizes)
        return "warn" if bad else "ok"

    @property
    def message(self) -> str:
        """One line: what runs, and why not the requested backend where it is not."""
        if self.requested == "torch":
            return "vision encoders: torch"
        parts = [f"{s.size} {s.state}" + (f" ({s.message})" if s.message else "")
                 for s in self.sizes]
        head = f"vision encoders: {self.requested} {self.precision}"
        if self.note:
            head += f"; {self.note}"
        return head + ("; " + "; ".join(parts) if parts else "; no input size prepared yet")

    def to_values(self) -> dict[str, str]:
        """Flat key -> value strings for a DiagnosticStatus (``vision.*``)."""
        values = {
            "vision.backend": self.requested,
            "vision.precision": self.precision,
            "vision.level": self.level,
            "vision.message": self.message,
        }
        for s in self.sizes:
            values[f"vision.{s.size}.state"] = s.state
            values[f"vision.{s.size}.calls"] = f"{s.accelerated_calls}/{s.torch_calls}"
            for name, err in s.parity.items():
                values[f"vision.{s.size}.parity.{name}"] = f"{err:.3g}"
        return values


@dataclass(frozen=True)
class VisionUsage:
    """What ran the vision encoders of an engine's answers so far (plain data).

    Attributes:
        requested: the configured backend (``model.vision_backend``).
        calls: encoder (:data:`ENCODERS`) -> backend -> calls.
        status: :attr:`VisionStatus.message` at the time: why a requested backend did not
            run (a size still being prepared, a fallback, a missing package).
    """

    requested: str
    calls: dict[str, dict[str, int]]
    status: str = ""

    def used(self, encoder: str) -> str:
        """The backend(s) that ran ``encoder``: ``torch``, ``onnxruntime``,
        ``onnxruntime+torch`` (some clips each; accelerated first), or ``none``."""
        backends = sorted(self.calls.get(encoder, {}), key=lambda b: (b == "torch", b))
        return "+".join(backends) or "none"

    def to_json(self) -> dict[str, object]:
        """``{"requested": ..., "used": {encoder: backend}, "calls": {encoder: {backend:
        n}}, "status": ...}``: the ``vision_backend`` of ``spatial-mllm-infer``'s answer."""
        return {
            "requested": self.requested,
            "used": {e: self.used(e) for e in ENCODERS},
            "calls": {e: dict(self.calls.get(e, {})) for e in ENCODERS},
            "status": self.status,
        }

    @property
    def line(self) -> str:
        """One line for a report: ``requested onnxruntime; vision_2d ran on torch (2 calls),
        spatial on torch (2 calls)``."""
        parts = []
        for encoder in ENCODERS:
            calls = self.calls.get(encoder, {})
            counts = ", ".join(f"{b} {n}" for b, n in sorted(calls.items()))
            parts.append(f"{encoder} ran on {self.used(encoder)}"
                         + (f" (calls: {counts})" if calls else ""))
        return f"requested {self.requested}; " + "; ".join(parts)
