"""The ``rosbags`` typestore bags are read and written with, and its message factory."""

from __future__ import annotations

from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from spatial_mllm_ros.core.encode import MessageFactory

__all__ = ["rosbags_factory", "typestore"]


def typestore() -> Typestore:
    """The ROS 2 Jazzy typestore (standard message definitions; ``sensor_msgs``,
    ``geometry_msgs``, ``nav_msgs`` are identical from Humble to Kilted)."""
    return get_typestore(Stores.ROS2_JAZZY)


def rosbags_factory(ts: Typestore) -> MessageFactory:
    """A :class:`~spatial_mllm_ros.core.encode.MessageFactory` of ``ts``' message classes
    (array fields stay numpy arrays, as rosbags' serialiser expects)."""
    return MessageFactory(message_class=lambda msgtype: ts.types[msgtype])
