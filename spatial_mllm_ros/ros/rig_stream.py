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

import numpy as np

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.poses import rigid_transform
from spatial_mllm_ros.ros.interrupts import Interrupted
from spatial_mllm_ros.synthetic.procedural import procedural_frames
from spatial_mllm_ros.synthetic.rig import RIG_MOUNTS, make_rig_walkthrough, rig_extrinsic

__all__ = ["RIG_BASE", "RigCamera", "rig_frames", "rig_settings", "rig_topics", "run_rig"]

#: the rig's base (``--rig-odometry``): its odometry publisher, beside the cameras
RIG_BASE = "base"


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
    colour_format: Any


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
               height: int, base: bool = False) -> dict[str, list[Frame]]:
    """Each camera's frames: ``synthetic`` = the synthetic room seen by the rig's cameras
    (names of ``RIG_MOUNTS``) at ``views`` base poses; ``procedural`` = the procedural stream
    under each camera's name and optical frame id. With ``base`` (synthetic only), also
    :data:`RIG_BASE`'s: the first camera's frames with the base's pose (``base_link`` in the
    world), whose odometry ``--rig-odometry`` publishes.

    Raises:
        ValueError: a synthetic camera that is not one of ``RIG_MOUNTS``; ``base`` of a
            procedural rig (its cameras have no mounts).
    """
    if source == "synthetic":
        unknown = [n for n in names if n not in RIG_MOUNTS]
        if unknown:
            raise ValueError(f"--rig: {', '.join(unknown)} not a synthetic rig camera "
                             f"(one of {', '.join(RIG_MOUNTS)})")
        rig = make_rig_walkthrough(0, n_steps=views, width=width, height=height,
                                   cameras=tuple(names))
        if not base:
            return rig.frames
        unmount = np.linalg.inv(rigid_transform(*_mount(names[0])))
        return {**rig.frames, RIG_BASE: [
            dataclasses.replace(f, camera=RIG_BASE, frame_id="base_link",
                                pose=None if f.pose is None else f.pose @ unmount)
            for f in rig.frames[names[0]]]}
    if base:
        raise ValueError("--rig-odometry needs --source synthetic (the rig's mounts)")
    frames = procedural_frames(max(views, 2) * 4, width, height)
    return {n: [dataclasses.replace(f, camera=n, frame_id=f"{n}_color_optical_frame")
                for f in frames] for n in names}


def _mount(name: str) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    e = rig_extrinsic(name)
    return e.translation, e.rotation_xyzw


def rig_settings(base: SettingsT, names: Sequence[str], namespace: str,
                 counts: Mapping[str, int], inject_camera: str, odometry: str = ""
                 ) -> dict[str, SettingsT]:
    """Each camera's settings (a dataclass ``base``, a ``StreamSettings``): on its own topics
    (those ``base`` publishes), its own ``count`` when given (then it stops there, ``loop`` or
    not: a camera that stops while the others stream on), the injection only on
    ``inject_camera`` ("" = every camera). With ``odometry`` (a topic), also
    :data:`RIG_BASE`'s: the base's odometry on that topic only, at the cameras' rate."""
    out: dict[str, SettingsT] = {}
    for name in names:
        topics = {k: (t if base.topics.get(k) else "") for k, t in rig_topics(name, namespace)
                  .items()}
        inject = base.inject if inject_camera in ("", name) else ()
        out[name] = dataclasses.replace(  # type: ignore[type-var]
            base, topics=topics, count=counts.get(name, base.count),
            loop=base.loop and name not in counts, inject=inject)
    if odometry:
        out[RIG_BASE] = dataclasses.replace(  # type: ignore[type-var]
            base, topics={k: (odometry if k == "odometry" else "") for k in base.topics},
            inject=(), colour_format="raw")
    return out


def run_rig(pubs: Mapping[str, RigCamera]) -> tuple[dict[str, Any], Interrupted | None]:
    """Publish every camera (and :data:`RIG_BASE`'s odometry, if in ``pubs``) at once; return
    the merged summary (the base's apart, under ``base``, out of ``good_frames``) and the
    signal that ended it (None = all done). An :class:`Interrupted` in this thread stops
    every camera."""
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
        "cameras": {n: summaries.get(n, {}) for n in pubs if n != RIG_BASE},
        "good_frames": sum(p.good_frames for n, p in pubs.items() if n != RIG_BASE),
        "subscribers_matched": all(summaries.get(n, {}).get("subscribers_matched")
                                   for n in pubs),
        "interrupted": None if stopped is None else stopped.name,
    }
    if RIG_BASE in pubs:
        merged[RIG_BASE] = summaries.get(RIG_BASE, {})
    return merged, stopped
