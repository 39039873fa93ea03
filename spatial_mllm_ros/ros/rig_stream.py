"""``rgbd_stream_publisher --rig``: several cameras, each a
:class:`~spatial_mllm_ros.ros.stream_publisher.StreamPublisher` on its own topics and frames,
published at once (one thread per camera, one node).

:func:`rig_topics` names a camera's topics as ``config/multi_camera.yaml`` expects them;
:func:`rig_frames` gives each camera its frames (the synthetic rig of
:mod:`spatial_mllm_ros.synthetic.rig`, or the procedural stream under the camera's name);
:func:`run_rig` runs the cameras and merges their summaries.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.ros.interrupts import Interrupted
from spatial_mllm_ros.synthetic.procedural import procedural_frames
from spatial_mllm_ros.synthetic.rig import RIG_MOUNTS, make_rig_walkthrough

__all__ = ["RigCamera", "rig_frames", "rig_settings", "rig_topics", "run_rig"]


class RigCamera(Protocol):
    """One camera's publisher (a ``StreamPublisher``)."""

    stop: threading.Event
    good_frames: int

    def run(self) -> dict[str, Any]: ...


class _Settings(Protocol):
    """A ``StreamSettings``: what :func:`rig_settings` reads of it."""

    topics: dict[str, str]
    count: int
    loop: bool
    inject: tuple[str, ...]


SettingsT = TypeVar("SettingsT", bound=_Settings)


def rig_topics(name: str, namespace: str = "") -> dict[str, str]:
    """Camera ``name``'s topics under ``namespace`` ("" = the root): colour, compressed
    colour, aligned depth, camera info and the camera's PoseStamped (no odometry)."""
    base = f"{namespace.rstrip('/')}/{name}"
    return {
        "colour": f"{base}/color/image_raw",
        "colour_compressed": f"{base}/color/image_raw/compressed",
        "depth": f"{base}/aligned_depth_to_color/image_raw",
        "camera_info": f"{base}/color/camera_info",
        "pose": f"{base}/camera_pose",
        "odometry": "",
    }


def rig_frames(source: str, names: Sequence[str], views: int, width: int,
               height: int) -> dict[str, list[Frame]]:
    """Each camera's frames: ``synthetic`` = the synthetic room seen by the rig's cameras
    (names of ``RIG_MOUNTS``) at ``views`` base poses; ``procedural`` = the procedural stream
    under each camera's name and optical frame id.

    Raises:
        ValueError: a synthetic camera that is not one of ``RIG_MOUNTS``.
    """
    if source == "synthetic":
        unknown = [n for n in names if n not in RIG_MOUNTS]
        if unknown:
            raise ValueError(f"--rig: {', '.join(unknown)} not a synthetic rig camera "
                             f"(one of {', '.join(RIG_MOUNTS)})")
        rig = make_rig_walkthrough(0, n_steps=views, width=width, height=height,
                                   cameras=tuple(names))
        return rig.frames
    frames = procedural_frames(max(views, 2) * 4, width, height)
    return {n: [dataclasses.replace(f, camera=n, frame_id=f"{n}_color_optical_frame")
                for f in frames] for n in names}


def rig_settings(base: SettingsT, names: Sequence[str], namespace: str,
                 counts: Mapping[str, int], inject_camera: str) -> dict[str, SettingsT]:
    """Each camera's settings (a dataclass ``base``, a ``StreamSettings``): on its own topics
    (those ``base`` publishes), its own ``count`` when given (then it stops there, ``loop`` or
    not: a camera that stops while the others stream on), the injection only on
    ``inject_camera`` ("" = every camera)."""
    out: dict[str, SettingsT] = {}
    for name in names:
        topics = {k: (t if base.topics.get(k) else "") for k, t in rig_topics(name, namespace)
                  .items()}
        inject = base.inject if inject_camera in ("", name) else ()
        out[name] = dataclasses.replace(  # type: ignore[type-var]
            base, topics=topics, count=counts.get(name, base.count),
            loop=base.loop and name not in counts, inject=inject)
    return out


def run_rig(pubs: Mapping[str, RigCamera]) -> tuple[dict[str, Any], Interrupted | None]:
    """Publish every camera at once; return the merged summary and the signal that ended it
    (None = all done). An :class:`Interrupted` in this thread stops every camera."""
    summaries: dict[str, dict[str, Any]] = {}

    def run(name: str) -> None:
        summaries[name] = pubs[name].run()

    threads = [threading.Thread(target=run, args=(n,), name=f"rig-{n}", daemon=True)
               for n in pubs]
    for t in threads:
        t.start()
    stopped: Interrupted | None = None
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.1)
    except Interrupted as sig:
        stopped = sig
        for p in pubs.values():
            p.stop.set()
        for t in threads:
            t.join(5.0)
    merged: dict[str, Any] = {
        "cameras": {n: summaries.get(n, {}) for n in pubs},
        "good_frames": sum(p.good_frames for p in pubs.values()),
        "subscribers_matched": all(summaries.get(n, {}).get("subscribers_matched")
                                   for n in pubs),
        "interrupted": None if stopped is None else stopped.name,
    }
    return merged, stopped
