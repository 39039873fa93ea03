"""Malformed camera messages for fault-injection tests of ingestion.  Never imports rclpy.

Each kind of :data:`INJECT_KINDS` is one message, built with a
:class:`~spatial_mllm_ros.core.encode.MessageEncoder` (rclpy, rosbags or namespace messages)
and then broken, that :mod:`spatial_mllm_ros.core.convert` / the ingestor must reject with the
kind's reason.  ``oversized_image`` is four times the frame's pixel count, so it is rejected
when the receiver's ``image.max_pixels`` is below that; ``stamp_backwards`` is rejected by the
colour stream's :class:`~spatial_mllm_ros.core.convert.StampGuard` after a good frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from spatial_mllm_ros.core.encode import MessageEncoder
from spatial_mllm_ros.core.frame import DEFAULT_WORLD_FRAME_ID, CameraIntrinsics, Frame
from spatial_mllm_ros.synthetic.errors import UnknownInjectKindError

__all__ = ["INJECT_KINDS", "faulty_message", "inject_schedule"]

#: kind -> (ingestion topic kind it is published on, rejection reason the receiver counts)
INJECT_KINDS: dict[str, tuple[str, str]] = {
    "wrong_step": ("colour", "bad_step"),
    "truncated_data": ("colour", "bad_size"),
    "unknown_encoding": ("colour", "unknown_encoding"),
    "empty_image": ("colour", "empty_image"),
    "oversized_image": ("colour", "oversized_image"),
    "nan_depth": ("depth", "bad_depth_values"),
    "negative_depth": ("depth", "bad_depth_values"),
    "missing_intrinsics": ("camera_info", "missing_intrinsics"),
    "stamp_backwards": ("colour", "stamp_backwards"),
    "corrupt_compressed": ("colour_compressed", "decode_failed"),
    "bad_pose": ("pose", "bad_pose"),
}


def faulty_message(
    enc: MessageEncoder, kind: str, frame: Frame, stamp_ns: int, last_colour_ns: int = 0
) -> tuple[str, Any]:
    """The malformed message of ``kind`` made from ``frame``, stamped ``stamp_ns``.

    ``last_colour_ns`` is the stamp of the last good colour image (``stamp_backwards`` goes
    0.5 s before it, less than ``clock.jump_back_s``; 0 = before ``stamp_ns``).

    Returns:
        (ingestion topic kind, message) -- the topic kind as in :data:`INJECT_KINDS`.

    Raises:
        UnknownInjectKindError: unknown ``kind`` (a ValueError).
    """
    if kind not in INJECT_KINDS:
        raise UnknownInjectKindError(f"unknown inject kind {kind!r}; one of {sorted(INJECT_KINDS)}")
    h, w, fid = frame.height, frame.width, frame.frame_id
    msg: Any
    if kind in ("wrong_step", "truncated_data", "unknown_encoding"):
        msg = enc.colour_image(frame.rgb, stamp_ns, fid, "rgb8")
        if kind == "wrong_step":
            msg.step = w * 3 - 1
        elif kind == "truncated_data":
            msg.data = msg.data[: len(msg.data) - w * 3]
        else:
            msg.encoding = "nv21"
    elif kind == "empty_image":
        msg = enc.image(stamp_ns, fid, np.zeros((0, 0, 3), np.uint8), "rgb8", 0)
    elif kind == "oversized_image":
        msg = enc.colour_image(np.zeros((2 * h, 2 * w, 3), np.uint8), stamp_ns, fid, "rgb8")
    elif kind == "nan_depth":
        d = np.full((h, w), np.nan, np.float32)
        d[::2] = np.inf
        msg = enc.depth_image(d, stamp_ns, fid, "32FC1")
    elif kind == "negative_depth":
        d = np.full((h, w), 1.5, np.float32)
        d[h // 2:] = -1.0
        msg = enc.depth_image(d, stamp_ns, fid, "32FC1")
    elif kind == "missing_intrinsics":
        msg = enc.camera_info(CameraIntrinsics(0.0, 0.0, 0.0, 0.0, w, h), stamp_ns, fid)
        msg.k = np.zeros(9, dtype=np.float64)
    elif kind == "stamp_backwards":
        back = (last_colour_ns or stamp_ns) - 500_000_000  # a reordered frame, not a new time base
        msg = enc.colour_image(frame.rgb, back, fid, "rgb8")
    elif kind == "corrupt_compressed":
        msg = enc.compressed_image(frame.rgb, stamp_ns, fid, "jpeg")
        msg.data = msg.data[:16]  # a JPEG header without the image
    else:  # bad_pose
        msg = enc.pose_stamped(np.eye(4), stamp_ns, DEFAULT_WORLD_FRAME_ID)
        msg.pose.orientation.w = 0.0
    return INJECT_KINDS[kind][0], msg


def inject_schedule(
    count: int, inject: Sequence[str], inject_count: int, good_after: int
) -> list[str | None]:
    """The slot plan: ``count`` good slots (None), each kind of ``inject`` ``inject_count``
    times, then ``good_after`` good slots."""
    plan: list[str | None] = [None] * count
    for kind in inject:
        plan += [kind] * inject_count
    plan += [None] * good_after
    return plan
