"""Camera poses by tf2 lookup, where ``tf2_ros`` is importable (it is not among the PyPI
wheels): a :data:`~spatial_mllm_ros.core.ingest.PoseLookup` of the image's optical frame in the
world frame at the image's stamp."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import rclpy
from rclpy.node import Node

from spatial_mllm_ros.core.convert import ConvertLimits, transform_stamped_to_matrix
from spatial_mllm_ros.core.ingest import PoseLookup

try:  # optional: not in the PyPI wheel set
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the install
    tf2_ros = None

__all__ = ["TfPoses", "fixed_frame", "tf2_available"]


def tf2_available() -> bool:
    """True where ``tf2_ros`` can be imported."""
    return tf2_ros is not None


class TfPoses:
    """A tf2 buffer and listener on ``node``, and the pose lookup the ingestor calls.

    ``buffer``: a buffer to read instead (anything with tf2's ``lookup_transform(target,
    source, time)``; then no listener is made and ``tf2_ros`` is not needed).

    Raises:
        RuntimeError: ``tf2_ros`` is not importable and no ``buffer`` is given (check
            :func:`tf2_available` first).
    """

    def __init__(self, node: Node | None, world_frame: str, limits: ConvertLimits,
                 buffer: Any = None) -> None:
        if buffer is None and tf2_ros is None:
            raise RuntimeError("tf2_ros is not importable")
        self.world_frame = world_frame
        self._limits = limits
        self._buffer: Any = buffer if buffer is not None else tf2_ros.Buffer()
        self._listener: Any = (None if buffer is not None
                               else tf2_ros.TransformListener(self._buffer, node))

    def lookup(self, frame_id: str, stamp_ns: int) -> tuple[npt.NDArray[np.float64], str] | None:
        """The (4, 4) camera-to-world transform at ``stamp_ns``, or None when tf has none."""
        try:
            tf = self._buffer.lookup_transform(
                self.world_frame, frame_id, rclpy.time.Time(nanoseconds=stamp_ns)
            )
        except Exception:  # not yet available, extrapolation, ...
            return None
        return transform_stamped_to_matrix(tf, self._limits), self.world_frame

    def as_lookup(self) -> PoseLookup:
        return self.lookup


def fixed_frame(lookup: PoseLookup | None, frame: str) -> PoseLookup | None:
    """``lookup`` of the camera's tf frame ``frame`` (``camera.<name>.tf_frame``) whatever the
    image's ``frame_id`` says."""
    if lookup is None:
        return None
    base = lookup

    def fixed(_frame_id: str, stamp_ns: int) -> tuple[npt.NDArray[np.float64], str] | None:
        return base(frame, stamp_ns)

    return fixed
