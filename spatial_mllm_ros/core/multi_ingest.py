"""Several cameras into one buffer: one :class:`~spatial_mllm_ros.core.ingest.Ingestor` per
camera.  Never imports rclpy.

Each camera is paired on its own -- its own pairing queues, latched camera info, pose history,
clock rules and counters: the one-camera machinery, instantiated once per camera -- and writes
to the shared store through a :class:`~spatial_mllm_ros.core.camera_store.CameraStore` (frames
named by their camera; a mounted camera's base pose composed with its extrinsic). So a camera
that stops, sends camera info that lies or has no pose affects only its own frames; a new time
base on one camera (its clock jumps, its bag restarts) drops that camera's frames and pairing
state only. A topic may feed several cameras (the robot's one odometry topic, with each
camera's extrinsic): its messages go to each of them. The one camera of ``topics.*``
(``default``) writes to the store directly, exactly as before there were several.

Used by the node (one subscription per topic, :attr:`MultiIngestor.routes`) and by the offline
evaluator (a bag's messages by topic).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spatial_mllm_ros.camera_params import DEFAULT_CAMERA, CameraSettings
from spatial_mllm_ros.core.buffer import SharedFrameStore
from spatial_mllm_ros.core.camera_store import CameraStore, LastPose
from spatial_mllm_ros.core.counters import IngestCounters
from spatial_mllm_ros.core.errors import FrameRejected
from spatial_mllm_ros.core.ingest import (
    IngestConfig,
    Ingestor,
    IngestResult,
    PoseLookup,
    StreamHealth,
)

__all__ = ["CameraFeed", "MultiIngestor", "TopicRoute"]


@dataclass(frozen=True)
class CameraFeed:
    """One camera's ingestion.

    Attributes:
        camera: the camera (its name; its extrinsic, if mounted on the base).
        config: its ingestion rules (``Settings.camera_ingest``: partners from its topics).
        topics: topic kind -> topic name as it arrives ("" = off).
        pose_lookup: its tf2 lookup, if any.
    """

    camera: CameraSettings
    config: IngestConfig
    topics: Mapping[str, str]
    pose_lookup: PoseLookup | None = None


@dataclass(frozen=True)
class TopicRoute:
    """One topic and the cameras its messages go to.

    Attributes:
        topic: the topic name.
        kind: its topic kind (``colour``, ``depth``, ``camera_info``, ``pose``, ...).
        cameras: the cameras that read it, in ``cameras`` order.
    """

    topic: str
    kind: str
    cameras: tuple[str, ...]


class MultiIngestor:
    """The cameras' ingestors over one store (see the module).

    Raises (on construction):
        ValueError: a topic given two kinds (one camera's depth another's colour).
    """

    def __init__(self, store: SharedFrameStore, feeds: Sequence[CameraFeed]) -> None:
        self.store = store
        one = [f.camera.name for f in feeds] == [DEFAULT_CAMERA]
        self._camera_stores: dict[str, CameraStore] = {} if one else {
            f.camera.name: CameraStore(store, f.camera) for f in feeds}
        self.ingestors: dict[str, Ingestor] = {
            f.camera.name: Ingestor(self._camera_stores.get(f.camera.name, store), f.config,
                                    f.pose_lookup)
            for f in feeds
        }
        routes: dict[str, TopicRoute] = {}
        for f in feeds:
            for kind, topic in f.topics.items():
                if not topic:
                    continue
                had = routes.get(topic)
                if had is not None and had.kind != kind:
                    raise ValueError(f"topic {topic} is {had.kind} of camera "
                                     f"{had.cameras[0]!r} and {kind} of {f.camera.name!r}")
                cams = (had.cameras if had is not None else ()) + (f.camera.name,)
                routes[topic] = TopicRoute(topic, kind, cams)
        self.routes: dict[str, TopicRoute] = routes

    @property
    def several(self) -> bool:
        """Whether the cameras are named (``cameras``), not the one of ``topics.*``."""
        return list(self.ingestors) != [DEFAULT_CAMERA]

    def config_of(self, topic: str) -> IngestConfig:
        """The ingestion rules of (the first camera reading) ``topic``."""
        return self.ingestors[self.routes[topic].cameras[0]].config

    def ingest(self, topic: str, msg: Any, now_ns: int, receive_ns: int | None = None
               ) -> list[tuple[str, IngestResult]]:
        """Give a message of ``topic`` to each camera that reads it; (camera, result) each."""
        route = self.routes[topic]
        return [(cam, self.ingestors[cam].ingest(route.kind, msg, now_ns, receive_ns))
                for cam in route.cameras]

    def reject(self, topic: str, rejection: FrameRejected, now_ns: int
               ) -> list[tuple[str, IngestResult]]:
        """Count a message of ``topic`` refused before conversion, for each of its cameras."""
        route = self.routes[topic]
        return [(cam, self.ingestors[cam].reject(route.kind, rejection, now_ns))
                for cam in route.cameras]

    def poll(self, now_ns: int) -> None:
        """Each camera's frames whose wait for partners has expired."""
        for ingestor in self.ingestors.values():
            ingestor.poll(now_ns)

    def flush(self) -> None:
        """Every camera's waiting frames, now."""
        for ingestor in self.ingestors.values():
            ingestor.flush()

    def last_poses(self) -> dict[str, LastPose | None]:
        """Each named camera's latest frame's pose in the world (none for the one camera of
        ``topics.*``)."""
        return {cam: s.last_pose for cam, s in self._camera_stores.items()}

    def take_events(self) -> list[str]:
        """Each camera's clock events (named by camera when there are several)."""
        out: list[str] = []
        for cam, ingestor in self.ingestors.items():
            events = ingestor.take_events()
            out += [f"camera {cam!r}: {e}" for e in events] if self.several else events
        return out

    def stream_health(self, publishers: Mapping[str, int], now_ns: int, silent_ns: int
                      ) -> dict[str, list[StreamHealth]]:
        """Each camera's configured topics' health (``Ingestor.stream_health``), from
        ``publishers``: topic name -> its publisher count."""
        out: dict[str, list[StreamHealth]] = {}
        for cam, ingestor in self.ingestors.items():
            kinds = {r.kind: publishers.get(r.topic, 0) for r in self.routes.values()
                     if cam in r.cameras}
            out[cam] = ingestor.stream_health(kinds, now_ns, silent_ns)
        return out

    def camera_counts(self) -> dict[str, IngestCounters]:
        """Each camera's own counters."""
        return {cam: ingestor.counts() for cam, ingestor in self.ingestors.items()}

    def counts(self) -> IngestCounters:
        """One camera's counters as they are; several cameras' added up (the shared store's
        frames and bytes once), with each camera's own in ``cameras``."""
        per = self.camera_counts()
        if not self.several:
            return next(iter(per.values()))
        return IngestCounters.total(per)

    def camera_counters(self) -> dict[str, dict[str, int]]:
        """Each camera's own counters, flat (``IngestCounters.flat``)."""
        return {cam: counts.flat() for cam, counts in self.camera_counts().items()}

    def counters(self) -> dict[str, int]:
        """:meth:`counts` flat: several cameras' also as ``camera.<name>.<key>`` for each
        camera's ``in.*``, ``pair.*`` and ``frames.*``."""
        return self.counts().flat()
