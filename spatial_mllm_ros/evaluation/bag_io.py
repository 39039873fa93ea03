"""rosbag2 reading and writing with ``rosbags`` (sqlite3 and mcap storage).  Never imports rclpy.

Reading: :class:`BagSource` opens a bag, maps the node's configured topics (parameters
``topics.*`` of :mod:`spatial_mllm_ros.params`) to the ingestion topic kinds of
:mod:`spatial_mllm_ros.core.ingest`, checks their message types, and yields deserialised
messages in bag (log-time) order.  ``rosbags`` messages carry the same field names as rclpy
messages, so :class:`~spatial_mllm_ros.core.ingest.Ingestor` converts them with the node's code.

Writing: :class:`BagWriter` writes messages built from :class:`~spatial_mllm_ros.core.frame.Frame`
records with ``rosbags``' typestore of ROS 2 Jazzy message definitions (``sensor_msgs``,
``geometry_msgs``, ``nav_msgs`` are identical from Humble to Kilted).  Bags use rosbag2
metadata version 8 by default (readable by ``ros2 bag`` from Iron on; Jazzy writes 8 or 9).

Topic names: the node resolves ``~/x`` to ``/<node name>/x`` (``/spatial_mllm/x`` in the root
namespace) and relative names to ``/<name>``; :func:`resolve_topic` does the same, so bags hold
absolute names.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.errors import ReaderError, WriterError
from rosbags.rosbag2.writer import StoragePlugin
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame
from spatial_mllm_ros.evaluation.errors import EvaluationError
from spatial_mllm_ros.params import NODE_NAME

__all__ = [
    "EXPECTED_TYPES",
    "TOPIC_PARAMS",
    "BagError",
    "BagFormatError",
    "BagInfo",
    "BagMessage",
    "BagNotFoundError",
    "BagSource",
    "BagTopicsError",
    "BagWriter",
    "EmptyBagError",
    "FrameTopics",
    "camera_info_msg",
    "colour_msg",
    "compressed_msg",
    "depth_msg",
    "odometry_msg",
    "pose_stamped_msg",
    "resolve_topic",
    "rotation_to_quaternion",
    "topics_from_params",
    "typestore",
    "write_frames",
]

Storage = Literal["sqlite3", "mcap"]

#: ingestion topic kind -> parameter holding its topic name
TOPIC_PARAMS: dict[str, str] = {
    "colour": "topics.colour",
    "colour_compressed": "topics.colour_compressed",
    "depth": "topics.depth",
    "camera_info": "topics.camera_info",
    "pose": "topics.pose",
    "odometry": "topics.odometry",
}

#: ingestion topic kind -> ROS 2 message type expected on it
EXPECTED_TYPES: dict[str, str] = {
    "colour": "sensor_msgs/msg/Image",
    "colour_compressed": "sensor_msgs/msg/CompressedImage",
    "depth": "sensor_msgs/msg/Image",
    "camera_info": "sensor_msgs/msg/CameraInfo",
    "pose": "geometry_msgs/msg/PoseStamped",
    "odometry": "nav_msgs/msg/Odometry",
}

_COLOUR_KINDS = ("colour", "colour_compressed")


# ----------------------------------------------------------------------------- errors
class BagError(EvaluationError):
    """Base class of bag reading/writing errors (the message says what and where)."""


class BagNotFoundError(BagError):
    """The bag path does not exist."""


class BagFormatError(BagError):
    """The path is not a readable rosbag2 (no metadata, unknown storage, corrupt file)."""


class EmptyBagError(BagError):
    """The bag holds no messages."""


class BagTopicsError(BagError):
    """The bag lacks the configured topics, or a topic has an unexpected message type."""


# ----------------------------------------------------------------------------- topics
def resolve_topic(name: str, node_name: str = NODE_NAME, namespace: str = "/") -> str:
    """Absolute topic name as the node resolves ``name`` ('' stays '' = disabled)."""
    name = name.strip()
    if not name:
        return ""
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    if name.startswith("~"):
        rest = name[1:].lstrip("/")
        return f"{ns}/{node_name}" + (f"/{rest}" if rest else "")
    if name.startswith("/"):
        return name
    return f"{ns}/{name}"


@dataclass(frozen=True)
class FrameTopics:
    """Topic name per ingestion kind ('' = disabled), absolute."""

    names: dict[str, str]

    def enabled(self) -> dict[str, str]:
        """kind -> topic for the kinds with a topic."""
        return {k: v for k, v in self.names.items() if v}

    def with_overrides(self, overrides: Mapping[str, str]) -> FrameTopics:
        """A copy with ``kind -> topic`` overrides (unknown kinds raise ValueError)."""
        names = dict(self.names)
        for kind, topic in overrides.items():
            if kind not in TOPIC_PARAMS:
                raise ValueError(
                    f"unknown topic kind {kind!r}; expected one of {', '.join(TOPIC_PARAMS)}"
                )
            names[kind] = resolve_topic(topic)
        return FrameTopics(names)


def topics_from_params(
    params: Mapping[str, Any], node_name: str = NODE_NAME, namespace: str = "/"
) -> FrameTopics:
    """The node's topics from a parameter set (``params.load_profile`` / ``defaults``)."""
    return FrameTopics(
        {
            kind: resolve_topic(str(params.get(p, "")), node_name, namespace)
            for kind, p in TOPIC_PARAMS.items()
        }
    )


# ----------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class BagInfo:
    """What a bag holds.

    Attributes:
        path: the bag directory.
        storage: storage plugin id(s) of its files (``sqlite3``, ``mcap``).
        topics: topic -> (message type, message count).
        start_ns, end_ns: first and last log time, nanoseconds.
        message_count: all messages.
    """

    path: Path
    storage: str
    topics: dict[str, tuple[str, int]]
    start_ns: int
    end_ns: int
    message_count: int

    def describe_topics(self) -> str:
        """One line per topic: ``name [type] (N msgs)``."""
        if not self.topics:
            return "  (no topics)"
        return "\n".join(
            f"  {t} [{ty}] ({n} msgs)" for t, (ty, n) in sorted(self.topics.items())
        )


@dataclass(frozen=True)
class BagMessage:
    """One deserialised message with its ingestion kind and log (receive) time."""

    kind: str
    topic: str
    log_time_ns: int
    msg: Any


def typestore() -> Typestore:
    """The ROS 2 Jazzy typestore (standard message definitions)."""
    return get_typestore(Stores.ROS2_JAZZY)


def _bag_dir(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise BagNotFoundError(f"bag not found: {p}")
    if p.is_file():  # a .db3 / .mcap file inside a bag directory
        if (p.parent / "metadata.yaml").exists():
            return p.parent
        raise BagFormatError(
            f"{p} is a file; give the rosbag2 directory (with metadata.yaml) instead"
        )
    if not (p / "metadata.yaml").exists():
        raise BagFormatError(f"{p} is not a rosbag2 directory: metadata.yaml is missing")
    return p


@dataclass
class _Plan:
    kinds: dict[str, str] = field(default_factory=dict)  # topic -> kind
    warnings: list[str] = field(default_factory=list)


class BagSource:
    """A rosbag2 opened for evaluation (use as a context manager).

    Raises (on construction / :meth:`open`):
        BagNotFoundError, BagFormatError, EmptyBagError.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = _bag_dir(path)
        self._reader: AnyReader | None = None
        self.info = self._open()

    def _open(self) -> BagInfo:
        try:
            reader = AnyReader([self.path], default_typestore=typestore())
            reader.open()
        except (AnyReaderError, ReaderError, OSError, ValueError, KeyError) as err:
            raise BagFormatError(f"{self.path}: cannot open the bag: {err}") from err
        self._reader = reader
        counts: dict[str, int] = {}
        types: dict[str, str] = {}
        for conn in reader.connections:
            counts[conn.topic] = counts.get(conn.topic, 0) + int(conn.msgcount)
            types[conn.topic] = conn.msgtype
        suffixes = {f.suffix for f in self.path.iterdir()}
        storage = ",".join(
            name for name, suf in (("sqlite3", ".db3"), ("mcap", ".mcap")) if suf in suffixes
        ) or "unknown"
        total = sum(counts.values())
        if total == 0:
            self.close()
            raise EmptyBagError(f"{self.path}: the bag holds no messages")
        return BagInfo(
            path=self.path,
            storage=storage,
            topics={t: (types[t], counts[t]) for t in counts},
            start_ns=int(reader.start_time),
            end_ns=int(reader.end_time),
            message_count=total,
        )

    # ------------------------------------------------------------------ plan
    def plan(self, topics: FrameTopics) -> tuple[dict[str, str], list[str]]:
        """Map the bag's topics to ingestion kinds.

        Returns:
            (topic -> kind for the configured topics present, warnings about configured
            partner topics that are absent).

        Raises:
            BagTopicsError: no configured colour topic is in the bag, or a configured topic has
                another message type than its kind expects (both list the bag's topics).
        """
        plan = _Plan()
        wanted = topics.enabled()
        for kind, topic in wanted.items():
            if topic not in self.info.topics:
                continue
            msgtype = self.info.topics[topic][0]
            if msgtype != EXPECTED_TYPES[kind]:
                raise BagTopicsError(
                    f"{self.path}: topic {topic} has type {msgtype}, but {TOPIC_PARAMS[kind]} "
                    f"expects {EXPECTED_TYPES[kind]}"
                    + (
                        " (set topics.colour_compressed for CompressedImage colour)"
                        if msgtype == EXPECTED_TYPES["colour_compressed"]
                        else ""
                    )
                    + f"\nthe bag's topics:\n{self.info.describe_topics()}"
                )
            plan.kinds[topic] = kind
        if not any(k in _COLOUR_KINDS for k in plan.kinds.values()):
            configured = [f"{TOPIC_PARAMS[k]}={wanted[k]}" for k in _COLOUR_KINDS if k in wanted]
            raise BagTopicsError(
                f"{self.path}: none of the configured colour topics is in the bag "
                f"({', '.join(configured) or 'no colour topic configured'})\n"
                f"the bag's topics:\n{self.info.describe_topics()}"
            )
        for kind, topic in wanted.items():
            if topic not in self.info.topics and kind not in _COLOUR_KINDS:
                plan.warnings.append(
                    f"configured {TOPIC_PARAMS[kind]}={topic} is not in the bag "
                    f"(frames will lack {kind})"
                )
        return plan.kinds, plan.warnings

    # -------------------------------------------------------------- messages
    def messages(self, topic_kinds: Mapping[str, str]) -> Iterator[BagMessage]:
        """Deserialised messages of ``topic_kinds``' topics in log-time order.

        Raises:
            BagFormatError: a message cannot be read or deserialised.
        """
        reader = self._require()
        conns = [c for c in reader.connections if c.topic in topic_kinds]
        try:
            for conn, log_time, raw in reader.messages(connections=conns):
                msg = reader.deserialize(raw, conn.msgtype)
                yield BagMessage(topic_kinds[conn.topic], conn.topic, int(log_time), msg)
        except (AnyReaderError, ReaderError, ValueError, KeyError, IndexError) as err:
            raise BagFormatError(f"{self.path}: cannot read a message: {err}") from err

    def _require(self) -> AnyReader:
        if self._reader is None:
            raise BagFormatError(f"{self.path}: the bag is closed")
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> BagSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ----------------------------------------------------------------------------- messages
def _header(ts: Typestore, stamp_ns: int, frame_id: str) -> Any:
    t = ts.types["builtin_interfaces/msg/Time"](
        sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000)
    )
    return ts.types["std_msgs/msg/Header"](stamp=t, frame_id=frame_id)


def colour_msg(ts: Typestore, rgb: npt.NDArray[np.uint8], stamp_ns: int, frame_id: str) -> Any:
    """``sensor_msgs/Image`` rgb8 from an (H, W, 3) uint8 RGB image."""
    h, w = int(rgb.shape[0]), int(rgb.shape[1])
    data = np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1)
    return ts.types["sensor_msgs/msg/Image"](
        header=_header(ts, stamp_ns, frame_id), height=h, width=w, encoding="rgb8",
        is_bigendian=0, step=3 * w, data=data,
    )


def compressed_msg(
    ts: Typestore, rgb: npt.NDArray[np.uint8], stamp_ns: int, frame_id: str,
    fmt: Literal["jpeg", "png"] = "jpeg", jpeg_quality: int = 90,
) -> Any:
    """``sensor_msgs/CompressedImage``; ``format`` as image_transport writes it
    (``rgb8; jpeg compressed bgr8``)."""
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", bgr, params)
    if not ok:
        raise BagError(f"cannot encode a {fmt} image")
    return ts.types["sensor_msgs/msg/CompressedImage"](
        header=_header(ts, stamp_ns, frame_id), format=f"rgb8; {fmt} compressed bgr8",
        data=np.asarray(buf, dtype=np.uint8).reshape(-1),
    )


def depth_msg(
    ts: Typestore, depth_m: npt.NDArray[np.floating], stamp_ns: int, frame_id: str
) -> Any:
    """``sensor_msgs/Image`` 16UC1 millimetres (0 = no measurement) from float metres."""
    d = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    mm = np.clip(np.rint(np.where(d > 0, d, 0.0) * 1000.0), 0, 65535).astype("<u2")
    h, w = int(mm.shape[0]), int(mm.shape[1])
    return ts.types["sensor_msgs/msg/Image"](
        header=_header(ts, stamp_ns, frame_id), height=h, width=w, encoding="16UC1",
        is_bigendian=0, step=2 * w, data=mm.reshape(-1).view(np.uint8),
    )


def camera_info_msg(ts: Typestore, k: CameraIntrinsics, stamp_ns: int, frame_id: str) -> Any:
    """``sensor_msgs/CameraInfo`` of a rectified pinhole camera (no distortion)."""
    kmat = k.matrix
    p = np.zeros((3, 4), dtype=np.float64)
    p[:, :3] = kmat
    roi = ts.types["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return ts.types["sensor_msgs/msg/CameraInfo"](
        header=_header(ts, stamp_ns, frame_id), height=k.height, width=k.width,
        distortion_model="plumb_bob", d=np.zeros(5, dtype=np.float64),
        k=kmat.reshape(-1), r=np.eye(3, dtype=np.float64).reshape(-1), p=p.reshape(-1),
        binning_x=0, binning_y=0, roi=roi,
    )


def rotation_to_quaternion(r: npt.ArrayLike) -> tuple[float, float, float, float]:
    """3x3 rotation -> unit quaternion (x, y, z, w) with w >= 0 (Shepperd's method)."""
    m = np.asarray(r, dtype=np.float64).reshape(3, 3)
    tr = float(np.trace(m))
    if tr > 0.0:
        s = math.sqrt(tr + 1.0) * 2.0
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2.0
        q = (0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2.0
        q = ((m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2.0
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s)
    arr = np.asarray(q, dtype=np.float64)
    arr /= np.linalg.norm(arr)
    if arr[3] < 0:
        arr = -arr
    return float(arr[0]), float(arr[1]), float(arr[2]), float(arr[3])


def _pose(ts: Typestore, pose: npt.NDArray[np.float64]) -> Any:
    x, y, z, w = rotation_to_quaternion(pose[:3, :3])
    t = pose[:3, 3]
    return ts.types["geometry_msgs/msg/Pose"](
        position=ts.types["geometry_msgs/msg/Point"](x=float(t[0]), y=float(t[1]), z=float(t[2])),
        orientation=ts.types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
    )


def pose_stamped_msg(
    ts: Typestore, pose: npt.NDArray[np.float64], stamp_ns: int, world_frame_id: str
) -> Any:
    """``geometry_msgs/PoseStamped`` of the camera optical frame in ``world_frame_id``."""
    return ts.types["geometry_msgs/msg/PoseStamped"](
        header=_header(ts, stamp_ns, world_frame_id), pose=_pose(ts, pose)
    )


def odometry_msg(
    ts: Typestore, pose: npt.NDArray[np.float64], stamp_ns: int, world_frame_id: str,
    child_frame_id: str,
) -> Any:
    """``nav_msgs/Odometry`` of ``child_frame_id`` (the optical frame); zero covariance/twist."""
    vec = ts.types["geometry_msgs/msg/Vector3"]
    twist = ts.types["geometry_msgs/msg/Twist"](linear=vec(x=0.0, y=0.0, z=0.0),
                                               angular=vec(x=0.0, y=0.0, z=0.0))
    return ts.types["nav_msgs/msg/Odometry"](
        header=_header(ts, stamp_ns, world_frame_id),
        child_frame_id=child_frame_id,
        pose=ts.types["geometry_msgs/msg/PoseWithCovariance"](
            pose=_pose(ts, pose), covariance=np.zeros(36, dtype=np.float64)
        ),
        twist=ts.types["geometry_msgs/msg/TwistWithCovariance"](
            twist=twist, covariance=np.zeros(36, dtype=np.float64)
        ),
    )


# ----------------------------------------------------------------------------- writing
class BagWriter:
    """Writes a rosbag2 (context manager).  The output directory must not exist.

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

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


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
        BagError: no colour topic configured, stamps going backwards, or a write failure.
    """
    names = topics.enabled()
    if compressed:
        colour_topic = names.get("colour_compressed") or (
            names["colour"] + "/compressed" if names.get("colour") else ""
        )
    else:
        colour_topic = names.get("colour", "")
    if not colour_topic:
        raise BagError("no colour topic configured (topics.colour / topics.colour_compressed)")
    last = -1
    with BagWriter(path, storage, version) as w:
        ts = w.ts
        for f in frames:
            if f.stamp_ns < last:
                raise BagError(f"frame stamps go backwards at {f.stamp_ns} ns")
            last = f.stamp_ns
            t = f.stamp_ns
            if compressed:
                w.write(colour_topic, t, compressed_msg(ts, f.rgb, t, f.frame_id))
            else:
                w.write(colour_topic, t, colour_msg(ts, f.rgb, t, f.frame_id))
            if f.depth_m is not None and names.get("depth"):
                w.write(names["depth"], t, depth_msg(ts, f.depth_m, t, f.frame_id))
            if f.intrinsics is not None and names.get("camera_info"):
                w.write(names["camera_info"], t, camera_info_msg(ts, f.intrinsics, t, f.frame_id))
            if f.pose is not None:
                world = f.world_frame_id or "map"
                if names.get("pose"):
                    w.write(names["pose"], t, pose_stamped_msg(ts, f.pose, t, world))
                elif names.get("odometry"):
                    w.write(names["odometry"], t, odometry_msg(ts, f.pose, t, world, f.frame_id))
        return dict(w.counts)
