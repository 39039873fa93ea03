"""rosbag2 reading and writing of the node's camera topics with ``rosbags`` (sqlite3 and mcap).
Never imports rclpy.

* :mod:`~spatial_mllm_ros.bags.topics`: the node's topic names per ingestion kind and their
  expected message types;
* :mod:`~spatial_mllm_ros.bags.reader`: :class:`BagSource`, deserialised or raw messages in
  log-time order;
* :mod:`~spatial_mllm_ros.bags.writer`: :class:`BagWriter` and :func:`write_frames`, messages
  built by :mod:`spatial_mllm_ros.core.encode`;
* :mod:`~spatial_mllm_ros.bags.errors`: :class:`BagError` and its subclasses.
"""

from __future__ import annotations

from spatial_mllm_ros.bags.errors import (
    BagError,
    BagFormatError,
    BagNotFoundError,
    BagTopicsError,
    EmptyBagError,
)
from spatial_mllm_ros.bags.reader import (
    BagInfo,
    BagMessage,
    BagSource,
    CameraPlan,
    plan_cameras,
)
from spatial_mllm_ros.bags.topics import (
    TOPIC_PARAMS,
    FrameTopics,
    camera_topics,
    resolve_topic,
    topics_from_params,
)
from spatial_mllm_ros.bags.typestore import typestore
from spatial_mllm_ros.bags.writer import BagWriter, Storage, write_cameras, write_frames

__all__ = [
    "TOPIC_PARAMS",
    "BagError",
    "BagFormatError",
    "BagInfo",
    "BagMessage",
    "BagNotFoundError",
    "BagSource",
    "BagTopicsError",
    "BagWriter",
    "CameraPlan",
    "EmptyBagError",
    "FrameTopics",
    "Storage",
    "camera_topics",
    "plan_cameras",
    "resolve_topic",
    "topics_from_params",
    "typestore",
    "write_cameras",
    "write_frames",
]
