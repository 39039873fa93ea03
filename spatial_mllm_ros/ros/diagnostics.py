"""diagnostic_msgs/DiagnosticArray of the ingest counters, for /diagnostics.

One DiagnosticStatus named :data:`INGEST_STATUS_NAME` carries every counter of
:class:`~spatial_mllm_ros.core.counters.IngestCounters` (its ``flat()`` keys) as a KeyValue
(integers as text), plus
``rate.<topic>_hz`` (messages received per second over the last period), ``state`` (lifecycle
state label) and ``pid``, and per configured topic ``stream.<kind>.publishers`` /
``.state`` (``ok``, ``silent``, ``no_publisher``) / ``.silent_s``
(:class:`~spatial_mllm_ros.core.ingest.StreamHealth`).  Level WARN when messages were
rejected during the last period, or when a configured topic has no publisher or went
silent; the message then names the topic ("depth: no publisher", "pose: silent ...").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from spatial_mllm_ros.core.counters import IngestCounters
from spatial_mllm_ros.core.ingest import StreamHealth
from spatial_mllm_ros.ros.conversions import key_values, ns_to_time

__all__ = [
    "ANSWER_STATUS_NAME",
    "INGEST_STATUS_NAME",
    "VISION_STATUS_NAME",
    "RateTracker",
    "answer_status",
    "build_diagnostics",
    "vision_status",
]

INGEST_STATUS_NAME = "spatial_mllm: ingest"
ANSWER_STATUS_NAME = "spatial_mllm: answering"


class RateTracker:
    """Per-key rate of monotonically increasing counters between two updates."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._last_ns: int | None = None

    def update(self, counts: Mapping[str, int], now_ns: int) -> dict[str, float]:
        """Rates (1/s) of ``counts`` since the previous call; 0.0 on the first call."""
        dt = None if self._last_ns is None else (now_ns - self._last_ns) / 1e9
        rates = {
            k: (v - self._last.get(k, 0)) / dt if dt and dt > 0 else 0.0
            for k, v in counts.items()
        }
        self._last = dict(counts)
        self._last_ns = now_ns
        return rates


def build_diagnostics(
    counters: IngestCounters | None,
    rates: Mapping[str, float],
    *,
    stamp_ns: int,
    hardware_id: str,
    state: str,
    extra: Mapping[str, object] | None = None,
    rejected_last_period: int = 0,
    streams: Sequence[StreamHealth] = (),
) -> DiagnosticArray:
    """The DiagnosticArray for one publication (``counters``: None before the ingestion
    exists; ``streams``: the configured topics' health, while the node is active)."""
    values: dict[str, object] = dict(counters.flat()) if counters is not None else {}
    frames = counters.buffer.frames if counters is not None else 0
    rejected = counters.rejected() if counters is not None else 0
    for topic, hz in rates.items():
        values[f"rate.{topic}_hz"] = f"{hz:.2f}"
    values["state"] = state
    values.update(extra or {})
    for health in streams:
        values[f"stream.{health.kind}.publishers"] = health.publishers
        values[f"stream.{health.kind}.state"] = health.state
        values[f"stream.{health.kind}.silent_s"] = f"{health.silent_s:.2f}"
    faults = [h.describe() for h in streams if h.state != "ok"]
    colour_hz = rates.get("colour", 0.0) + rates.get("colour_compressed", 0.0)
    level = DiagnosticStatus.WARN if rejected_last_period or faults else DiagnosticStatus.OK
    message = (
        f"{state}; colour {colour_hz:.1f} Hz; {frames} frames "
        f"buffered; {rejected} rejected ({rejected_last_period} in last period)"
        + "".join(f"; {fault}" for fault in faults)
    )
    status = DiagnosticStatus(
        level=level, name=INGEST_STATUS_NAME, message=message, hardware_id=hardware_id,
        values=key_values(values),
    )
    arr = DiagnosticArray(status=[status])
    arr.header.stamp = ns_to_time(stamp_ns)
    return arr


def answer_status(values: Mapping[str, object], *, hardware_id: str) -> DiagnosticStatus:
    """The answering status: answers by status, queue, model state, per-stage timings.

    Level ERROR while the model is not loaded, or its process is restarting or has failed
    (``model.state``): every question then gets MODEL_ERROR.
    """
    loaded = bool(values.get("model.loaded"))
    state = str(values.get("model.state", "ready"))  # the model process's supervisor
    up = loaded and state == "ready"
    answered = sum(int(str(v)) for k, v in values.items() if k.startswith("answers."))
    model = "loaded" if up else ("NOT loaded" if not loaded else f"{state.upper()}")
    message = (
        f"model {model}; {answered} answered; {values.get('queue.waiting', 0)} waiting"
        + (f"; {values.get('model.restarts')} restarts" if values.get("model.restarts") else "")
        + (f"; last error: {values.get('model.last_error')}" if not up and
           values.get("model.last_error") else "")
    )
    return DiagnosticStatus(
        level=DiagnosticStatus.OK if up else DiagnosticStatus.ERROR,
        name=ANSWER_STATUS_NAME, message=message, hardware_id=hardware_id,
        values=key_values(dict(values)),
    )


VISION_STATUS_NAME = "spatial_mllm: vision"


def vision_status(status: Any, *, hardware_id: str) -> DiagnosticStatus:
    """The vision encoders' backend (``model.vision_backend``): what runs per input size, the
    parity against torch; WARN when the requested backend is not what runs (a fallback past
    the parity tolerance, a failed build, a missing package)."""
    level = DiagnosticStatus.WARN if status.level == "warn" else DiagnosticStatus.OK
    return DiagnosticStatus(level=level, name=VISION_STATUS_NAME, message=status.message,
                            hardware_id=hardware_id, values=key_values(status.to_values()))
