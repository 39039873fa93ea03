"""The partners of a colour frame that are not paired by stamp in the synchroniser.  No rclpy.

* **Poses** are a time series (:class:`~spatial_mllm_ros.core.poses.PoseHistory`): a frame
  waits until the history covers its stamp (:class:`PoseGate`, at most ``pairing.wait_s``),
  then gets the pose interpolated at its stamp.
* **Camera info** is latched per camera (:class:`CameraInfoLatch`): one valid message serves
  every frame of that camera (its ``frame_id``) until another one replaces it; frames that
  arrive before the first one wait for it (:class:`InfoGate`, at most ``pairing.info_wait_s``).

Why a frame lacks a partner is counted by the ingestor as ``frames.missing.<partner>.<reason>``
with the reasons documented by :data:`MISSING_REASONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spatial_mllm_ros import params as P
from spatial_mllm_ros.core.frame import CameraIntrinsics
from spatial_mllm_ros.core.pairing import Stamped
from spatial_mllm_ros.core.poses import PoseHistory

__all__ = ["MISSING_REASONS", "CameraInfoLatch", "InfoGate", "PoseConfig", "PoseGate"]

MISSING_REASONS: dict[str, str] = {
    "late": "its wait expired before the partner arrived (or before the history covered it)",
    "no_match": "partner messages arrived, but none within pairing.slop_s of the image stamp",
    "flushed": "the frame was emitted early (deactivation, end of a bag, a new time base)",
    "size_mismatch": "the partner's image size differs from the colour image's",
    "no_pose": "no pose message has been received",
    "too_old": "the stamp lies before the pose history's kept span",
    "gap": "the neighbouring poses are further apart than pose.max_gap_s",
    "frame_change": "the neighbouring poses map into different world frames",
    "tf_unavailable": "the tf2 lookup gave no transform",
    "no_publisher": "the partner's topic had no publisher (as the node last counted them): "
                    "no such sensor, rather than a late one",
}
"""Why a frame lacks a partner (``frames.missing.<partner>.<reason>``)."""


@dataclass(frozen=True)
class PoseConfig:
    """The pose history (defaults: the parameter schema's ``pose.*``).

    Attributes:
        span_ns: history kept, nanoseconds before the newest pose.
        max_extrapolation_ns: a stamp this far past either end of the history gets the end pose.
        max_gap_ns: poses further apart are not interpolated between.
    """

    span_ns: int = P.bound("pose.history_s", P.seconds_ns)
    max_extrapolation_ns: int = P.bound("pose.max_extrapolation_s", P.seconds_ns)
    max_gap_ns: int = P.bound("pose.max_gap_s", P.seconds_ns)

    def history(self) -> PoseHistory:
        return PoseHistory(self.span_ns, self.max_extrapolation_ns, self.max_gap_ns)


def _frame_id(colour: Stamped[Any]) -> str:
    """The camera of a colour message in the ingestor's queue (value = (rgb, frame_id))."""
    return str(colour.value[1])


class PoseGate:
    """Gate ``pose``: open once the pose history covers the frame's stamp."""

    name = "pose"

    def __init__(self, history: PoseHistory, wait_ns: int) -> None:
        self.history = history
        self.wait_ns = wait_ns

    def ready(self, colour: Stamped[Any]) -> bool:
        return self.history.covers(colour.stamp_ns)


class CameraInfoLatch:
    """The latest valid intrinsics of each camera, by ``frame_id``.

    A frame of a camera without an entry gets the only latched camera's intrinsics when there
    is exactly one (drivers that stamp camera info and images with different frame ids).
    """

    def __init__(self) -> None:
        self._by_camera: dict[str, CameraIntrinsics] = {}
        self.updates = 0
        self.changes = 0

    def update(self, frame_id: str, intrinsics: CameraIntrinsics) -> None:
        old = self._by_camera.get(frame_id)
        if old is not None and old != intrinsics:
            self.changes += 1
        self._by_camera[frame_id] = intrinsics
        self.updates += 1

    def get(self, frame_id: str) -> CameraIntrinsics | None:
        found = self._by_camera.get(frame_id)
        if found is None and len(self._by_camera) == 1:
            found = next(iter(self._by_camera.values()))
        return found

    def __len__(self) -> int:
        return len(self._by_camera)


class InfoGate:
    """Gate ``camera_info``: open once the frame's camera has latched intrinsics."""

    name = "camera_info"

    def __init__(self, latch: CameraInfoLatch, wait_ns: int) -> None:
        self.latch = latch
        self.wait_ns = wait_ns

    def ready(self, colour: Stamped[Any]) -> bool:
        return self.latch.get(_frame_id(colour)) is not None
