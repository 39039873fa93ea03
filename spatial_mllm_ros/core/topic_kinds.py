"""The camera topic kinds: one table of what each kind is.  Never imports rclpy.

Each input topic kind has one :class:`TopicKind` record in :data:`TOPIC_KINDS`: the parameter
holding its topic name, the pairing stream it feeds, the ROS 2 message type expected on it and
the converter that turns such a message (duck-typed: rclpy or rosbags) into the core's value.
Everything else that names kinds derives from this table: the ingestor's streams and
converters, the node's subscriptions (message classes from ``msg_type`` at the ROS edge), the
bags' expected types, the settings' topic parameters and the diagnostics keys
(``in.<kind>.*``, see :mod:`.counters`).

The converters live here, with the kinds, because conversion is pure core
(:mod:`.convert`); the ROS edge only resolves ``msg_type`` to an rclpy class.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.convert import (
    ConvertLimits,
    camera_info_to_intrinsics,
    colour_image_to_rgb,
    compressed_image_to_rgb,
    depth_image_to_metres,
    odometry_to_matrix,
    pose_stamped_to_matrix,
)
from spatial_mllm_ros.core.frame import CameraIntrinsics

__all__ = [
    "BY_KIND",
    "COLOUR_KINDS",
    "TOPIC_KINDS",
    "TOPIC_PARAMS",
    "Converter",
    "Kind",
    "Stream",
    "TopicKind",
    "kinds_of",
]


class Kind(enum.StrEnum):
    """An input topic kind; the values are the diagnostics keys' and the bag plans' names."""

    COLOUR = "colour"
    COLOUR_COMPRESSED = "colour_compressed"
    DEPTH = "depth"
    CAMERA_INFO = "camera_info"
    POSE = "pose"
    ODOMETRY = "odometry"


class Stream(enum.StrEnum):
    """A pairing stream (several kinds may feed one: raw and compressed colour, pose and
    odometry); the values are the ``pair.<stream>.*`` keys' names."""

    COLOUR = "colour"
    DEPTH = "depth"
    CAMERA_INFO = "camera_info"
    POSE = "pose"


#: ``(message, limits) -> value``: raises ``FrameRejected`` for a message it refuses
Converter = Callable[[Any, ConvertLimits], Any]


def _colour(msg: Any, limits: ConvertLimits) -> tuple[npt.NDArray[np.uint8], str]:
    """(H, W, 3) uint8 RGB and the image's frame id."""
    return colour_image_to_rgb(msg, limits), str(msg.header.frame_id)


def _compressed(msg: Any, limits: ConvertLimits) -> tuple[npt.NDArray[np.uint8], str]:
    """(H, W, 3) uint8 RGB decoded from JPEG/PNG and the image's frame id."""
    return compressed_image_to_rgb(msg, limits), str(msg.header.frame_id)


def _camera_info(msg: Any, _limits: ConvertLimits) -> tuple[CameraIntrinsics, str]:
    """The intrinsics (pixels) and the camera's frame id."""
    return camera_info_to_intrinsics(msg), str(msg.header.frame_id)


def _pose(msg: Any, limits: ConvertLimits) -> tuple[npt.NDArray[np.float64], str]:
    """(4, 4) camera-to-world (metres) and the world frame id."""
    return pose_stamped_to_matrix(msg, limits), str(msg.header.frame_id)


def _odometry(msg: Any, limits: ConvertLimits) -> tuple[npt.NDArray[np.float64], str]:
    """(4, 4) camera-to-world (metres) and the world frame id."""
    return odometry_to_matrix(msg, limits), str(msg.header.frame_id)


@dataclass(frozen=True)
class TopicKind:
    """One kind of camera topic the node ingests.

    Attributes:
        kind: its name.
        param: the parameter holding its topic name (``topics.<kind>``).
        stream: the pairing stream its messages feed.
        msg_type: the ROS 2 message type expected on it (``pkg/msg/Name``).
        convert: message -> the value its stream pairs (see the converters' docstrings;
            depth: (H, W) float32 metres).
    """

    kind: Kind
    param: str
    stream: Stream
    msg_type: str
    convert: Converter

    @property
    def colour(self) -> bool:
        """Whether it carries the colour image (a frame needs one such kind)."""
        return self.stream is Stream.COLOUR

    @property
    def continuous(self) -> bool:
        """Whether it is expected to flow continuously (checked for silence); camera info
        may be published once (latched), so only a missing publisher is flagged for it."""
        return self.stream is not Stream.CAMERA_INFO


#: The camera topic kinds, in the order of the parameters.
TOPIC_KINDS: tuple[TopicKind, ...] = (
    TopicKind(Kind.COLOUR, "topics.colour", Stream.COLOUR, "sensor_msgs/msg/Image", _colour),
    TopicKind(Kind.COLOUR_COMPRESSED, "topics.colour_compressed", Stream.COLOUR,
              "sensor_msgs/msg/CompressedImage", _compressed),
    TopicKind(Kind.DEPTH, "topics.depth", Stream.DEPTH, "sensor_msgs/msg/Image",
              depth_image_to_metres),
    TopicKind(Kind.CAMERA_INFO, "topics.camera_info", Stream.CAMERA_INFO,
              "sensor_msgs/msg/CameraInfo", _camera_info),
    TopicKind(Kind.POSE, "topics.pose", Stream.POSE, "geometry_msgs/msg/PoseStamped", _pose),
    TopicKind(Kind.ODOMETRY, "topics.odometry", Stream.POSE, "nav_msgs/msg/Odometry",
              _odometry),
)

#: kind name -> its record (a plain ``str`` name finds it too; an unknown one raises KeyError)
BY_KIND: Mapping[str, TopicKind] = MappingProxyType({t.kind: t for t in TOPIC_KINDS})
#: kind name -> the parameter holding its topic name
TOPIC_PARAMS: Mapping[str, str] = MappingProxyType({t.kind: t.param for t in TOPIC_KINDS})
#: the kinds that carry the colour image
COLOUR_KINDS: tuple[Kind, ...] = tuple(t.kind for t in TOPIC_KINDS if t.colour)


def kinds_of(stream: str) -> tuple[Kind, ...]:
    """The kinds whose messages feed ``stream``."""
    return tuple(t.kind for t in TOPIC_KINDS if t.stream == stream)
