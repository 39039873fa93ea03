"""Writing a rosbag2 (sqlite3 or mcap) with ``rosbags``.  Never imports rclpy.

:class:`BagWriter` serialises ``rosbags`` messages, built from
:class:`~spatial_mllm_ros.core.frame.Frame` records by the one encoder
(:class:`~spatial_mllm_ros.core.encode.MessageEncoder`, ``BagWriter.encoder``), with the ROS 2
Jazzy typestore.  Bags use rosbag2 metadata version 8 by default (readable by ``ros2 bag`` from
Iron on; Jazzy writes 8 or 9).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal

from rosbags.rosbag2 import Writer
from rosbags.rosbag2.errors import WriterError
from rosbags.rosbag2.writer import StoragePlugin

from spatial_mllm_ros.bags.errors import BagError
from spatial_mllm_ros.bags.topics import FrameTopics
from spatial_mllm_ros.bags.typestore import rosbags_factory, typestore
from spatial_mllm_ros.camera_params import DEFAULT_CAMERA
from spatial_mllm_ros.core.encode import MessageEncoder
from spatial_mllm_ros.core.errors import EncodeError
from spatial_mllm_ros.core.frame import DEFAULT_WORLD_FRAME_ID, Frame

__all__ = ["BagWriter", "Storage", "write_cameras", "write_frames"]

Storage = Literal["sqlite3", "mcap"]


class BagWriter(AbstractContextManager["BagWriter"]):
    """Writes a rosbag2 (context manager).  The output directory must not exist.

    Attributes:
        ts: the typestore messages are serialised with.
        encoder: builds ``ts``' camera messages from frames.
        counts: messages written per topic.

    Raises:
        BagError: the directory exists, or rosbags cannot write.
    """

    def __init__(self, path: str | Path, storage: Storage = "sqlite3", version: int = 8) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"output bag {self.path} already exists; remove it or pick another path")
        if storage not in ("sqlite3", "mcap"):
            raise BagError(f"unknown storage {storage!r}; expected sqlite3 or mcap")
        if version not in (8, 9):
            raise BagError(f"unsupported rosbag2 version {version}; expected 8 or 9")
        self.ts = typestore()
        self.encoder = MessageEncoder(rosbags_factory(self.ts))
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=version, storage_plugin=plugin)  # type: ignore[arg-type]
        self._conns: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        try:
            self._writer.open()
        except (WriterError, OSError) as err:
            raise BagError(f"cannot create bag {self.path}: {err}") from err

    def write(self, topic: str, log_time_ns: int, msg: Any) -> None:
        """Serialise ``msg`` (a typestore message) to CDR and write it at ``log_time_ns``."""
        msgtype = str(msg.__msgtype__)
        conn = self._conns.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=self.ts)
            self._conns[topic] = conn
        elif conn.msgtype != msgtype:
            raise BagError(f"topic {topic} already has type {conn.msgtype}, not {msgtype}")
        self._writer.write(conn, int(log_time_ns), self.ts.serialize_cdr(msg, msgtype))
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def close(self) -> None:
        self._writer.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _colour_topic(names: Mapping[str, str], compressed: bool) -> str:
    """The colour topic frames are written on ("" = none configured)."""
    if compressed:
        return names.get("colour_compressed") or (
            names["colour"] + "/compressed" if names.get("colour") else ""
        )
    return names.get("colour", "")


def _write_frame(w: BagWriter, f: Frame, names: Mapping[str, str], colour_topic: str,
                 compressed: bool) -> None:
    """One frame's messages at log time = its stamp (see :func:`write_frames`)."""
    enc = w.encoder
    t = f.stamp_ns
    try:
        colour = (enc.compressed_image(f.rgb, t, f.frame_id) if compressed
                  else enc.colour_image(f.rgb, t, f.frame_id))
    except EncodeError as err:
        raise BagError(f"frame at {t} ns: {err}") from err
    w.write(colour_topic, t, colour)
    if f.depth_m is not None and names.get("depth"):
        w.write(names["depth"], t, enc.depth_image(f.depth_m, t, f.frame_id))
    if f.intrinsics is not None and names.get("camera_info"):
        w.write(names["camera_info"], t, enc.camera_info(f.intrinsics, t, f.frame_id))
    if f.pose is not None:
        world = f.world_frame_id or DEFAULT_WORLD_FRAME_ID
        if names.get("pose"):
            w.write(names["pose"], t, enc.pose_stamped(f.pose, t, world))
        elif names.get("odometry"):
            w.write(names["odometry"], t, enc.odometry(f.pose, t, world, f.frame_id))


def write_frames(
    frames: Sequence[Frame],
    path: str | Path,
    topics: FrameTopics,
    storage: Storage = "sqlite3",
    compressed: bool = False,
    version: int = 8,
) -> dict[str, int]:
    """Write frames as the node's camera topics; return messages written per topic.

    Per frame, at log time = its stamp: colour (``topics.colour`` as rgb8 ``Image``, or with
    ``compressed`` a jpeg ``CompressedImage`` on ``topics.colour_compressed``, which defaults to
    ``<topics.colour>/compressed`` as image_transport names it), depth (16UC1 mm) when the frame
    has depth, camera info when it has intrinsics, and the pose (PoseStamped on ``topics.pose``,
    else Odometry on ``topics.odometry``) when it has one.  Frames must be in stamp order.

    Raises:
        BagError: no colour topic configured, stamps going backwards, an image that cannot be
            encoded, or a write failure.
    """
    return write_cameras({DEFAULT_CAMERA: frames}, path, {DEFAULT_CAMERA: topics}, storage,
                         compressed, version)


def write_cameras(
    frames: Mapping[str, Sequence[Frame]],
    path: str | Path,
    topics: Mapping[str, FrameTopics],
    storage: Storage = "sqlite3",
    compressed: bool = False,
    version: int = 8,
) -> dict[str, int]:
    """Write several cameras' frames (camera name -> its frames, each in stamp order) into
    one bag, each camera on its own topics (``topics[name]``), as :func:`write_frames` writes
    one camera; the cameras' messages are merged in stamp order (ties in camera order).

    Raises:
        BagError: as :func:`write_frames`, naming the camera when there are several.
    """
    names = {cam: topics[cam].enabled() for cam in frames}
    colour = {cam: _colour_topic(names[cam], compressed) for cam in frames}
    for cam, topic in colour.items():
        if not topic:
            which = f"camera {cam!r}: " if len(frames) > 1 else ""
            raise BagError(f"{which}no colour topic configured "
                           "(topics.colour / topics.colour_compressed)")
    for cam, seq in frames.items():
        for a, b in itertools.pairwise(seq):
            if b.stamp_ns < a.stamp_ns:
                which = f"camera {cam!r}: " if len(frames) > 1 else ""
                raise BagError(f"{which}frame stamps go backwards at {b.stamp_ns} ns")
    order = list(frames)
    merged = heapq.merge(*([(f.stamp_ns, i, f) for f in frames[cam]]
                           for i, cam in enumerate(order)))
    with BagWriter(path, storage, version) as w:
        for _, i, f in merged:
            cam = order[i]
            _write_frame(w, f, names[cam], colour[cam], compressed)
        return dict(w.counts)
