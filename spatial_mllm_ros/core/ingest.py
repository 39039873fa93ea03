"""Ingestion pipeline: convert -> stamp check -> pair -> assemble a Frame -> store.  No rclpy.

:meth:`Ingestor.ingest` is what the node's camera callbacks call (with the topic kind) and what
the offline bag evaluator feeds in bag order; both share conversion (``core.convert``),
pairing (``core.pairing``) and the counters that diagnostics publish.  Thread-safe: conversion
runs unlocked (callbacks of different streams overlap), stamp checks, pairing, assembly and
counting run under one lock.

Counters (:meth:`Ingestor.counters`, flat ``str -> int``):
    ``in.<topic>.received`` / ``.accepted`` / ``.rejected.<reason>``
        per input topic kind (colour, colour_compressed, depth, camera_info, pose, odometry);
        ``received == accepted + sum(rejected.*)`` always.
    ``pair.<stream>.*``
        the synchroniser's counters (see ``core.pairing``); colour and colour_compressed feed
        the stream ``colour``, pose and odometry the stream ``pose``.
    ``frames.emitted`` / ``.with_depth`` / ``.with_pose`` / ``.with_intrinsics`` /
    ``.complete`` (depth + intrinsics + pose) / ``.colour_only`` (neither depth nor pose)
    ``frames.depth_size_mismatch`` / ``frames.intrinsics_size_mismatch``
        a paired depth / camera info whose size differs from the colour image was left out of
        the frame (the depth message counts as paired, the frame as without depth).
    ``buffer.frames`` / ``buffer.bytes`` / ``buffer.evicted``
    ``buffer.admit.<reason>``
        the store's decision per frame (the space-aware buffer's admission reasons, e.g.
        ``new_coverage``, ``interval``, ``redundant``)

Accounting identity for colour frames (exact at any time)::

    in.colour.accepted + in.colour_compressed.accepted
        == frames.emitted + pair.colour.dropped + pair.colour.pending
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.buffer import FrameStore
from spatial_mllm_ros.core.convert import (
    DEFAULT_LIMITS,
    ConvertLimits,
    StampGuard,
    camera_info_to_intrinsics,
    colour_image_to_rgb,
    compressed_image_to_rgb,
    depth_image_to_metres,
    odometry_to_matrix,
    pose_stamped_to_matrix,
    stamp_to_ns,
)
from spatial_mllm_ros.core.errors import FrameRejected
from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame
from spatial_mllm_ros.core.pairing import PairedFrame, PairingConfig, Synchroniser

__all__ = ["TOPIC_KINDS", "IngestConfig", "IngestResult", "Ingestor", "PoseLookup"]

#: topic kind -> pairing stream
TOPIC_KINDS: dict[str, str] = {
    "colour": "colour",
    "colour_compressed": "colour",
    "depth": "depth",
    "camera_info": "camera_info",
    "pose": "pose",
    "odometry": "pose",
}

#: Unexpected conversion errors (a message missing a field, ...) are counted under this key.
INTERNAL_ERROR = "internal_error"

#: (frame_id, stamp_ns) -> (4x4 camera-to-world, world frame id) or None; e.g. a tf lookup.
PoseLookup = Callable[[str, int], tuple[npt.NDArray[np.float64], str] | None]


@dataclass(frozen=True)
class IngestConfig:
    """Conversion limits and pairing settings."""

    limits: ConvertLimits = DEFAULT_LIMITS
    pairing: PairingConfig = field(default_factory=PairingConfig)


@dataclass
class IngestResult:
    """Outcome of one message: the frames it completed and the rejection, if any."""

    frames: list[Frame]
    rejected: FrameRejected | None = None
    error: str | None = None


def _colour_value(msg: Any, limits: ConvertLimits) -> tuple[npt.NDArray[np.uint8], str]:
    return colour_image_to_rgb(msg, limits), str(msg.header.frame_id)


def _compressed_value(msg: Any, limits: ConvertLimits) -> tuple[npt.NDArray[np.uint8], str]:
    return compressed_image_to_rgb(msg, limits), str(msg.header.frame_id)


def _pose_value(msg: Any, limits: ConvertLimits) -> tuple[npt.NDArray[np.float64], str]:
    return pose_stamped_to_matrix(msg, limits), str(msg.header.frame_id)


def _odom_value(msg: Any, limits: ConvertLimits) -> tuple[npt.NDArray[np.float64], str]:
    return odometry_to_matrix(msg, limits), str(msg.header.frame_id)


_CONVERTERS: dict[str, Callable[[Any, ConvertLimits], Any]] = {
    "colour": _colour_value,
    "colour_compressed": _compressed_value,
    "depth": depth_image_to_metres,
    "camera_info": lambda msg, _limits: camera_info_to_intrinsics(msg),
    "pose": _pose_value,
    "odometry": _odom_value,
}


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
        self._sync: Synchroniser[Any] = Synchroniser(self.config.pairing)
        self._streams = {"colour"} | {p.name for p in self.config.pairing.partners}
        self._guards = {s: StampGuard(s) for s in self._streams}
        self._counts: collections.Counter[str] = collections.Counter()
        self._seq = 0

    # ------------------------------------------------------------------ inputs
    def ingest(self, topic: str, msg: Any, now_ns: int) -> IngestResult:
        """Convert and pair one message of topic kind ``topic`` (see ``TOPIC_KINDS``).

        Never raises for a bad message: rejections and unexpected errors are counted and
        returned in the result.
        """
        stream = TOPIC_KINDS[topic]
        if stream not in self._streams:
            raise KeyError(f"topic kind {topic!r}: stream {stream!r} is not configured")
        prefix = f"in.{topic}."
        with self._lock:
            self._counts[prefix + "received"] += 1
        try:
            stamp = stamp_to_ns(msg.header)
            value = _CONVERTERS[topic](msg, self.config.limits)
        except FrameRejected as err:
            with self._lock:
                self._counts[prefix + "rejected." + err.reason.value] += 1
            return IngestResult([], rejected=err)
        except Exception as err:  # a malformed object must not kill the caller
            with self._lock:
                self._counts[prefix + "rejected." + INTERNAL_ERROR] += 1
            return IngestResult([], error=f"{type(err).__name__}: {err}")
        with self._lock:
            try:
                self._guards[stream].check(stamp)
            except FrameRejected as err:
                self._counts[prefix + "rejected." + err.reason.value] += 1
                return IngestResult([], rejected=err)
            self._counts[prefix + "accepted"] += 1
            if stream == "colour":
                paired = self._sync.push_colour(stamp, value, now_ns)
            else:
                paired = self._sync.push(stream, stamp, value, now_ns)
            return IngestResult(self._store_all(paired))

    def poll(self, now_ns: int) -> list[Frame]:
        """Emit the colour frames whose wait for partners has expired at ``now_ns``."""
        with self._lock:
            return self._store_all(self._sync.poll(now_ns))

    def flush(self) -> list[Frame]:
        """Emit every waiting colour frame now (end of a bag, deactivation)."""
        with self._lock:
            return self._store_all(self._sync.flush())

    def next_deadline(self) -> int | None:
        """When the oldest waiting colour frame times out (``now_ns`` units), or None."""
        with self._lock:
            return self._sync.oldest_wait_deadline()

    def reset_stamps(self) -> None:
        """Forget the last stamp of every stream (e.g. after a bag loops or sim time resets)."""
        with self._lock:
            for g in self._guards.values():
                g.reset()

    # ---------------------------------------------------------------- assembly
    def _store_all(self, paired: list[PairedFrame[Any]]) -> list[Frame]:
        frames = [self._assemble(p) for p in paired]
        for frame in frames:
            outcome = self.store.add(frame)
            self._counts["buffer.evicted"] += outcome.evicted_count
            self._counts[f"buffer.admit.{outcome.reason}"] += 1
        return frames

    def _assemble(self, p: PairedFrame[Any]) -> Frame:
        rgb, frame_id = p.colour.value
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        c = self._counts

        depth: npt.NDArray[np.float32] | None = None
        d = p.get("depth")
        if d is not None:
            if tuple(d.value.shape) == (height, width):
                depth = d.value
            else:
                c["frames.depth_size_mismatch"] += 1

        intr: CameraIntrinsics | None = None
        i = p.get("camera_info")
        if i is not None:
            if (i.value.width, i.value.height) == (width, height):
                intr = i.value
            else:
                c["frames.intrinsics_size_mismatch"] += 1

        pose: npt.NDArray[np.float64] | None = None
        world = ""
        q = p.get("pose")
        if q is not None:
            pose, world = q.value
        elif self.pose_lookup is not None:
            try:
                found = self.pose_lookup(frame_id, p.colour.stamp_ns)
            except Exception:
                found = None
                c["frames.pose_lookup_error"] += 1
            if found is not None:
                pose, world = found

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
        c["frames.emitted"] += 1
        c["frames.with_depth"] += depth is not None
        c["frames.with_pose"] += pose is not None
        c["frames.with_intrinsics"] += intr is not None
        c["frames.complete"] += frame.has_geometry
        c["frames.colour_only"] += depth is None and pose is None
        return frame

    # -------------------------------------------------------------- accounting
    def counters(self) -> dict[str, int]:
        """All counters (see the module docstring); absent keys are 0."""
        with self._lock:
            out = dict(self._counts)
            for k, v in self._sync.counters().items():
                out["pair." + k] = v
        out["buffer.frames"] = len(self.store)
        out["buffer.bytes"] = int(self.store.nbytes)
        return out

    @staticmethod
    def rejected_total(counters: dict[str, int], topic: str) -> int:
        """Sum of ``in.<topic>.rejected.*`` in a counters dict."""
        prefix = f"in.{topic}.rejected."
        return sum(v for k, v in counters.items() if k.startswith(prefix))
