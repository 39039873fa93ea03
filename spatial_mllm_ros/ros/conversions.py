"""Outgoing rclpy messages (the ROS edge): the core encoder bound to rclpy's message classes.

Incoming messages are decoded by :mod:`spatial_mllm_ros.core.convert` (duck-typed, no rclpy);
outgoing camera messages are built by :mod:`spatial_mllm_ros.core.encode` with
:data:`ENCODER`, whose factory imports message classes from their type names
(:func:`message_class`).  Variable-length ``uint8[]`` / ``float64[]`` fields are filled with an
``array.array`` of the numpy bytes, which rclpy stores without a per-element check.

:func:`serialized_image_size` reads the size of a serialized ``sensor_msgs/Image`` (what an
rclpy subscription with ``raw=True`` gives) without deserialising it, so that the node can
refuse an oversized image before rclpy copies its pixels into a Python message.
"""

from __future__ import annotations

import array
import importlib
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import KeyValue
from std_msgs.msg import Header

from spatial_mllm_ros.core.encode import MessageEncoder, MessageFactory

__all__ = [
    "ENCODER",
    "RCLPY_FACTORY",
    "ImageSize",
    "header",
    "key_values",
    "message_class",
    "ns_to_time",
    "serialized_image_size",
]


def message_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name`` (ImportError/AttributeError if absent)."""
    parts = msgtype.split("/")
    if len(parts) != 3 or parts[1] != "msg":
        raise ImportError(f"not a message type name: {msgtype!r}")
    module = importlib.import_module(f"{parts[0]}.msg")
    return getattr(module, parts[2])


def _array_field(values: npt.NDArray[Any]) -> array.array[Any]:
    """A 1-D numpy array -> ``array.array`` of the same typecode (``B`` for uint8, ``d`` for
    float64), the type rclpy keeps for sequence fields."""
    flat = np.ascontiguousarray(values).reshape(-1)
    return array.array(flat.dtype.char, flat.tobytes())


#: rclpy message classes for :class:`~spatial_mllm_ros.core.encode.MessageEncoder`
RCLPY_FACTORY = MessageFactory(message_class=message_class, sequence=_array_field)

#: builds rclpy camera messages (``ENCODER.colour_image(rgb, stamp_ns, frame_id)``, ...)
ENCODER = MessageEncoder(RCLPY_FACTORY)


def ns_to_time(stamp_ns: int) -> Time:
    """Nanoseconds since the epoch -> builtin_interfaces/Time."""
    t: Time = ENCODER.time(stamp_ns)
    return t


def header(stamp_ns: int, frame_id: str) -> Header:
    """std_msgs/Header of ``stamp_ns`` (nanoseconds since the epoch) and ``frame_id``."""
    h: Header = ENCODER.header(stamp_ns, frame_id)
    return h


def key_values(values: dict[str, object]) -> list[KeyValue]:
    """A dict -> diagnostic_msgs/KeyValue list (sorted by key, values as strings)."""
    return [KeyValue(key=k, value=str(values[k])) for k in sorted(values)]


@dataclass(frozen=True)
class ImageSize:
    """An image's size in pixels."""

    height: int
    width: int


#: CDR encapsulation (first 4 bytes of a serialized message): representation id -> byte order
_CDR_ORDER = {b"\x00\x00": ">", b"\x00\x01": "<"}


def serialized_image_size(data: bytes) -> ImageSize | None:
    """``height`` and ``width`` of a serialized ``sensor_msgs/Image`` (CDR, as a raw rclpy
    subscription gives it), read from the fields before the pixels; None when the bytes do
    not read as one (the caller then deserialises and lets the conversion judge it).

    Layout after the 4-byte encapsulation header (offsets relative to it, 4-byte aligned):
    ``header.stamp`` (int32 sec, uint32 nanosec), ``header.frame_id`` (uint32 length with its
    NUL, the bytes), then uint32 ``height`` and uint32 ``width``.
    """
    order = _CDR_ORDER.get(bytes(data[:2]))
    if order is None or len(data) < 16:
        return None
    try:
        (name_len,) = struct.unpack_from(order + "I", data, 12)
        offset = 12 + 4 + name_len
        offset += (-(offset - 4)) % 4
        height, width = struct.unpack_from(order + "II", data, offset)
    except struct.error:
        return None
    return ImageSize(int(height), int(width))
