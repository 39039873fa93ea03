"""Reading a rosbag2 (sqlite3 or mcap) with ``rosbags``.  Never imports rclpy.

:class:`BagSource` opens a bag, maps the node's configured topics (:class:`FrameTopics`) to
the ingestion topic kinds of :mod:`spatial_mllm_ros.core.ingest`, checks their message types,
and yields deserialised messages in bag (log-time) order.  ``rosbags`` messages carry the same
field names as rclpy messages, so :class:`~spatial_mllm_ros.core.ingest.Ingestor` converts them
with the node's code (:mod:`spatial_mllm_ros.core.convert`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2.errors import ReaderError

from spatial_mllm_ros.bags.errors import (
    BagFormatError,
    BagNotFoundError,
    BagTopicsError,
    EmptyBagError,
)
from spatial_mllm_ros.bags.topics import FrameTopics
from spatial_mllm_ros.bags.typestore import typestore
from spatial_mllm_ros.core.topic_kinds import BY_KIND, COLOUR_KINDS, Kind

__all__ = ["BagInfo", "BagMessage", "BagSource", "CameraPlan", "plan_cameras"]

_READ_ERRORS = (AnyReaderError, ReaderError, ValueError, KeyError, IndexError)


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


class BagSource(AbstractContextManager["BagSource"]):
    """A rosbag2 opened for reading (use as a context manager).

    Raises (on construction):
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
        kinds: dict[str, str] = {}
        wanted = topics.enabled()
        for kind, topic in wanted.items():
            if topic not in self.info.topics:
                continue
            msgtype = self.info.topics[topic][0]
            if msgtype != BY_KIND[kind].msg_type:
                raise BagTopicsError(
                    f"{self.path}: topic {topic} has type {msgtype}, but {BY_KIND[kind].param} "
                    f"expects {BY_KIND[kind].msg_type}"
                    + (
                        " (set topics.colour_compressed for CompressedImage colour)"
                        if msgtype == BY_KIND[Kind.COLOUR_COMPRESSED].msg_type
                        else ""
                    )
                    + f"\nthe bag's topics:\n{self.info.describe_topics()}"
                )
            kinds[topic] = kind
        if not any(k in COLOUR_KINDS for k in kinds.values()):
            configured = [f"{BY_KIND[k].param}={wanted[k]}" for k in COLOUR_KINDS if k in wanted]
            raise BagTopicsError(
                f"{self.path}: none of the configured colour topics is in the bag "
                f"({', '.join(configured) or 'no colour topic configured'})\n"
                f"the bag's topics:\n{self.info.describe_topics()}"
            )
        warnings = [
            f"configured {BY_KIND[kind].param}={topic} is not in the bag (frames will lack {kind})"
            for kind, topic in wanted.items()
            if topic not in self.info.topics and kind not in COLOUR_KINDS
        ]
        return kinds, warnings

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
        except _READ_ERRORS as err:
            raise BagFormatError(f"{self.path}: cannot read a message: {err}") from err

    def raw_messages(self, topics: Collection[str]) -> Iterator[tuple[str, int, bytes]]:
        """(topic, log time ns, serialised CDR bytes) of ``topics``' messages in log-time order.

        Raises:
            BagFormatError: a message cannot be read.
        """
        reader = self._require()
        conns = [c for c in reader.connections if c.topic in topics]
        try:
            for conn, log_time, raw in reader.messages(connections=conns):
                yield conn.topic, int(log_time), bytes(raw)
        except _READ_ERRORS as err:
            raise BagFormatError(f"{self.path}: cannot read a message: {err}") from err

    def _require(self) -> AnyReader:
        if self._reader is None:
            raise BagFormatError(f"{self.path}: the bag is closed")
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class CameraPlan:
    """Several cameras' topics in one bag (:func:`plan_cameras`).

    Attributes:
        kinds: topic -> ingestion kind, for every camera's topics present.
        routes: topic -> the cameras that read it (a pose topic may be the robot's, shared).
        warnings: configured partner topics absent, each naming its camera when several.
    """

    kinds: dict[str, str]
    routes: dict[str, list[str]]
    warnings: list[str]


def plan_cameras(source: BagSource, cameras: Mapping[str, FrameTopics]) -> CameraPlan:
    """:meth:`BagSource.plan` of each camera (camera name -> its topics).

    Raises:
        BagTopicsError: as :meth:`BagSource.plan`, for a camera, named when there are several.
    """
    kinds: dict[str, str] = {}
    routes: dict[str, list[str]] = {}
    warnings: list[str] = []
    several = len(cameras) > 1
    for cam, topics in cameras.items():
        try:
            own, said = source.plan(topics)
        except BagTopicsError as err:
            if not several:
                raise
            raise BagTopicsError(f"camera {cam!r}: {err}") from err
        warnings += [f"camera {cam!r}: {w}" for w in said] if several else said
        kinds.update(own)
        for topic in own:
            routes.setdefault(topic, []).append(cam)
    return CameraPlan(kinds, routes, warnings)
