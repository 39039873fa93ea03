"""The ingest counters as typed records, and their one flattening to diagnostics keys.
Never imports rclpy.

:class:`IngestCounters` is what :meth:`~spatial_mllm_ros.core.ingest.Ingestor.counts` returns
(one camera) and :meth:`~spatial_mllm_ros.core.multi_ingest.MultiIngestor.counts` (the sum of
several, with each camera's own): code reads its fields. :meth:`IngestCounters.flat` is the one
place that spells the keys ``/diagnostics`` and the evaluator's summary publish (listed in
:mod:`spatial_mllm_ros.core.ingest`); :func:`admissions` reads the admission keys back from
published values.

A key is published once its counter has counted something, as the flat counters always were:
``in.<kind>.received`` once a message came, ``.accepted`` / ``.rejected.<reason>`` once one
was; the ``frames.with_*`` family once a frame was emitted; ``buffer.evicted`` once the store
decided on a frame; ``clock.*`` once the time base was reset; ``poses.*`` and
``camera_info.*`` where the ingestor has a pose history or a camera info latch.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "ADMIT_PREFIX",
    "BufferCounts",
    "ClockCounts",
    "ColourPairing",
    "FrameCounts",
    "IngestCounters",
    "LatchCounts",
    "PairingCounts",
    "PartnerPairing",
    "PoseCounts",
    "TopicCounts",
    "admissions",
]

#: prefix of the store's decisions in the flat keys (``buffer.admit.<reason>``)
ADMIT_PREFIX = "buffer.admit."

V = TypeVar("V")


def _counter() -> collections.Counter[str]:
    return collections.Counter()


@dataclass
class TopicCounts:
    """One input topic kind's messages: ``received == accepted + sum(rejected)``.

    Attributes:
        received: messages received.
        accepted: messages that passed conversion and the clock checks.
        rejected: reason (a ``RejectReason`` value or ``internal_error``) -> messages.
    """

    received: int = 0
    accepted: int = 0
    rejected: collections.Counter[str] = field(default_factory=_counter)

    def flat(self, kind: str) -> dict[str, int]:
        out = {f"in.{kind}.received": self.received} if self.received else {}
        if self.accepted:
            out[f"in.{kind}.accepted"] = self.accepted
        out |= {f"in.{kind}.rejected.{r}": n for r, n in self.rejected.items()}
        return out


@dataclass
class ColourPairing:
    """The synchroniser's colour queue: ``pushed == emitted + dropped + pending``."""

    pushed: int = 0
    emitted: int = 0
    dropped: int = 0
    pending: int = 0


@dataclass
class PartnerPairing:
    """One partner stream's queue: ``pushed == paired + unused + pending`` (not ``latest``)."""

    pushed: int = 0
    paired: int = 0
    unused: int = 0
    pending: int = 0


@dataclass
class PairingCounts:
    """The synchroniser's counters (see :mod:`spatial_mllm_ros.core.pairing`).

    Attributes:
        colour: the colour queue.
        partners: partner stream name -> its queue.
    """

    colour: ColourPairing = field(default_factory=ColourPairing)
    partners: dict[str, PartnerPairing] = field(default_factory=dict)

    def flat(self) -> dict[str, int]:
        """``colour.{pushed,emitted,dropped,pending}``, ``<stream>.{pushed,paired,...}``."""
        out = {f"colour.{k}": v for k, v in dataclasses.asdict(self.colour).items()}
        for name, q in self.partners.items():
            out |= {f"{name}.{k}": v for k, v in dataclasses.asdict(q).items()}
        return out


@dataclass
class FrameCounts:
    """The emitted frames and what they lacked.

    Attributes:
        emitted, with_depth, with_pose, with_intrinsics: frames emitted, and with each
            partner.
        complete: with depth, intrinsics and pose; colour_only: with neither depth nor pose.
        depth_size_mismatch, intrinsics_size_mismatch: partners left out for their size.
        pose_lookup_error: pose lookups (tf) that raised.
        missing: partner -> reason (``core.partners.MISSING_REASONS``) -> frames lacking it.
    """

    emitted: int = 0
    with_depth: int = 0
    with_pose: int = 0
    with_intrinsics: int = 0
    complete: int = 0
    colour_only: int = 0
    depth_size_mismatch: int = 0
    intrinsics_size_mismatch: int = 0
    pose_lookup_error: int = 0
    missing: dict[str, collections.Counter[str]] = field(default_factory=dict)

    def flat(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.emitted:
            out |= {f"frames.{k}": getattr(self, k) for k in (
                "emitted", "with_depth", "with_pose", "with_intrinsics", "complete",
                "colour_only")}
        for k in ("depth_size_mismatch", "intrinsics_size_mismatch", "pose_lookup_error"):
            if getattr(self, k):
                out[f"frames.{k}"] = getattr(self, k)
        for partner, reasons in self.missing.items():
            out |= {f"frames.missing.{partner}.{r}": n for r, n in reasons.items()}
        return out


@dataclass
class ClockCounts:
    """New time bases (``time_resets``), ``jumps_forward`` of them forward."""

    time_resets: int = 0
    jumps_forward: int = 0


@dataclass
class PoseCounts:
    """The pose history: poses ``held`` now, ``inserted`` and ``evicted`` so far."""

    held: int = 0
    inserted: int = 0
    evicted: int = 0


@dataclass
class LatchCounts:
    """The camera info latch: cameras ``latched``, intrinsics ``changes`` seen."""

    latched: int = 0
    changes: int = 0


@dataclass
class BufferCounts:
    """The store and its decision per frame: ``frames.emitted == sum(admitted) + queued``.

    Attributes:
        frames, bytes: held by the store now.
        evicted: frames the store evicted.
        queued: emitted frames not yet given to the store.
        admitted: the store's decision (an ``AdmitReason`` value, ...) -> frames.
    """

    frames: int = 0
    bytes: int = 0
    evicted: int = 0
    queued: int = 0
    admitted: collections.Counter[str] = field(default_factory=_counter)

    def flat(self) -> dict[str, int]:
        out = {f"{ADMIT_PREFIX}{r}": n for r, n in self.admitted.items()}
        if self.admitted:
            out["buffer.evicted"] = self.evicted
        return out | {"buffer.frames": self.frames, "buffer.bytes": self.bytes,
                      "buffer.queued": self.queued}


@dataclass
class IngestCounters:
    """An ingestor's counters (several cameras: their sum, and each camera's own).

    Attributes:
        topics: topic kind -> its messages (the kinds that received any).
        pairing: the synchroniser's queues.
        frames: the emitted frames.
        clock: the new time bases.
        buffer: the store.
        poses: the pose history (None: no pose topic).
        camera_info: the camera info latch (None: no latch).
        cameras: several cameras: camera name -> its own counters (empty for one).
    """

    topics: dict[str, TopicCounts] = field(default_factory=dict)
    pairing: PairingCounts = field(default_factory=PairingCounts)
    frames: FrameCounts = field(default_factory=FrameCounts)
    clock: ClockCounts = field(default_factory=ClockCounts)
    buffer: BufferCounts = field(default_factory=BufferCounts)
    poses: PoseCounts | None = None
    camera_info: LatchCounts | None = None
    cameras: dict[str, IngestCounters] = field(default_factory=dict)

    def received(self) -> dict[str, int]:
        """Topic kind -> messages received (the kinds that received any)."""
        return {k: t.received for k, t in self.topics.items() if t.received}

    def rejected(self) -> int:
        """Messages rejected, all kinds and reasons."""
        return sum(sum(t.rejected.values()) for t in self.topics.values())

    def flat(self) -> dict[str, int]:
        """The diagnostics keys and values (see the module), sorted by key; each camera's
        ``in.*``, ``pair.*`` and ``frames.*`` also as ``camera.<name>.<key>``."""
        out: dict[str, int] = {}
        for kind, topic in self.topics.items():
            out |= topic.flat(kind)
        out |= {f"pair.{k}": v for k, v in self.pairing.flat().items()}
        out |= self.frames.flat() | self.buffer.flat()
        if self.clock.time_resets:
            out |= {f"clock.{k}": v for k, v in dataclasses.asdict(self.clock).items()}
        if self.poses is not None:
            out |= {f"poses.{k}": v for k, v in dataclasses.asdict(self.poses).items()}
        if self.camera_info is not None:
            out |= {f"camera_info.{k}": v
                    for k, v in dataclasses.asdict(self.camera_info).items()}
        for cam, own in self.cameras.items():
            out |= {f"camera.{cam}.{k}": v for k, v in own.flat().items()
                    if k.startswith(("frames.", "in.", "pair."))}
        return dict(sorted(out.items()))

    @classmethod
    def total(cls, cameras: Mapping[str, IngestCounters]) -> IngestCounters:
        """Several cameras' counters added up, keeping each camera's own; the store is
        shared, so its ``frames`` and ``bytes`` are taken once, not added."""
        per = list(cameras.values())
        out = _added(per)
        out.cameras = dict(cameras)
        out.buffer.frames, out.buffer.bytes = per[-1].buffer.frames, per[-1].buffer.bytes
        return out


def _added(records: Iterable[IngestCounters]) -> IngestCounters:
    total = IngestCounters()
    for r in records:
        total = _add(total, dataclasses.replace(r, cameras={}))
    return total


def _add(a: Any, b: Any) -> Any:
    """``a + b`` field by field: numbers added, counters and dicts merged by key, a None
    record taken as absent."""
    if a is None or b is None:
        return b if a is None else a
    if isinstance(a, collections.Counter):
        merged = collections.Counter(a)
        merged.update(b)
        return merged
    if isinstance(a, dict):
        return {k: _add(a.get(k), b.get(k)) for k in {**a, **b}}
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a)(**{f.name: _add(getattr(a, f.name), getattr(b, f.name))
                          for f in dataclasses.fields(a)})
    return a + b


def admissions(values: Mapping[str, V]) -> dict[str, V]:
    """The store's decisions (reason -> count) in published flat values (``/diagnostics``
    key-values, a summary's counters)."""
    return {k.removeprefix(ADMIT_PREFIX): v for k, v in values.items()
            if k.startswith(ADMIT_PREFIX)}
