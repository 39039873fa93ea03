"""Ingestion pipeline: convert -> clock checks -> pair -> assemble a Frame -> store.  No rclpy.

:meth:`Ingestor.ingest` is what the node's camera callbacks call (with the topic kind) and what
the offline bag evaluator feeds in bag order; both share conversion (``core.convert``), the
clock rules (``core.clock``), pairing (``core.pairing``), the partners kept outside it
(``core.partners``: poses as a time series, camera info latched per camera) and the counters
that diagnostics publish.  Thread-safe: conversion runs unlocked (callbacks of different
streams overlap); clock checks, pairing, assembly and counting run under one lock.

A colour image waits (bounded) until its depth has arrived, the pose history covers its stamp
and its camera's first camera info has come; then it gets the depth nearest its stamp, the pose
interpolated at its stamp and the latched intrinsics, and goes to the store. What a frame still
lacks is counted with the reason.

Counters (:meth:`Ingestor.counts`, an :class:`~spatial_mllm_ros.core.counters.IngestCounters`;
the keys of its one flattening, ``counts().flat()`` = :meth:`Ingestor.counters`, are):
    ``in.<topic>.received`` / ``.accepted`` / ``.rejected.<reason>``
        per input topic kind (colour, colour_compressed, depth, camera_info, pose, odometry);
        ``received == accepted + sum(rejected.*)`` always.
    ``pair.<stream>.*``
        the synchroniser's counters (see ``core.pairing``): ``colour`` (colour and
        colour_compressed), ``depth``, and ``camera_info`` in ``nearest`` mode.
    ``poses.held`` / ``poses.inserted`` / ``poses.evicted``; ``camera_info.latched`` /
    ``.changes``
        the pose history and the camera info latch.
    ``frames.emitted`` / ``.with_depth`` / ``.with_pose`` / ``.with_intrinsics`` /
    ``.complete`` (depth + intrinsics + pose) / ``.colour_only`` (neither depth nor pose)
    ``frames.missing.<partner>.<reason>``
        why an emitted frame lacks ``depth``, ``pose`` or ``camera_info``
        (:data:`~spatial_mllm_ros.core.partners.MISSING_REASONS`); for each partner,
        ``frames.emitted == frames.with_<partner> + sum(frames.missing.<partner>.*)``.
    ``clock.time_resets``
        new time bases (a stamp went back more than ``clock.jump_back_s``, or jumped more than
        ``clock.jump_forward_s`` past every stream, see ``core.clock``); ``clock.jumps_forward``
        of them forward.
    ``buffer.frames`` / ``buffer.bytes`` / ``buffer.evicted`` / ``buffer.admit.<reason>``
        the store and its decision per frame (``new_coverage``, ``interval``, ...);
        ``buffer.queued``: emitted frames not yet given to the store (they go to it in emission
        order, outside the ingestor's lock), so ``frames.emitted == sum(buffer.admit.*) +
        buffer.queued`` always.

Streams (:meth:`Ingestor.stream_health`): the node passes the publisher count of each
configured topic as a fact (no rclpy here); each stream is ``ok``, ``silent`` (no message
for the given time) or ``no_publisher``. A frame that lacks a partner whose topic has no
publisher counts ``frames.missing.<partner>.no_publisher``, not ``late``.

Accounting identity for colour frames (exact at any time)::

    in.colour.accepted + in.colour_compressed.accepted
        == frames.emitted + pair.colour.dropped + pair.colour.pending
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros import params as P
from spatial_mllm_ros.core.buffer import FrameStore
from spatial_mllm_ros.core.clock import ClockConfig, StampGuard, TimeBase, TimeJump, check_future
from spatial_mllm_ros.core.convert import DEFAULT_LIMITS, ConvertLimits, stamp_to_ns
from spatial_mllm_ros.core.counters import (
    BufferCounts,
    ClockCounts,
    FrameCounts,
    IngestCounters,
    LatchCounts,
    PoseCounts,
    TopicCounts,
)
from spatial_mllm_ros.core.errors import FrameRejected
from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame
from spatial_mllm_ros.core.pairing import Gate, PairedFrame, PairingConfig, Synchroniser
from spatial_mllm_ros.core.partners import (
    CameraInfoLatch,
    InfoGate,
    PoseConfig,
    PoseGate,
)
from spatial_mllm_ros.core.topic_kinds import BY_KIND, Stream, kinds_of

__all__ = [
    "IngestConfig",
    "IngestResult",
    "Ingestor",
    "PoseLookup",
    "StreamHealth",
]

StreamState = Literal["ok", "silent", "no_publisher"]


@dataclass(frozen=True)
class StreamHealth:
    """One configured input topic, as ``/diagnostics`` reports it.

    Attributes:
        kind: the topic kind (``colour``, ``depth``, ``pose``, ...).
        publishers: publishers of its topic (a fact the node passes in).
        silent_s: seconds since its last message (since watching began, if none came).
        received: messages received so far.
        state: ``no_publisher``, ``silent`` (nothing for the silence limit; not for camera
            info) or ``ok``.
    """

    kind: str
    publishers: int
    silent_s: float
    received: int
    state: StreamState

    def describe(self) -> str:
        """One phrase for the status message, e.g. ``depth: no publisher``."""
        if self.state == "no_publisher":
            return f"{self.kind}: no publisher"
        if self.state == "silent":
            what = "nothing received" if not self.received else "no message"
            return f"{self.kind}: silent ({what} for {self.silent_s:.1f} s)"
        return f"{self.kind}: ok"


#: Unexpected conversion errors (a message missing a field, ...) are counted under this key.
INTERNAL_ERROR = "internal_error"

#: (frame_id, stamp_ns) -> (4x4 camera-to-world, world frame id) or None; e.g. a tf lookup.
PoseLookup = Callable[[str, int], tuple[npt.NDArray[np.float64], str] | None]


@dataclass(frozen=True)
class IngestConfig:
    """Conversion limits, pairing, poses, camera info and clock rules.

    Attributes:
        limits: conversion limits.
        pairing: the synchroniser: ``wait_ns`` also bounds the wait for the pose history;
            its partners are ``depth`` (consume) and, in ``nearest`` mode only,
            ``camera_info`` (reuse).
        poses: the pose history of the pose/odometry topics; None = no pose topic (poses
            from a :data:`PoseLookup` such as tf2, or none).
        info_wait_ns: camera info latched per camera, frames waiting at most this long for
            their camera's first one; None = no latch (no camera info topic, or ``nearest``).
        clock: the clock rules.
    """

    limits: ConvertLimits = DEFAULT_LIMITS
    pairing: PairingConfig = field(default_factory=PairingConfig)
    poses: PoseConfig | None = field(default_factory=PoseConfig)
    info_wait_ns: int | None = P.bound("pairing.info_wait_s", P.seconds_ns)
    clock: ClockConfig = field(default_factory=ClockConfig)

    def __post_init__(self) -> None:
        names = {p.name for p in self.pairing.partners}
        if "pose" in names:
            raise ValueError("poses are a time series (IngestConfig.poses), not a partner stream")
        if "camera_info" in names and self.info_wait_ns is not None:
            raise ValueError("camera info is either latched (info_wait_ns) or paired, not both")


@dataclass
class IngestResult:
    """Outcome of one message: the frames it completed and the rejection, if any."""

    frames: list[Frame]
    rejected: FrameRejected | None = None
    error: str | None = None


class Ingestor:
    """Turns camera messages into validated frames in a :class:`FrameStore`."""

    def __init__(
        self,
        store: FrameStore,
        config: IngestConfig | None = None,
        pose_lookup: PoseLookup | None = None,
    ) -> None:
        self.store = store
        self.config = config or IngestConfig()
        self.pose_lookup = pose_lookup
        self._lock = threading.Lock()
        # Frames go to the store in emission order, outside ``_lock``: the store's work (the
        # space-aware buffer's voxels) never holds up the callbacks of other streams.
        self._store_lock = threading.Lock()
        self._outbox: collections.deque[Frame | None] = collections.deque()  # None = clear
        wait_ns = self.config.pairing.wait_ns
        gates: list[Gate[Any]] = []
        self._poses = self.config.poses.history() if self.config.poses is not None else None
        if self._poses is not None:
            gates.append(PoseGate(self._poses, wait_ns))
        self._latch = CameraInfoLatch() if self.config.info_wait_ns is not None else None
        if self._latch is not None and self.config.info_wait_ns is not None:
            gates.append(InfoGate(self._latch, self.config.info_wait_ns))
        self._sync: Synchroniser[Any] = Synchroniser(self.config.pairing, gates)
        self._streams = {"colour"} | {p.name for p in self.config.pairing.partners}
        if self._poses is not None:
            self._streams.add("pose")
        if self._latch is not None:
            self._streams.add("camera_info")
        jump = self.config.clock.jump_back_ns
        self._guards = {s: StampGuard(s, jump, strict=s != "pose") for s in self._streams}
        self._time_base = TimeBase(self.config.clock.jump_forward_ns)
        self._last_arrival_ns: dict[str, int] = {}  # topic kind -> now_ns of its last message
        self._publishers: dict[str, int] = {}  # topic kind -> publishers (the node's fact)
        self._watch_since_ns: int | None = None
        self._topics: dict[str, TopicCounts] = {}  # topic kind -> its messages
        self._frames = FrameCounts()
        self._clock = ClockCounts()
        self._buffer = BufferCounts()
        self._events: list[str] = []
        self._seq = 0

    # ------------------------------------------------------------------ inputs
    def ingest(
        self, topic: str, msg: Any, now_ns: int, receive_ns: int | None = None
    ) -> IngestResult:
        """Convert and pair one message of topic kind ``topic`` (see ``core.topic_kinds``).

        Args:
            topic: the topic kind.
            msg: the message (rclpy or rosbags; duck-typed).
            now_ns: the clock of the pairing waits (the node: monotonic; a bag: receive time).
            receive_ns: ROS time the message was received (the node's clock, sim time under
                ``use_sim_time``; a bag's log time), for the future-stamp check; None = no
                check (e.g. sim time before the first ``/clock``).

        Never raises for a bad message: rejections and unexpected errors are counted and
        returned in the result.
        """
        kind = BY_KIND[topic]
        stream = kind.stream
        if stream not in self._streams:
            raise KeyError(f"topic kind {topic!r}: stream {stream.value!r} is not configured")
        with self._lock:
            counts = self._received(topic, now_ns)
        try:
            stamp = stamp_to_ns(msg.header)
            check_future(stamp, receive_ns, self.config.clock)
            value = kind.convert(msg, self.config.limits)
        except FrameRejected as err:
            with self._lock:
                counts.rejected[err.reason.value] += 1
            return IngestResult([], rejected=err)
        except Exception as err:  # a malformed object must not kill the caller
            with self._lock:
                counts.rejected[INTERNAL_ERROR] += 1
            return IngestResult([], error=f"{type(err).__name__}: {err}")
        with self._lock:
            frames: list[Frame] = []
            try:
                self._time_base.check(stream, stamp)
                self._guards[stream].check(stamp)
            except FrameRejected as err:
                counts.rejected[err.reason.value] += 1
                return IngestResult([], rejected=err)
            except TimeJump as jump:
                frames = self._new_time_base(jump)
                self._guards[stream].check(stamp)
            self._time_base.accept(stamp)
            counts.accepted += 1
            if stream is Stream.COLOUR:
                paired = self._sync.push_colour(stamp, value, now_ns)
            elif stream is Stream.POSE and self._poses is not None:
                pose, world = value
                self._poses.insert(stamp, pose, world)
                paired = self._sync.poll(now_ns)
            elif stream is Stream.CAMERA_INFO and self._latch is not None:
                intrinsics, frame_id = value
                self._latch.update(frame_id, intrinsics)
                paired = self._sync.poll(now_ns)
            else:
                paired = self._sync.push(stream, stamp, value, now_ns)
            frames += self._emit(paired)
        self._drain()
        return IngestResult(frames)

    def reject(self, topic: str, rejection: FrameRejected, now_ns: int) -> IngestResult:
        """Count a message of topic kind ``topic`` that was refused before it was converted
        (the ROS edge read an oversized image's size from its serialized bytes and never
        deserialised it): received and rejected, as :meth:`ingest` counts a rejection."""
        with self._lock:
            self._received(topic, now_ns).rejected[rejection.reason.value] += 1
        return IngestResult([], rejected=rejection)

    def _received(self, topic: str, now_ns: int) -> TopicCounts:
        """Count a message of topic kind ``topic`` received at ``now_ns`` (lock held); its
        counts."""
        counts = self._topics.setdefault(topic, TopicCounts())
        counts.received += 1
        self._last_arrival_ns[topic] = now_ns
        return counts

    def poll(self, now_ns: int) -> list[Frame]:
        """Emit the colour frames whose wait for partners has expired at ``now_ns``."""
        with self._lock:
            frames = self._emit(self._sync.poll(now_ns))
        self._drain()
        return frames

    def flush(self) -> list[Frame]:
        """Emit every waiting colour frame now (end of a bag, deactivation)."""
        with self._lock:
            frames = self._emit(self._sync.flush())
        self._drain()
        return frames

    def next_deadline(self) -> int | None:
        """When the oldest waiting colour frame times out (``now_ns`` units), or None."""
        with self._lock:
            return self._sync.oldest_wait_deadline()

    def take_events(self) -> list[str]:
        """Clock events since the last call (one line per new time base), to be logged once."""
        with self._lock:
            events, self._events = self._events, []
        return events

    def _new_time_base(self, jump: TimeJump) -> list[Frame]:
        """Start over after ``jump`` (lock held): frames waiting are emitted with what they
        have, the pose history and every stream's last stamp are forgotten, and the store is
        cleared or kept by ``clock.on_time_reset``. The latched camera info stays (it does not
        depend on time)."""
        frames = self._emit(self._sync.flush())
        if self._poses is not None:
            self._poses.clear()
        for guard in self._guards.values():
            guard.reset()
        self._time_base.reset()
        action = self.config.clock.on_time_reset
        if action == "clear":
            self._outbox.append(None)  # in order: after the flushed frames are stored
        self._clock.time_resets += 1
        self._clock.jumps_forward += jump.forward
        self._events.append(
            f"{jump}; buffered frames {'cleared' if action == 'clear' else 'kept'} "
            f"(clock.on_time_reset: {action})"
        )
        return frames

    # ---------------------------------------------------------------- assembly
    def _emit(self, paired: list[PairedFrame[Any]]) -> list[Frame]:
        """Assemble paired frames and queue them for the store (``_lock`` held)."""
        frames = [self._assemble(p) for p in paired]
        self._outbox.extend(frames)
        return frames

    def _drain(self) -> None:
        """Give queued frames to the store in emission order (``_lock`` not held). One caller
        drains at a time; one that finds another draining leaves its frames to it, and a
        drainer looks again after letting go, so no frame is left behind."""
        while True:
            if not self._store_lock.acquire(blocking=False):
                return
            try:
                while True:
                    with self._lock:
                        if not self._outbox:
                            break
                        item = self._outbox.popleft()
                    if item is None:
                        self.store.clear()
                        continue
                    outcome = self.store.add(item)
                    with self._lock:
                        self._buffer.evicted += outcome.evicted_count
                        self._buffer.admitted[outcome.reason] += 1
            finally:
                self._store_lock.release()
            with self._lock:
                if not self._outbox:
                    return

    def _missing(self, partner: str, reason: str) -> None:
        if reason in ("late", "no_pose") and self._unpublished(partner):
            reason = "no_publisher"
        missing = self._frames.missing.setdefault(partner, collections.Counter())
        missing[reason] += 1

    def _unpublished(self, partner: str) -> bool:
        """True when the node reported no publisher on any topic of ``partner`` (lock held)."""
        counts = [self._publishers[k] for k in kinds_of(partner) if k in self._publishers]
        return bool(counts) and sum(counts) == 0

    @staticmethod
    def _late_reason(p: PairedFrame[Any], partner: str) -> str:
        """``late``/``flushed`` when ``p`` left the queue with ``partner`` unresolved, else
        ``no_match`` (the partner was there, but nothing matched)."""
        if partner not in p.late:
            return "no_match"
        return "flushed" if p.flushed else "late"

    def _assemble(self, p: PairedFrame[Any]) -> Frame:
        rgb, frame_id = p.colour.value
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        c = self._frames

        depth: npt.NDArray[np.float32] | None = None
        if "depth" in self._streams:
            d = p.get("depth")
            if d is None:
                self._missing("depth", self._late_reason(p, "depth"))
            elif tuple(d.value.shape) == (height, width):
                depth = d.value
            else:
                c.depth_size_mismatch += 1
                self._missing("depth", "size_mismatch")

        intr: CameraIntrinsics | None = None
        if "camera_info" in self._streams:
            if self._latch is not None:
                found = self._latch.get(frame_id)
            else:
                i = p.get("camera_info")
                found = None if i is None else i.value[0]
            if found is None:
                self._missing("camera_info", self._late_reason(p, "camera_info"))
            elif (found.width, found.height) == (width, height):
                intr = found
            else:
                c.intrinsics_size_mismatch += 1
                self._missing("camera_info", "size_mismatch")

        pose, world = self._pose_at(p, frame_id)

        self._seq += 1
        frame = Frame(
            stamp_ns=p.colour.stamp_ns,
            frame_id=frame_id,
            rgb=rgb,
            depth_m=depth,
            intrinsics=intr,
            pose=pose,
            world_frame_id=world,
            seq=self._seq,
        )
        c.emitted += 1
        c.with_depth += depth is not None
        c.with_pose += pose is not None
        c.with_intrinsics += intr is not None
        c.complete += frame.has_geometry
        c.colour_only += depth is None and pose is None
        return frame

    def _pose_at(
        self, p: PairedFrame[Any], frame_id: str
    ) -> tuple[npt.NDArray[np.float64] | None, str]:
        """The frame's pose: interpolated from the pose history, else from the lookup (tf)."""
        if self._poses is not None:
            result = self._poses.lookup(p.colour.stamp_ns)
            if result.found:
                return result.pose, result.world_frame_id
            if self.pose_lookup is None:
                pending = result.status == "pending"
                self._missing("pose", self._late_reason(p, "pose") if pending else result.status)
                return None, ""
        if self.pose_lookup is None:
            return None, ""
        try:
            looked_up = self.pose_lookup(frame_id, p.colour.stamp_ns)
        except Exception:
            looked_up = None
            self._frames.pose_lookup_error += 1
        if looked_up is None:
            self._missing("pose", "tf_unavailable")
            return None, ""
        return looked_up

    # ----------------------------------------------------------------- streams
    def stream_health(
        self, publishers: dict[str, int], now_ns: int, silent_ns: int
    ) -> list[StreamHealth]:
        """The state of each configured topic, from facts the caller knows.

        Args:
            publishers: topic kind -> publishers of its topic (e.g. rclpy's
                ``count_publishers``), for every configured topic kind; remembered, so that
                frames lacking a partner without a publisher count ``no_publisher``.
            now_ns: the clock of ``ingest`` (the node: monotonic), nanoseconds.
            silent_ns: a topic (but camera info) with no message for this long is ``silent``.
        """
        with self._lock:
            self._publishers = dict(publishers)
            if self._watch_since_ns is None:
                self._watch_since_ns = now_ns
            since = self._watch_since_ns
            out: list[StreamHealth] = []
            for kind, count in sorted(publishers.items()):
                last = self._last_arrival_ns.get(kind)
                quiet_ns = now_ns - (last if last is not None else since)
                state: StreamState = "ok"
                if count == 0:
                    state = "no_publisher"
                elif BY_KIND[kind].continuous and quiet_ns >= silent_ns:
                    state = "silent"
                received = self._topics[kind].received if kind in self._topics else 0
                out.append(StreamHealth(kind, count, max(quiet_ns, 0) / 1e9, received, state))
        return out

    # -------------------------------------------------------------- accounting
    def counts(self) -> IngestCounters:
        """All counters (see the module docstring), a copy taken under the lock."""
        with self._lock:
            out = IngestCounters(
                topics={k: copy.deepcopy(t) for k, t in self._topics.items()},
                pairing=self._sync.counts(),
                frames=copy.deepcopy(self._frames),
                clock=dataclasses.replace(self._clock),
                buffer=dataclasses.replace(
                    self._buffer, admitted=collections.Counter(self._buffer.admitted),
                    queued=sum(item is not None for item in self._outbox)),
            )
            if self._poses is not None:
                out.poses = PoseCounts(len(self._poses), self._poses.inserted,
                                       self._poses.evicted)
            if self._latch is not None:
                out.camera_info = LatchCounts(len(self._latch), self._latch.changes)
        out.buffer.frames = len(self.store)
        out.buffer.bytes = int(self.store.nbytes)
        return out

    def counters(self) -> dict[str, int]:
        """:meth:`counts` flat: the diagnostics keys (see the module docstring); absent
        keys are 0."""
        return self.counts().flat()
