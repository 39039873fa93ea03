"""Clock handling of incoming stamps, as ROS systems need it.  No rclpy.

* A stamp more than ``max_future_ns`` ahead of the time the message was received (the node's
  ROS clock, which follows ``/clock`` under ``use_sim_time``; a bag's receive time offline) is
  rejected (``stamp_future``): one frame stamped years ahead must not poison the stream.
* Header stamps with ``nanosec`` outside ``[0, 1e9)`` or a negative ``sec`` are rejected in
  conversion (``invalid_stamp``, :func:`spatial_mllm_ros.core.convert.stamp_to_ns`).
* Per stream, a stamp a little earlier than the previous accepted one is rejected
  (``stamp_backwards``: a reordered or stale message); one more than ``jump_back_ns`` earlier
  is a *new time base* -- sim time reset, a bag looping, a bag replayed after live data -- and
  :class:`StampGuard` reports it as a :class:`TimeJump` for the ingestor to start over
  (:class:`~spatial_mllm_ros.core.ingest.Ingestor`: counted, logged once, buffer kept or
  cleared by ``on_time_reset``).
* A stamp more than ``jump_forward_ns`` *later* than the newest stamp of every stream (the
  :class:`TimeBase`) is a new time base too: live data after a replayed bag from the past,
  a bag recorded later, sim time set ahead, or every stream silent that long. It is judged
  against all streams, so one stream that stops and resumes alone (a localisation outage)
  while the others go on is no jump.

Units: nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from spatial_mllm_ros import params as P
from spatial_mllm_ros.core.errors import FrameRejected, RejectReason

__all__ = ["ClockConfig", "StampGuard", "TimeBase", "TimeJump", "check_future"]

TimeResetAction = Literal["clear", "keep"]


@dataclass(frozen=True)
class ClockConfig:
    """Clock rules (defaults: the parameter schema's ``clock.*``).

    Attributes:
        max_future_ns: reject stamps more than this ahead of the receive time; 0 = no check.
        jump_back_ns: a stamp this much earlier than its stream's previous one starts a new
            time base.
        jump_forward_ns: a stamp this much later than the newest stamp of every stream starts
            a new time base; 0 = never.
        on_time_reset: ``clear`` the frame buffer at a new time base, or ``keep`` it.
    """

    max_future_ns: int = P.bound("clock.max_future_s", P.seconds_ns)
    jump_back_ns: int = P.bound("clock.jump_back_s", P.seconds_ns)
    jump_forward_ns: int = P.bound("clock.jump_forward_s", P.seconds_ns)
    on_time_reset: TimeResetAction = P.bound("clock.on_time_reset")

    def __post_init__(self) -> None:
        if self.max_future_ns < 0 or self.jump_back_ns <= 0 or self.jump_forward_ns < 0:
            raise ValueError("max_future_ns and jump_forward_ns must be >= 0, jump_back_ns > 0")
        if self.on_time_reset not in ("clear", "keep"):
            raise ValueError(f"on_time_reset must be 'clear' or 'keep', got {self.on_time_reset}")


class TimeJump(Exception):
    """A stream's stamp went back by more than ``jump_back_ns`` (from its own previous stamp),
    or forward by more than ``jump_forward_ns`` (from the newest stamp of every stream): a new
    time base.

    Attributes:
        stream: the stream whose message jumped.
        stamp_ns: its stamp.
        previous_ns: the stamp it jumped from.
        forward: True for a jump forward.
    """

    def __init__(self, stream: str, stamp_ns: int, previous_ns: int) -> None:
        self.forward = stamp_ns > previous_ns
        how = (f"jumped {(stamp_ns - previous_ns) / 1e9:.3f} s ahead of every stream"
               if self.forward else f"went back {(previous_ns - stamp_ns) / 1e9:.3f} s")
        super().__init__(
            f"{stream}: stamp {how} ({previous_ns} -> {stamp_ns} ns): new time base"
        )
        self.stream = stream
        self.stamp_ns = stamp_ns
        self.previous_ns = previous_ns


def check_future(stamp_ns: int, receive_ns: int | None, config: ClockConfig) -> None:
    """Raise ``stamp_future`` when ``stamp_ns`` is more than ``config.max_future_ns`` ahead of
    ``receive_ns`` (None: no receive time known, e.g. sim time before the first ``/clock``)."""
    if receive_ns is None or config.max_future_ns == 0:
        return
    ahead = stamp_ns - receive_ns
    if ahead > config.max_future_ns:
        raise FrameRejected(
            RejectReason.STAMP_FUTURE,
            f"stamp is {ahead / 1e9:.3f} s ahead of the receive time "
            f"(more than {config.max_future_ns / 1e9:.3f} s)",
        )


class StampGuard:
    """Per-stream order of stamps: a small step back is rejected, a large one is a new time
    base (:class:`TimeJump`). Equal stamps are accepted (a driver may republish). Not
    thread-safe (call it under the caller's lock).

    Args:
        stream: the stream's name (in messages).
        jump_back_ns: a step back larger than this raises :class:`TimeJump`; 0 = never (every
            step back is ``stamp_backwards``).
        strict: reject small steps back (image streams); ``False`` lets them through (pose
            messages are kept sorted by the pose history, late ones included).
    """

    def __init__(self, stream: str, jump_back_ns: int = 0, strict: bool = True) -> None:
        self.stream = stream
        self.jump_back_ns = jump_back_ns
        self.strict = strict
        self.last_ns: int | None = None

    def check(self, stamp_ns: int) -> None:
        """Record ``stamp_ns``, or raise ``stamp_backwards`` / :class:`TimeJump`."""
        last = self.last_ns
        if last is not None and stamp_ns < last:
            if self.jump_back_ns and last - stamp_ns > self.jump_back_ns:
                raise TimeJump(self.stream, stamp_ns, last)
            if self.strict:
                raise FrameRejected(
                    RejectReason.STAMP_BACKWARDS,
                    f"{self.stream}: stamp {stamp_ns} ns < previous {last} ns "
                    f"({(last - stamp_ns) / 1e9:.3f} s back)",
                )
            return
        self.last_ns = stamp_ns

    def reset(self) -> None:
        self.last_ns = None


class TimeBase:
    """The newest stamp accepted on any stream of one time base; a stamp more than
    ``jump_forward_ns`` past it is a jump forward (:class:`TimeJump`). Not thread-safe (call it
    under the caller's lock).

    Args:
        jump_forward_ns: the threshold, nanoseconds; 0 = never a jump.
    """

    def __init__(self, jump_forward_ns: int = 0) -> None:
        self.jump_forward_ns = jump_forward_ns
        self.newest_ns: int | None = None

    def check(self, stream: str, stamp_ns: int) -> None:
        """Raise :class:`TimeJump` when ``stamp_ns`` (of ``stream``) lies more than the
        threshold past the newest accepted stamp."""
        newest = self.newest_ns
        if self.jump_forward_ns and newest is not None \
                and stamp_ns - newest > self.jump_forward_ns:
            raise TimeJump(stream, stamp_ns, newest)

    def accept(self, stamp_ns: int) -> None:
        """Record an accepted stamp."""
        if self.newest_ns is None or stamp_ns > self.newest_ns:
            self.newest_ns = stamp_ns

    def reset(self) -> None:
        self.newest_ns = None
