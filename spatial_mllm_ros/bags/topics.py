"""The node's camera topics: names per ingestion kind (the kinds, their parameters and the
message types expected on them: :mod:`spatial_mllm_ros.core.topic_kinds`).

Topic names: the node resolves ``~/x`` to ``/<node name>/x`` (``/spatial_mllm/x`` in the root
namespace) and relative names to ``/<name>``; :func:`resolve_topic` does the same, so bags hold
absolute names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spatial_mllm_ros.camera_params import CameraSettings
from spatial_mllm_ros.core.topic_kinds import TOPIC_PARAMS
from spatial_mllm_ros.params import NODE_NAME

__all__ = [
    "TOPIC_PARAMS",
    "FrameTopics",
    "camera_topics",
    "resolve_topic",
    "topics_from_params",
]


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


def camera_topics(
    cameras: Sequence[CameraSettings], node_name: str = NODE_NAME, namespace: str = "/"
) -> dict[str, FrameTopics]:
    """Each camera's topics (``Settings.cameras``: the named cameras' ``camera.<name>.*``, or
    the one ``default`` camera of ``topics.*``), absolute, by camera name."""
    return {
        cam.name: FrameTopics({kind: resolve_topic(cam.topics.get(kind, ""), node_name,
                                                   namespace) for kind in TOPIC_PARAMS})
        for cam in cameras
    }
