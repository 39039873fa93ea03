"""Outgoing rclpy messages (the ROS edge): the core encoder bound to rclpy's message classes.

Incoming messages are decoded by :mod:`spatial_mllm_ros.core.convert` (duck-typed, no rclpy);
outgoing camera messages are built by :mod:`spatial_mllm_ros.core.encode` with
:data:`ENCODER`, whose factory imports message classes from their type names
(:func:`message_class`).  Variable-length ``uint8[]`` / ``float64[]`` fields are filled with an
``array.array`` of the numpy bytes, which rclpy stores without a per-element check.

:func:`serialized_image_size` reads the size of a serialized ``sensor_msgs/Image`` (what an
rclpy subscription with ``raw=True`` gives) without deserialising it, so that the node can
refuse an oversized image before rclpy copies its pixels into a Python message, and
:func:`read_serialized_image` reads the whole image as a :class:`SerializedImage` whose pixels
are a view of those bytes: the node ingests it without rclpy's deserialisation (a copy of
every pixel into a new Python message, a quarter of the node's time at three 30 Hz RGB-D
cameras, ``benchmarks/bench_multi_camera.py``).
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
    "SerializedImage",
    "header",
    "key_values",
    "message_class",
    "ns_to_time",
    "read_serialized_image",
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
    reader = _cdr_reader(data)
    if reader is None:
        return None
    try:
        reader.int32()
        reader.uint32()
        reader.skip_sequence()  # frame_id
        height, width = reader.uint32(), reader.uint32()
    except (struct.error, ValueError):
        return None
    return ImageSize(height, width)


class _CdrReader:
    """Reads CDR primitives from ``data`` in byte order ``order`` ('<' or '>'), aligned
    relative to the end of the 4-byte encapsulation header."""

    def __init__(self, data: bytes, order: str) -> None:
        self.data = data
        self.order = order
        self.offset = 4

    def _align(self, size: int) -> None:
        self.offset += (-(self.offset - 4)) % size

    def uint32(self) -> int:
        self._align(4)
        (value,) = struct.unpack_from(self.order + "I", self.data, self.offset)
        self.offset += 4
        return int(value)

    def int32(self) -> int:
        self._align(4)
        (value,) = struct.unpack_from(self.order + "i", self.data, self.offset)
        self.offset += 4
        return int(value)

    def uint8(self) -> int:
        value = self.data[self.offset]
        self.offset += 1
        return int(value)

    def string(self) -> str:
        """A CDR string: uint32 length with the NUL, the bytes, the NUL."""
        size = self.uint32()
        end = self.offset + size
        if size < 1 or end > len(self.data) or self.data[end - 1] != 0:
            raise ValueError("not a CDR string")
        text = bytes(self.data[self.offset:end - 1]).decode("utf-8")
        self.offset = end
        return text

    def skip_sequence(self) -> None:
        """Past a string or ``uint8[]`` sequence (uint32 count, the bytes) unread."""
        size = self.uint32()
        if self.offset + size > len(self.data):
            raise ValueError("sequence past the end of the message")
        self.offset += size

    def octets(self) -> memoryview:
        """A ``uint8[]`` sequence: uint32 count, the bytes (a view)."""
        size = self.uint32()
        end = self.offset + size
        if end > len(self.data):
            raise ValueError("sequence past the end of the message")
        view = memoryview(self.data)[self.offset:end]
        self.offset = end
        return view


def _cdr_reader(data: bytes) -> _CdrReader | None:
    """A reader past the encapsulation header of ``data``; None when it is not plain CDR."""
    order = _CDR_ORDER.get(bytes(data[:2]))
    if order is None or len(data) < 16:
        return None
    return _CdrReader(data, order)


@dataclass(frozen=True)
class SerializedStamp:
    """``builtin_interfaces/Time`` fields of a :class:`SerializedImage`."""

    sec: int
    nanosec: int


@dataclass(frozen=True)
class SerializedHeader:
    """``std_msgs/Header`` fields of a :class:`SerializedImage`."""

    stamp: SerializedStamp
    frame_id: str


@dataclass(frozen=True)
class SerializedImage:
    """A ``sensor_msgs/Image`` read from its CDR bytes, with the fields the core's converter
    reads (:mod:`spatial_mllm_ros.core.convert`); ``data`` is a view of the serialized bytes
    (``step * height`` of them when the message is consistent), not a copy."""

    header: SerializedHeader
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


def read_serialized_image(data: bytes) -> SerializedImage | None:
    """The fields of a serialized ``sensor_msgs/Image`` (CDR, as a raw rclpy subscription
    gives it), its pixels a view of ``data``; None when the bytes do not read as one (the
    caller then deserialises and lets the conversion judge it).

    Layout after the 4-byte encapsulation header: ``header`` (int32 sec, uint32 nanosec,
    string frame_id), uint32 ``height``, uint32 ``width``, string ``encoding``, uint8
    ``is_bigendian``, uint32 ``step``, ``uint8[] data``; strings are a uint32 length (with the
    NUL) and the bytes; 4-byte fields are aligned to 4 from the end of the encapsulation.
    """
    reader = _cdr_reader(data)
    if reader is None:
        return None
    try:
        sec, nanosec = reader.int32(), reader.uint32()
        frame_id = reader.string()
        height, width = reader.uint32(), reader.uint32()
        encoding = reader.string()
        is_bigendian = reader.uint8()
        step = reader.uint32()
        pixels = reader.octets()
    except (struct.error, ValueError, IndexError, UnicodeDecodeError):
        return None
    return SerializedImage(SerializedHeader(SerializedStamp(sec, nanosec), frame_id), height,
                           width, encoding, is_bigendian, step, pixels)
