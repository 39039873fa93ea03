"""Camera poses as a time series, as tf2's buffer keeps transforms.  No rclpy.

A :class:`PoseHistory` holds the pose messages of one camera (PoseStamped or Odometry, already
converted to 4x4 camera-to-world matrices) sorted by stamp, over a bounded span of time, and
answers "where was the camera at stamp *t*?" the way ``tf2::BufferCore`` answers a lookup:

* between two samples: translation interpolated linearly, rotation by spherical linear
  interpolation (slerp) of the two quaternions, at the stamp's fraction of the interval;
* at a sample's stamp: that sample;
* up to ``max_extrapolation_ns`` past either end: the end sample (held, not extrapolated: a
  zero-order hold bounds the error by the camera's motion in that time);
* further out: no pose -- :data:`LookupStatus` says why (``pending`` when the history may
  still cover the stamp, ``too_old`` before the kept span, ``no_pose`` with no sample yet);
* across a gap larger than ``max_gap_ns`` between the neighbours, or across a change of world
  frame: no pose (``gap``, ``frame_change``), since interpolating there would invent motion.

Messages may arrive out of stamp order (a localisation stack publishes late, with jitter):
each is inserted at its stamp. Samples older than ``span_ns`` before the newest one are
dropped, and at most ``max_samples`` are kept. Not thread-safe: the ingestor locks around it.

Units: stamps in nanoseconds (ROS time), positions in metres.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "LookupStatus",
    "PoseHistory",
    "PoseLookupResult",
    "matrix_to_quaternion",
    "quaternion_to_matrix",
    "rigid_transform",
    "slerp",
]

Matrix = npt.NDArray[np.float64]
LookupStatus = Literal[
    "exact", "interpolated", "held", "pending", "too_old", "no_pose", "gap", "frame_change"
]
#: statuses that give a pose
FOUND: frozenset[str] = frozenset({"exact", "interpolated", "held"})


@dataclass(frozen=True)
class PoseLookupResult:
    """The answer of :meth:`PoseHistory.lookup`.

    Attributes:
        status: how the pose was found, or why there is none (see the module docstring).
        pose: (4, 4) float64 camera-to-world transform; None unless ``found``.
        world_frame_id: the frame the pose maps into; "" when none.
    """

    status: LookupStatus
    pose: Matrix | None = None
    world_frame_id: str = ""

    @property
    def found(self) -> bool:
        return self.status in FOUND


def matrix_to_quaternion(rot: Matrix) -> npt.NDArray[np.float64]:
    """(x, y, z, w) unit quaternion of a 3x3 rotation matrix, with w >= 0."""
    m = np.asarray(rot, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s,
                      (m[1, 0] - m[0, 1]) / s, 0.25 * s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = np.array([0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s,
                      (m[2, 1] - m[1, 2]) / s])
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = np.array([(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s,
                      (m[0, 2] - m[2, 0]) / s])
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = np.array([(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s,
                      (m[1, 0] - m[0, 1]) / s])
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def quaternion_to_matrix(q: npt.ArrayLike) -> Matrix:
    """3x3 rotation matrix of an (x, y, z, w) quaternion (normalised first)."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def rigid_transform(translation: npt.ArrayLike, quaternion: npt.ArrayLike) -> Matrix:
    """(4, 4) transform of a translation (x, y, z) and an (x, y, z, w) quaternion, e.g. a
    camera's extrinsic (:class:`~spatial_mllm_ros.camera_params.Extrinsic`)."""
    out = np.eye(4)
    out[:3, :3] = quaternion_to_matrix(quaternion)
    out[:3, 3] = np.asarray(translation, dtype=np.float64)
    return out


def slerp(q0: npt.ArrayLike, q1: npt.ArrayLike, t: float) -> npt.NDArray[np.float64]:
    """Spherical linear interpolation of unit quaternions (x, y, z, w) at ``t`` in [0, 1],
    along the shorter arc."""
    a = np.asarray(q0, dtype=np.float64)
    b = np.asarray(q1, dtype=np.float64)
    dot = float(np.dot(a, b))
    if dot < 0.0:  # the shorter way round
        b, dot = -b, -dot
    if dot > 0.9995:  # nearly equal: linear, then renormalise (no division by sin ~ 0)
        q = a + t * (b - a)
        return q / np.linalg.norm(q)
    theta = math.acos(min(dot, 1.0))
    s = math.sin(theta)
    q = (math.sin((1 - t) * theta) * a + math.sin(t * theta) * b) / s
    return q / np.linalg.norm(q)


def interpolate_pose(p0: Matrix, p1: Matrix, t: float) -> Matrix:
    """The pose a fraction ``t`` of the way from ``p0`` to ``p1`` (lerp + slerp)."""
    out = np.eye(4)
    q = slerp(matrix_to_quaternion(p0[:3, :3]), matrix_to_quaternion(p1[:3, :3]), t)
    out[:3, :3] = quaternion_to_matrix(q)
    out[:3, 3] = (1 - t) * p0[:3, 3] + t * p1[:3, 3]
    return out


class PoseHistory:
    """Bounded, stamp-sorted history of camera-to-world poses (see the module docstring).

    Args:
        span_ns: keep samples at most this much older than the newest one.
        max_extrapolation_ns: a stamp at most this far past either end gets the end sample.
        max_gap_ns: do not interpolate between samples further apart than this.
        max_samples: hard bound on the samples kept.
    """

    def __init__(
        self,
        span_ns: int,
        max_extrapolation_ns: int,
        max_gap_ns: int,
        max_samples: int = 10_000,
    ) -> None:
        if span_ns <= 0 or max_extrapolation_ns < 0 or max_gap_ns <= 0 or max_samples < 2:
            raise ValueError("span and gap must be > 0, extrapolation >= 0, max_samples >= 2")
        self.span_ns = span_ns
        self.max_extrapolation_ns = max_extrapolation_ns
        self.max_gap_ns = max_gap_ns
        self.max_samples = max_samples
        self._stamps: list[int] = []
        self._poses: list[tuple[Matrix, str]] = []
        self.inserted = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._stamps)

    @property
    def newest_ns(self) -> int | None:
        return self._stamps[-1] if self._stamps else None

    @property
    def oldest_ns(self) -> int | None:
        return self._stamps[0] if self._stamps else None

    def insert(self, stamp_ns: int, pose: Matrix, world_frame_id: str) -> None:
        """Add a sample at its stamp (a sample with an equal stamp is replaced)."""
        i = bisect.bisect_left(self._stamps, stamp_ns)
        if i < len(self._stamps) and self._stamps[i] == stamp_ns:
            self._poses[i] = (pose, world_frame_id)
            return
        self._stamps.insert(i, stamp_ns)
        self._poses.insert(i, (pose, world_frame_id))
        self.inserted += 1
        cut = bisect.bisect_left(self._stamps, self._stamps[-1] - self.span_ns)
        cut = max(cut, len(self._stamps) - self.max_samples)
        if cut > 0:
            del self._stamps[:cut]
            del self._poses[:cut]
            self.evicted += cut

    def covers(self, stamp_ns: int) -> bool:
        """True when a lookup at ``stamp_ns`` can no longer improve by waiting for newer
        samples: one at or after it exists (samples arrive roughly in stamp order)."""
        return bool(self._stamps) and self._stamps[-1] >= stamp_ns

    def lookup(self, stamp_ns: int) -> PoseLookupResult:
        """The pose at ``stamp_ns`` (see the module docstring for the rules)."""
        if not self._stamps:
            return PoseLookupResult("no_pose")
        i = bisect.bisect_left(self._stamps, stamp_ns)
        if i < len(self._stamps) and self._stamps[i] == stamp_ns:
            pose, world = self._poses[i]
            return PoseLookupResult("exact", pose.copy(), world)
        if i == 0:  # before the oldest sample
            if self._stamps[0] - stamp_ns <= self.max_extrapolation_ns:
                pose, world = self._poses[0]
                return PoseLookupResult("held", pose.copy(), world)
            return PoseLookupResult("too_old")
        if i == len(self._stamps):  # after the newest sample
            if stamp_ns - self._stamps[-1] <= self.max_extrapolation_ns:
                pose, world = self._poses[-1]
                return PoseLookupResult("held", pose.copy(), world)
            return PoseLookupResult("pending")
        t0, t1 = self._stamps[i - 1], self._stamps[i]
        (p0, w0), (p1, w1) = self._poses[i - 1], self._poses[i]
        if w0 != w1:
            return PoseLookupResult("frame_change")
        if t1 - t0 > self.max_gap_ns:
            return PoseLookupResult("gap")
        pose = interpolate_pose(p0, p1, (stamp_ns - t0) / (t1 - t0))
        return PoseLookupResult("interpolated", pose, w0)

    def clear(self) -> None:
        """Forget every sample (a new time base)."""
        self.evicted += len(self._stamps)
        self._stamps.clear()
        self._poses.clear()
