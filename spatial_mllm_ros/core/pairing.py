"""Timestamp synchroniser: pairs each colour image with its nearest partners.  No rclpy.

Streams: one *colour* stream (the frame clock) and partner streams, typically ``depth``,
``pose`` and ``camera_info``.  The synchroniser is deterministic: its only notion of time is
the ``now_ns`` the caller passes with every call (a monotonic clock in the node, the bag's
receive time in the offline evaluator, which feeds messages in bag order).

Rules
    * A colour message waits in a FIFO until it is *ready*: every waited partner stream is
      *resolved* for it (it holds a message stamped at or after the colour stamp, so under
      per-stream in-order arrival no nearer one can still come), or ``wait_ns`` has passed
      since the colour message arrived.  Colour frames are emitted in arrival order.
    * On emission each partner stream gives its nearest message within ``slop_ns`` of the
      colour stamp (ties go to the earlier message), or ``None``.  A frame with missing
      partners is still emitted (*colour-only*, or with whatever partners exist: depth
      without pose is kept because monocular geometry can place it later).
    * ``consume`` streams (depth) give each message to at most one colour frame; reusable
      streams (pose, nearest-mode camera info) may give one message to several frames.
    * ``latest`` streams are never waited for: a frame gets the most recent message received
      so far, whatever its stamp.
    * *Gates* are readiness conditions held outside the synchroniser (the pose history must
      cover the frame's stamp; the first camera info of the frame's camera must have come):
      a frame also waits until every gate is open for it, each gate with its own longest wait.
      A frame emitted while a partner or a gate was still unresolved (its wait expired) names
      them in ``PairedFrame.late``, so the caller can count why it lacks them.
    * Queues are bounded by ``queue_size``: the oldest colour message is dropped when the
      colour queue overflows (counted in ``colour_dropped``), the oldest partner message
      when a partner queue overflows.  Partner messages older than ``colour stamp - slop``
      are discarded once a colour frame past them is emitted.

Accounting (exact, at any time)::

    colour_pushed == colour_emitted + colour_dropped + colour_pending
    pushed[s]     == paired[s] + unused[s] + pending[s]     for each non-latest partner s

where ``paired`` counts messages given to at least one frame, ``unused`` messages discarded
without being given to any frame, and ``pending`` messages still queued and not yet given.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

from spatial_mllm_ros import params as P
from spatial_mllm_ros.core.counters import ColourPairing, PairingCounts, PartnerPairing

__all__ = ["Gate", "PairedFrame", "PairingConfig", "PartnerSpec", "Stamped", "Synchroniser"]

T = TypeVar("T")

PartnerMode = Literal["consume", "reuse", "latest"]


@dataclass
class Stamped(Generic[T]):
    """A message (any payload) with its header stamp and arrival time, in nanoseconds."""

    stamp_ns: int
    value: T
    arrival_ns: int = 0
    used: bool = False


@dataclass(frozen=True)
class PartnerSpec:
    """A partner stream: name, pairing mode, and whether colour frames wait for it."""

    name: str
    mode: PartnerMode = "reuse"
    wait: bool = True


@dataclass(frozen=True)
class PairingConfig:
    """Synchroniser settings (defaults: the parameter schema's ``pairing.*``).

    Attributes:
        slop_ns: largest |partner stamp - colour stamp| accepted, nanoseconds.
        wait_ns: longest a colour message waits for its partners, nanoseconds.
        queue_size: bound of every queue (messages).
        partners: the partner streams.
    """

    slop_ns: int = P.bound("pairing.slop_s", P.seconds_ns)
    wait_ns: int = P.bound("pairing.wait_s", P.seconds_ns)
    queue_size: int = P.bound("pairing.queue_size")
    partners: tuple[PartnerSpec, ...] = (PartnerSpec("depth", "consume"),)

    def __post_init__(self) -> None:
        if self.slop_ns < 0 or self.wait_ns < 0:
            raise ValueError("slop_ns and wait_ns must be >= 0")
        if self.queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        names = [p.name for p in self.partners]
        if len(set(names)) != len(names) or "colour" in names:
            raise ValueError(f"partner names must be unique and not 'colour': {names}")


class Gate(Protocol[T]):
    """A readiness condition of colour frames kept outside the synchroniser.

    Attributes:
        name: the condition's name (in ``PairedFrame.late``).
        wait_ns: longest a frame waits for the gate to open, nanoseconds.
    """

    name: str
    wait_ns: int

    def ready(self, colour: Stamped[T]) -> bool:
        """True when ``colour`` need not wait for this condition any longer."""
        ...


@dataclass
class PairedFrame(Generic[T]):
    """A colour message with the partner messages paired to it (None when absent).

    ``fresh`` names the partner streams whose message is given to a frame for the first time;
    ``late`` the partner streams and gates still unresolved when the frame was emitted: its
    wait expired, or (``flushed``) the queue was flushed.
    """

    colour: Stamped[T]
    partners: dict[str, Stamped[T] | None]
    fresh: frozenset[str] = field(default_factory=frozenset)
    late: frozenset[str] = field(default_factory=frozenset)
    flushed: bool = False

    def get(self, name: str) -> Stamped[T] | None:
        return self.partners.get(name)


class _PartnerQueue(Generic[T]):
    """Messages of one partner stream sorted by stamp."""

    def __init__(self, spec: PartnerSpec) -> None:
        self.spec = spec
        self.items: list[Stamped[T]] = []
        self.stamps: list[int] = []
        self.latest: Stamped[T] | None = None
        self.pushed = 0
        self.paired = 0
        self.unused = 0

    def push(self, item: Stamped[T], queue_size: int) -> None:
        self.pushed += 1
        if self.spec.mode == "latest":
            if self.latest is not None and not self.latest.used:
                self.unused += 1
            self.latest = item
            return
        i = bisect.bisect_right(self.stamps, item.stamp_ns)
        self.stamps.insert(i, item.stamp_ns)
        self.items.insert(i, item)
        while len(self.items) > queue_size:
            self._pop(0)

    def _pop(self, i: int) -> None:
        item = self.items.pop(i)
        del self.stamps[i]
        if not item.used:
            self.unused += 1

    def resolved(self, stamp_ns: int) -> bool:
        return bool(self.stamps) and self.stamps[-1] >= stamp_ns

    def nearest(self, stamp_ns: int, slop_ns: int) -> Stamped[T] | None:
        if self.spec.mode == "latest":
            return self.latest
        lo = bisect.bisect_left(self.stamps, stamp_ns - slop_ns)
        hi = bisect.bisect_right(self.stamps, stamp_ns + slop_ns)
        best: Stamped[T] | None = None
        best_d = -1
        for k in range(lo, hi):
            item = self.items[k]
            if self.spec.mode == "consume" and item.used:
                continue
            d = abs(item.stamp_ns - stamp_ns)
            if best is None or d < best_d:
                best, best_d = item, d
        return best

    def prune_before(self, stamp_ns: int) -> None:
        """Discard messages stamped before ``stamp_ns`` (they can match no later frame)."""
        n = bisect.bisect_left(self.stamps, stamp_ns)
        for _ in range(n):
            self._pop(0)

    def clear(self) -> None:
        while self.items:
            self._pop(0)
        if self.latest is not None and not self.latest.used:
            self.unused += 1
            self.latest.used = True

    @property
    def pending(self) -> int:
        if self.spec.mode == "latest":
            return 0 if self.latest is None or self.latest.used else 1
        return sum(1 for it in self.items if not it.used)


class Synchroniser(Generic[T]):
    """Pairs colour messages with partner messages by stamp.  Not thread-safe: lock outside."""

    def __init__(
        self, config: PairingConfig | None = None, gates: Sequence[Gate[T]] = ()
    ) -> None:
        self.config = config or PairingConfig()
        self._gates = tuple(gates)
        self._colour: collections.deque[Stamped[T]] = collections.deque()
        self._partners: dict[str, _PartnerQueue[T]] = {
            p.name: _PartnerQueue(p) for p in self.config.partners
        }
        self.colour_pushed = 0
        self.colour_emitted = 0
        self.colour_dropped = 0

    # ------------------------------------------------------------------ input
    def push_colour(self, stamp_ns: int, value: T, now_ns: int) -> list[PairedFrame[T]]:
        """Queue a colour message; return the frames that became ready."""
        self.colour_pushed += 1
        self._colour.append(Stamped(stamp_ns, value, now_ns))
        while len(self._colour) > self.config.queue_size:
            self._colour.popleft()
            self.colour_dropped += 1
        return self.poll(now_ns)

    def push(self, stream: str, stamp_ns: int, value: T, now_ns: int) -> list[PairedFrame[T]]:
        """Queue a partner message of ``stream``; return the frames that became ready."""
        queue = self._partners.get(stream)
        if queue is None:
            raise KeyError(f"unknown partner stream {stream!r}")
        queue.push(Stamped(stamp_ns, value, now_ns), self.config.queue_size)
        return self.poll(now_ns)

    # ----------------------------------------------------------------- output
    def poll(self, now_ns: int) -> list[PairedFrame[T]]:
        """Emit every colour message at the queue head that is ready at ``now_ns``."""
        out: list[PairedFrame[T]] = []
        while self._colour:
            head = self._colour[0]
            waits = self._unresolved(head)
            if waits and now_ns - head.arrival_ns < max(waits.values()):
                break
            out.append(self._emit(self._colour.popleft(), frozenset(waits)))
        return out

    def flush(self) -> list[PairedFrame[T]]:
        """Emit every queued colour message with the partners present, then drop the rest."""
        out = []
        while self._colour:
            head = self._colour.popleft()
            out.append(self._emit(head, frozenset(self._unresolved(head)), flushed=True))
        for q in self._partners.values():
            q.clear()
        return out

    def _unresolved(self, head: Stamped[T]) -> dict[str, int]:
        """The waited partners and gates not yet resolved for ``head``, with their waits."""
        waits = {
            name: self.config.wait_ns
            for name, q in self._partners.items()
            if q.spec.wait and q.spec.mode != "latest" and not q.resolved(head.stamp_ns)
        }
        for gate in self._gates:
            if not gate.ready(head):
                waits[gate.name] = gate.wait_ns
        return waits

    def _emit(
        self, head: Stamped[T], late: frozenset[str], flushed: bool = False
    ) -> PairedFrame[T]:
        partners: dict[str, Stamped[T] | None] = {}
        fresh: set[str] = set()
        for name, q in self._partners.items():
            item = q.nearest(head.stamp_ns, self.config.slop_ns)
            partners[name] = item
            if item is not None:
                if not item.used:
                    fresh.add(name)
                    q.paired += 1
                item.used = True
            q.prune_before(head.stamp_ns - self.config.slop_ns)
        self.colour_emitted += 1
        return PairedFrame(head, partners, frozenset(fresh), late, flushed)

    # ------------------------------------------------------------- accounting
    @property
    def colour_pending(self) -> int:
        return len(self._colour)

    def counts(self) -> PairingCounts:
        """The colour queue's and each partner queue's counters."""
        return PairingCounts(
            ColourPairing(self.colour_pushed, self.colour_emitted, self.colour_dropped,
                          self.colour_pending),
            {name: PartnerPairing(q.pushed, q.paired, q.unused, q.pending)
             for name, q in self._partners.items()},
        )

    def counters(self) -> dict[str, int]:
        """:meth:`counts` flat: ``colour.{pushed,emitted,dropped,pending}``,
        ``<s>.{pushed,paired,unused,pending}``."""
        return self.counts().flat()

    def oldest_wait_deadline(self) -> int | None:
        """When a poll will emit the queue head (its arrival time + its longest unresolved
        wait), or None when the queue is empty."""
        if not self._colour:
            return None
        head = self._colour[0]
        waits = self._unresolved(head)
        return head.arrival_ns + (max(waits.values()) if waits else 0)
