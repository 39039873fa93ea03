"""When each message of a synthetic RGB-D stream is published, and with which stamp.  No rclpy.

A real camera rig does not deliver one colour image, depth image, camera info and pose per
frame, all with one stamp at one instant.  :class:`SensorSchedule` turns the stamps of the
colour frames into the events a real rig would produce:

* ``colour``: each frame, published at its stamp;
* ``depth``: stamped like its colour frame, published ``depth_lag_ms`` + U(0, depth_jitter_ms)
  later;
* ``pose`` (PoseStamped / Odometry from a localisation stack): with ``pose_rate_hz`` > 0, at
  its own rate on its own clock -- stamps ``phase + j / pose_rate_hz`` with a seeded phase in
  [0, 1 / rate), from one pose period before the first colour frame until the first stamp at
  or after the last one, so that every colour stamp lies between two pose stamps.  With rate 0,
  one pose per colour frame with the frame's stamp (the old behaviour).  Either way published
  ``pose_delay_ms`` + U(0, pose_jitter_ms) after its stamp;
* ``camera_info``: with ``info_rate_hz`` > 0 at that rate on its own clock, stamps
  ``info_start_s + k / info_rate_hz``; with rate 0 with every colour frame (its stamp) from
  ``info_start_s`` on.  Published at its stamp;
* drops: each message of kind ``k`` is not published with probability ``drop_prob[k]``.

Like a real driver, a stream never reorders its own messages: a message whose jittered
publish time falls before its predecessor's is published right after it, so publication
follows stamp order within each stream and a delay stays within [delay, delay + jitter]
(with a jitter much larger than the stream's period, delays gather towards the upper bound:
a message often waits for a later-drawn predecessor).
Streams interleave freely (a pose can be published long after the images of its time).

Times are integer nanoseconds relative to the stream start (the publisher adds its clocks);
publish times can be up to one pose period negative (the first pose, before the first frame:
published at once).  Jitter and drops are drawn from a generator per stream seeded with
``(seed, stream)``, so a schedule is reproducible and changing one stream's settings does not
change another's draws.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from spatial_mllm_ros.synthetic.errors import SensorTimingError

__all__ = ["SENSOR_KINDS", "SensorEvent", "SensorKind", "SensorSchedule", "SensorTiming"]

SensorKind = Literal["colour", "depth", "camera_info", "pose"]
#: the streams of a schedule (``colour`` covers raw and compressed images)
SENSOR_KINDS: tuple[SensorKind, ...] = ("colour", "depth", "camera_info", "pose")

_MS = 1_000_000
_S = 1_000_000_000


@dataclass(frozen=True)
class SensorTiming:
    """How the streams are timed (see the module docstring); the defaults publish every message
    of a frame at the frame's stamp, with the frame's stamp.

    Attributes:
        pose_rate_hz: pose messages per second on the pose clock; 0 = one per colour frame.
        pose_delay_ms: fixed delay from a pose's stamp to its publication.
        pose_jitter_ms: extra delay, uniform in [0, pose_jitter_ms].
        info_rate_hz: camera infos per second; 0 = one with every colour frame.
        info_start_s: no camera info is stamped before this time after the first frame.
        depth_lag_ms: delay from a colour frame's publication to its depth image's.
        depth_jitter_ms: extra depth delay, uniform in [0, depth_jitter_ms].
        drop_prob: kind -> probability in [0, 1] that a message of that kind is not sent.
        seed: seeds the pose clock's phase, the jitter and the drops.
    """

    pose_rate_hz: float = 0.0
    pose_delay_ms: float = 0.0
    pose_jitter_ms: float = 0.0
    info_rate_hz: float = 0.0
    info_start_s: float = 0.0
    depth_lag_ms: float = 0.0
    depth_jitter_ms: float = 0.0
    drop_prob: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("pose_rate_hz", "pose_delay_ms", "pose_jitter_ms", "info_rate_hz",
                     "info_start_s", "depth_lag_ms", "depth_jitter_ms"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise SensorTimingError(f"{name} must be finite and >= 0, got {value!r}")
        for kind, p in self.drop_prob.items():
            if kind not in SENSOR_KINDS:
                raise SensorTimingError(
                    f"unknown drop kind {kind!r}; one of {', '.join(SENSOR_KINDS)}")
            if not 0.0 <= p <= 1.0:
                raise SensorTimingError(f"drop probability of {kind} must be in [0, 1], got {p}")


@dataclass(frozen=True)
class SensorEvent:
    """One message to publish.

    Attributes:
        publish_ns: when to publish it (ns after the stream start).
        kind: its stream.
        stamp_ns: its header stamp (ns after the stream start).
        frame: index of the colour frame (in the order given to the schedule) its payload
            comes from -- for a pose, the last frame stamped at or before ``stamp_ns`` (0
            before the first frame, the last but one after the last).
        weight: poses only: the true pose at ``stamp_ns`` is the pose ``weight`` of the way
            from frame ``frame`` to frame ``frame + 1``
            (:func:`~spatial_mllm_ros.synthetic.trajectory.interpolate_pose`); 0 = frame
            ``frame``'s pose.  In [0, 1) between frames; below 0 before the first frame and
            above 1 after the last (the motion of the first / last interval continued).
    """

    publish_ns: int
    kind: SensorKind
    stamp_ns: int
    frame: int
    weight: float = 0.0


class _Clock:
    """Stamps ``start + round(j * 1e9 / rate)`` for j = 0, 1, ... (no accumulated rounding)."""

    def __init__(self, start_ns: int, rate_hz: float) -> None:
        self.start_ns = start_ns
        self.period_s = 1.0 / rate_hz
        self.j = 0

    @property
    def next_ns(self) -> int:
        return self.start_ns + round(self.j * self.period_s * _S)

    def pop(self) -> int:
        stamp = self.next_ns
        self.j += 1
        return stamp


@dataclass
class _Stream:
    """Per-stream state: its generator, drop probability and last publish time."""

    rng: np.random.Generator
    drop: float
    delay_ns: int
    jitter_ns: int
    last_publish_ns: int = -(2**62)


class SensorSchedule:
    """The events of a stream of colour frames under a :class:`SensorTiming`, in publish order.

    ``colour_ns``: the colour frames' stamps (ns after the stream start, strictly increasing;
    may be endless: events are produced lazily, at most the largest delay ahead of the frames
    consumed).  Iterate once.  While iterating, :attr:`scheduled` counts per kind the events
    produced so far (drops included) and :attr:`dropped` those dropped; the counts are final
    once the iteration has ended.

    Raises (while iterating):
        SensorTimingError: a colour stamp not after the previous one.
    """

    def __init__(self, colour_ns: Iterable[int], timing: SensorTiming) -> None:
        self.timing = timing
        self._colour = iter(colour_ns)
        self.scheduled: dict[str, int] = dict.fromkeys(SENSOR_KINDS, 0)
        self.dropped: dict[str, int] = dict.fromkeys(SENSOR_KINDS, 0)
        t = timing
        delays = {"colour": (0.0, 0.0), "depth": (t.depth_lag_ms, t.depth_jitter_ms),
                  "camera_info": (0.0, 0.0), "pose": (t.pose_delay_ms, t.pose_jitter_ms)}
        self._streams = {
            k: _Stream(np.random.default_rng([t.seed, i]), float(t.drop_prob.get(k, 0.0)),
                       round(delays[k][0] * _MS), round(delays[k][1] * _MS))
            for i, k in enumerate(SENSOR_KINDS)
        }
        phase_rng = np.random.default_rng([t.seed, len(SENSOR_KINDS)])
        self._pose_clock: _Clock | None = None
        if t.pose_rate_hz > 0:
            period_ns = round(_S / t.pose_rate_hz)
            phase_ns = int(phase_rng.integers(0, period_ns))
            self._pose_clock = _Clock(phase_ns - period_ns, t.pose_rate_hz)
        self._info_clock = (_Clock(round(t.info_start_s * _S), t.info_rate_hz)
                            if t.info_rate_hz > 0 else None)
        self._heap: list[tuple[int, int, SensorEvent]] = []
        self._seq = itertools.count()
        self._early: list[int] = []

    def _push(self, kind: SensorKind, stamp_ns: int, frame: int, weight: float = 0.0) -> None:
        st = self._streams[kind]
        jitter, draw = st.rng.random(2)  # always two draws: reproducible whatever the settings
        self.scheduled[kind] += 1
        if draw < st.drop:
            self.dropped[kind] += 1
            return
        publish = max(stamp_ns + st.delay_ns + round(jitter * st.jitter_ns), st.last_publish_ns)
        st.last_publish_ns = publish
        heapq.heappush(self._heap, (publish, next(self._seq),
                                    SensorEvent(publish, kind, stamp_ns, frame, weight)))

    def _infos(self, upto_ns: int, k: int) -> None:
        """Camera infos stamped at or before ``upto_ns``, the stamp of colour frame ``k``:
        the intrinsics of the last frame at or before each."""
        clock = self._info_clock
        while clock is not None and clock.next_ns <= upto_ns:
            stamp = clock.pop()
            self._push("camera_info", stamp, k if stamp == upto_ns else max(k - 1, 0))

    def _poses(self, upto_ns: int, k: int, prev_ns: int | None) -> None:
        """Poses stamped at or before ``upto_ns``, the stamp of colour frame ``k`` (``prev_ns``:
        frame k-1's stamp; None for the first frame, whose earlier poses wait in ``_early``
        for the second frame's stamp)."""
        clock = self._pose_clock
        while clock is not None and clock.next_ns <= upto_ns:
            stamp = clock.pop()
            if stamp == upto_ns:
                self._push("pose", stamp, k)
            elif prev_ns is None:
                self._early.append(stamp)
            else:
                self._push("pose", stamp, k - 1, (stamp - prev_ns) / (upto_ns - prev_ns))

    def _push_early(self, first_ns: int, second_ns: int | None) -> None:
        """The poses before the first frame: its motion towards the second continued backwards
        (held when there is no second frame)."""
        for stamp in self._early:
            weight = 0.0 if second_ns is None else (stamp - first_ns) / (second_ns - first_ns)
            self._push("pose", stamp, 0, weight)
        self._early.clear()

    def __iter__(self) -> Iterator[SensorEvent]:
        t = self.timing
        info_start_ns = round(t.info_start_s * _S)
        prev: int | None = None
        before: int | None = None  # the stamp before ``prev``
        k = -1
        for stamp in self._colour:
            if prev is not None and stamp <= prev:
                raise SensorTimingError(f"colour stamps must increase: {stamp} after {prev}")
            k += 1
            if prev is not None and self._early:
                self._push_early(prev, stamp)
            self._poses(stamp, k, prev)
            self._infos(stamp, k)
            self._push("colour", stamp, k)
            self._push("depth", stamp, k)
            if self._info_clock is None and stamp >= info_start_ns:
                self._push("camera_info", stamp, k)
            if self._pose_clock is None:
                self._push("pose", stamp, k)
            before, prev = prev, stamp
            if self._early:
                continue  # the early poses are published before anything pushed so far
            # every later event has a stamp after ``stamp`` and is published no earlier
            while self._heap and self._heap[0][0] <= stamp:
                yield heapq.heappop(self._heap)[2]
        if self._pose_clock is not None and prev is not None:
            self._push_early(prev, None)
            last = self._pose_clock.pop()  # after the last frame: it is bracketed
            if before is None:
                self._push("pose", last, k)
            else:  # the last frame's motion continued
                self._push("pose", last, k - 1, (last - before) / (prev - before))
        while self._heap:
            yield heapq.heappop(self._heap)[2]
