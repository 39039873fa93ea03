"""``rgbd_stream_publisher``: publishes an RGB-D camera stream over real ROS topics.

Per frame slot it publishes a colour ``Image`` (or ``CompressedImage``), an aligned depth
``Image`` (16UC1 mm or 32FC1 m), a ``CameraInfo`` and a ``PoseStamped`` of the camera optical
frame (and/or an ``Odometry``, ``--odometry-topic``), by default all with the same stamp at
the same instant, at ``--rate`` Hz (default 30, 640x480).

Sources (``--source``):
    * ``procedural`` (default): a cheap generated stream (~1 ms per frame) -- a textured wall
      and a box in front of it seen by a camera sliding sideways, with correct parallax,
      consistent depth, intrinsics and poses, and a band without depth (a sensor hole).
      Meant for tests and benchmarks, where rendering must not compete with the node for CPU
      (``spatial_mllm_ros.synthetic.procedural``).
    * ``synthetic``: views of a synthetic room walkthrough (``spatial_mllm_ros.synthetic``),
      ``--views`` of them rendered once at start-up (~0.5 s each) and replayed back and forth.
    * ``folder``: a directory in the ``real_rgbd_shelf`` convention (``--folder``), looped.
Stamps are the publisher's wall clock at the start plus ``i / rate``.

Sensor timing, as a real rig delivers it (``spatial_mllm_ros.synthetic.sensor_timing``):
``--pose-rate`` poses per second on their own clock (0 = one per image, with its stamp), each
the true camera pose at its stamp (the camera moves continuously between the views' poses),
published ``--pose-delay-ms`` + U(0, ``--pose-jitter-ms``) after its stamp; camera info at
``--info-rate`` Hz (0 = with every image) from ``--info-start-s`` on; depth stamped like its
image but published ``--depth-lag-ms`` + U(0, ``--depth-jitter-ms``) later; each message of a
kind dropped with probability ``--drop-prob KIND=P``; all drawn from ``--seed``.  Each stream
keeps its own messages in stamp order.  For example::

    rgbd_stream_publisher --count 300 --pose-rate 100 --pose-delay-ms 200 \
        --pose-jitter-ms 100 --info-rate 1 --info-start-s 2 --depth-lag-ms 50

Fault injection (``--inject kind[,kind...]``): after ``--count`` good frames, each kind is
published ``--inject-count`` times (a bad slot publishes only the malformed message), then
``--good-after`` good frames (messages from ``spatial_mllm_ros.synthetic.faults``).  Kinds
and the rejection reason the node must count:

    wrong_step -> colour bad_step            truncated_data -> colour bad_size
    unknown_encoding -> colour unknown_encoding    empty_image -> colour empty_image
    oversized_image -> colour oversized_image (node image.max_pixels < 4 x frame size)
    nan_depth -> depth bad_depth_values (all NaN/Inf)
    negative_depth -> depth bad_depth_values      missing_intrinsics -> camera_info
    stamp_backwards -> colour stamp_backwards     corrupt_compressed -> colour_compressed
    bad_pose -> pose bad_pose                                                decode_failed

A multi-camera rig (``--rig front,left,right``): one stream per camera, each on its own
topics (``<--rig-namespace>/<name>/color/image_raw``, ``.../color/image_raw/compressed``,
``.../aligned_depth_to_color/image_raw``, ``.../color/camera_info``, ``.../camera_pose``, as
``config/multi_camera.yaml`` names them) and its own frames: with ``--source synthetic`` the
synthetic room seen by the cameras of :data:`~spatial_mllm_ros.synthetic.rig.RIG_MOUNTS` on one
moving base (poses = base pose x extrinsic, shared stamps), with ``procedural`` the procedural
stream under each camera's name. All cameras publish at ``--rate`` with the same sensor
timing; ``--camera-count NAME=N`` stops one camera after N good frames (a camera that stops
mid-stream; under ``--loop`` the others stream on) and ``--inject-camera NAME`` limits
``--inject`` to that camera (one camera with bad camera info: ``--inject missing_intrinsics
--inject-camera left``). The summary is then
``{"cameras": {name: <that camera's summary>}, "good_frames": total,
"subscribers_matched": all cameras', "interrupted": ...}``. ``--rig-odometry TOPIC`` (synthetic)
also publishes the rig base's ``Odometry`` on TOPIC, one per image slot (its summary under
``base``): cameras configured with that odometry and their extrinsics get ``base x extrinsic``.

At the end one JSON line is printed on stdout, for accounting checks: messages published per
topic kind, injected counts, messages dropped per sensor kind, the good-frame count and the
stamps (ns) of the good colour images, depth images, poses and camera infos published (each
list the last 100,000), and the timing settings.  SIGINT or SIGTERM (``--loop`` runs until
one) ends the stream at once: the summary, with ``"interrupted": "SIGINT"``, is still printed,
and the exit status is 130 (SIGINT) or 143 (SIGTERM) instead of 0.  Exit status
(:class:`~spatial_mllm_ros.exitcodes.ExitCode`): OK, USAGE for a bad flag, INPUT for a
``--folder`` that cannot be read, INTERRUPTED / TERMINATED.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import heapq
import itertools
import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import rclpy
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from spatial_mllm_ros.core.errors import RgbdDirError
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.ros.conversions import ENCODER
from spatial_mllm_ros.ros.interrupts import Interrupted, interrupting_signals
from spatial_mllm_ros.ros.matching import wait_subscribed
from spatial_mllm_ros.ros.qos import camera_qos
from spatial_mllm_ros.ros.rig_stream import rig_frames, rig_settings, run_rig
from spatial_mllm_ros.synthetic.errors import SensorTimingError
from spatial_mllm_ros.synthetic.faults import INJECT_KINDS, faulty_message, inject_schedule
from spatial_mllm_ros.synthetic.procedural import procedural_frames
from spatial_mllm_ros.synthetic.sensor_messages import SensorMessages
from spatial_mllm_ros.synthetic.sensor_timing import (
    SENSOR_KINDS,
    SensorEvent,
    SensorSchedule,
    SensorTiming,
)

__all__ = ["StreamPublisher", "StreamSettings", "build_parser", "main"]

PROG = "rgbd_stream_publisher"


# --------------------------------------------------------------------------- publisher
@dataclass
class StreamSettings:
    """What to publish; see ``rgbd_stream_publisher --help``."""

    rate_hz: float = 30.0
    count: int = 90
    loop: bool = False
    colour_format: Literal["raw", "jpeg", "png"] = "raw"
    colour_encoding: str = "rgb8"
    depth_encoding: str = "16UC1"
    topics: dict[str, str] = field(default_factory=lambda: {
        "colour": "/camera/camera/color/image_raw",
        "colour_compressed": "/camera/camera/color/image_raw/compressed",
        "depth": "/camera/camera/aligned_depth_to_color/image_raw",
        "camera_info": "/camera/camera/color/camera_info",
        "pose": "/spatial_mllm/camera_pose",
        "odometry": "",
    })
    reliability: str = "best_effort"
    qos_depth: int = 10
    inject: tuple[str, ...] = ()
    inject_count: int = 3
    good_after: int = 0
    wait_subscribers_s: float = 10.0
    wait_for_node: str = ""  # wait for this node's subscriptions, not for any subscriber
    timing: SensorTiming = field(default_factory=SensorTiming)


@dataclass(frozen=True)
class _Injected:
    """A malformed message of inject kind ``kind``, due ``publish_ns`` after the start (also
    its stamp)."""

    publish_ns: int
    kind: str


_KEEP = 100_000  # stamps kept per list of the summary
#: sources of at most this many views have each view's images encoded once and replayed
#: (SensorMessages' cache_images: ~1.5 MB a 640x480 RGB-D view); longer ones are encoded per
#: message so that memory does not grow with the source
CACHED_VIEWS = 64


class StreamPublisher:
    """Publishes frames of a source as camera messages, with sensor timing and optional fault
    injection."""

    def __init__(self, node: Node, frames: Sequence[Frame], settings: StreamSettings) -> None:
        if not frames:
            raise ValueError("the source has no frames")
        self.node = node
        self.frames = frames
        self.s = settings
        qos = camera_qos(settings.reliability, settings.qos_depth)
        types: dict[str, type] = {
            "colour": Image, "colour_compressed": CompressedImage, "depth": Image,
            "camera_info": CameraInfo, "pose": PoseStamped, "odometry": Odometry,
        }
        self.pubs: dict[str, Publisher[Any]] = {
            k: node.create_publisher(types[k], t, qos) for k, t in settings.topics.items() if t
        }
        self.messages = SensorMessages(ENCODER, frames, self.pubs, settings.colour_format,
                                       settings.colour_encoding, settings.depth_encoding,
                                       cache_images=len(frames) <= CACHED_VIEWS)
        self.published: dict[str, int] = dict.fromkeys(self.pubs, 0)
        self.injected: dict[str, int] = {}
        self.good_frames = 0
        self.stamps: dict[str, collections.deque[int]] = {
            k: collections.deque(maxlen=_KEEP) for k in SENSOR_KINDS}
        self._last_colour_ns = 0
        self.interrupted: Interrupted | None = None  # the signal that ended run(), if any
        #: set to end run() at its next message (another camera's thread was interrupted)
        self.stop = threading.Event()

    # ----------------------------------------------------------------- helpers
    def _publish(self, kind: str, msg: Any) -> None:
        pub = self.pubs.get(kind)
        if pub is None:
            raise ValueError(f"topic for {kind!r} is disabled")
        pub.publish(msg)
        self.published[kind] += 1

    def _colour_kind(self) -> str:
        return "colour" if self.s.colour_format == "raw" else "colour_compressed"

    def wait_for_subscribers(self, kinds: Sequence[str]) -> bool:
        """Wait until every publisher in ``kinds`` is matched (discovery), up to the timeout:
        with a subscription of node ``wait_for_node`` when set, else with any."""
        pubs = [self.pubs[k] for k in kinds if k in self.pubs]
        return not wait_subscribed(self.node, pubs, self.s.wait_subscribers_s,
                                   self.s.wait_for_node)

    # ------------------------------------------------------------------ events
    def publish_event(self, event: SensorEvent, start_stamp_ns: int) -> None:
        """The messages of ``event`` (stamps relative to ``start_stamp_ns``)."""
        stamp = start_stamp_ns + event.stamp_ns
        msgs = self.messages.messages(dataclasses.replace(event, stamp_ns=stamp))
        for kind, msg in msgs:
            self._publish(kind, msg)
        if event.kind == "colour":
            self._last_colour_ns = stamp
            self.good_frames += 1
        if msgs or event.kind == "colour":
            self.stamps[event.kind].append(stamp)

    def publish_bad(self, kind: str, stamp_ns: int) -> None:
        """The malformed message of ``kind`` (only that message) with ``stamp_ns``."""
        topic_kind, msg = faulty_message(ENCODER, kind, self.frames[0], stamp_ns,
                                         self._last_colour_ns)
        self._publish(topic_kind, msg)
        self.injected[kind] = self.injected.get(kind, 0) + 1

    # --------------------------------------------------------------------- run
    def schedule(self) -> list[str | None]:
        """The slot plan: None = a good frame, else an inject kind."""
        return inject_schedule(self.s.count, self.s.inject, self.s.inject_count,
                               self.s.good_after)

    def _good_slots(self, plan: Sequence[str | None], period_ns: int) -> Iterator[int]:
        """Stamps (ns after the start) of the good slots: those of the plan, then (``loop``)
        good slots forever."""
        yield from (i * period_ns for i, kind in enumerate(plan) if kind is None)
        if self.s.loop:
            yield from (i * period_ns for i in itertools.count(len(plan)))

    def run(self) -> dict[str, Any]:
        """Publish the plan at the rate (forever with ``loop``), each message at its publish
        time under the sensor timing; return the summary.  An :class:`Interrupted` (a stop
        signal under ``interrupting_signals``) ends it at once, with the summary so far."""
        plan = self.schedule()
        kinds = {self._colour_kind(), "depth", "camera_info", "pose", "odometry"}
        kinds = (kinds & set(self.pubs)) | {INJECT_KINDS[k][0] for k in self.s.inject}
        period_ns = int(1e9 / self.s.rate_hz)
        sensors = SensorSchedule(self._good_slots(plan, period_ns), self.s.timing)
        bad = (_Injected(i * period_ns, k) for i, k in enumerate(plan) if k is not None)
        events: Iterator[SensorEvent | _Injected] = heapq.merge(
            sensors, bad, key=lambda e: e.publish_ns)
        matched = False
        start_stamp = time.time_ns()
        try:
            matched = self.wait_for_subscribers(sorted(kinds))
            start_stamp = time.time_ns()
            t0 = time.monotonic_ns()
            for event in events:
                if not rclpy.ok() or self.stop.is_set():
                    break
                delay = (t0 + event.publish_ns - time.monotonic_ns()) / 1e9
                if delay > 0:
                    time.sleep(delay)
                if isinstance(event, _Injected):
                    self.publish_bad(event.kind, start_stamp + event.publish_ns)
                else:
                    self.publish_event(event, start_stamp)
        except Interrupted as sig:
            self.interrupted = sig
        if self.s.reliability == "reliable" and self.interrupted is None \
                and not self.stop.is_set():
            for pub in self.pubs.values():
                pub.wait_for_all_acked(rclpy.duration.Duration(seconds=5.0))
        return {
            "published": self.published,
            "injected": self.injected,
            "dropped": sensors.dropped,
            "good_frames": self.good_frames,
            "subscribers_matched": matched,
            "first_stamp_ns": start_stamp,
            "good_stamps_ns": list(self.stamps["colour"]),
            "depth_stamps_ns": list(self.stamps["depth"]),
            "pose_stamps_ns": list(self.stamps["pose"]),
            "camera_info_stamps_ns": list(self.stamps["camera_info"]),
            "timing": dataclasses.asdict(self.s.timing),
            "interrupted": None if self.interrupted is None else self.interrupted.name,
        }


# --------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    """The publisher's flags: the stream, the multi-camera rig, the sensor timing."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = StreamSettings()
    p.add_argument("--source", choices=("procedural", "synthetic", "folder"),
                   default="procedural")
    p.add_argument("--folder", type=Path, help="directory for --source folder")
    p.add_argument("--views", type=int, default=8, help="views rendered for synthetic/procedural")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--rate", type=float, default=d.rate_hz, help="frames per second")
    p.add_argument("--count", type=int, default=d.count, help="good frames before injection")
    p.add_argument("--loop", action="store_true", help="repeat good frames until stopped")
    p.add_argument("--colour-format", choices=("raw", "jpeg", "png"), default="raw")
    p.add_argument("--colour-encoding", choices=("rgb8", "bgr8"), default="rgb8")
    p.add_argument("--depth-encoding", choices=("16UC1", "32FC1"), default="16UC1")
    for k, t in d.topics.items():
        p.add_argument(f"--{k.replace('_', '-')}-topic", default=t,
                       help=f"{k} topic ('' = do not publish)")
    p.add_argument("--reliability", choices=("best_effort", "reliable"), default=d.reliability)
    p.add_argument("--qos-depth", type=int, default=d.qos_depth)
    p.add_argument("--inject", default="", help="comma-separated: " + ", ".join(INJECT_KINDS))
    p.add_argument("--inject-count", type=int, default=d.inject_count)
    p.add_argument("--good-after", type=int, default=d.good_after)
    p.add_argument("--wait-subscribers", type=float, default=d.wait_subscribers_s,
                   help="seconds to wait for subscribers before publishing")
    p.add_argument("--wait-for-node", default=d.wait_for_node, metavar="NAME",
                   help="wait for the subscriptions of this node (name or /namespace/name), "
                        "not for any subscriber of the domain")
    _add_rig_arguments(p)
    _add_timing_arguments(p)
    return p


def _add_rig_arguments(p: argparse.ArgumentParser) -> None:
    """The multi-camera rig's flags (``--rig``, ``--camera-count``, ...)."""
    r = p.add_argument_group("multi-camera rig (spatial_mllm_ros.ros.rig_stream)")
    r.add_argument("--rig", default="", metavar="NAMES",
                   help="comma-separated cameras, each on <ns>/<name>/... topics (synthetic: "
                        "front, left, right on one base); '' = one camera")
    r.add_argument("--rig-namespace", default="", metavar="NS",
                   help="namespace of the rig's camera topics ('' = /<name>/...)")
    r.add_argument("--camera-count", action="append", default=[], metavar="NAME=N",
                   help="camera NAME stops after N good frames (--loop too); repeatable")
    r.add_argument("--inject-camera", default="", metavar="NAME",
                   help="--inject only on this rig camera ('' = all)")
    r.add_argument("--rig-odometry", default="", metavar="TOPIC",
                   help="also the synthetic rig base's nav_msgs/Odometry on TOPIC (each "
                        "camera's pose is then base pose x its extrinsic); '' = none")


def _add_timing_arguments(p: argparse.ArgumentParser) -> None:
    """The sensor timing's flags (rates in Hz, delays and jitter in ms, drop probabilities)."""
    g = p.add_argument_group("sensor timing (spatial_mllm_ros.synthetic.sensor_timing)")
    dt = SensorTiming()
    g.add_argument("--pose-rate", type=float, default=dt.pose_rate_hz, metavar="HZ",
                   help="poses per second on their own clock (0 = one per image, its stamp)")
    g.add_argument("--pose-delay-ms", type=float, default=dt.pose_delay_ms,
                   help="delay from a pose's stamp to its publication")
    g.add_argument("--pose-jitter-ms", type=float, default=dt.pose_jitter_ms,
                   help="extra pose delay, uniform in [0, this]")
    g.add_argument("--info-rate", type=float, default=dt.info_rate_hz, metavar="HZ",
                   help="camera infos per second (0 = with every image)")
    g.add_argument("--info-start-s", type=float, default=dt.info_start_s,
                   help="no camera info before this many seconds after the first image")
    g.add_argument("--depth-lag-ms", type=float, default=dt.depth_lag_ms,
                   help="delay from an image's publication to its depth image's")
    g.add_argument("--depth-jitter-ms", type=float, default=dt.depth_jitter_ms,
                   help="extra depth delay, uniform in [0, this]")
    g.add_argument("--drop-prob", action="append", default=[], metavar="KIND=P",
                   help="drop each message of KIND (" + ", ".join(SENSOR_KINDS)
                        + ") with probability P; repeatable")
    g.add_argument("--seed", type=int, default=dt.seed, help="seeds jitter, drops, pose phase")


def _timing(p: argparse.ArgumentParser, a: argparse.Namespace) -> SensorTiming:
    """The sensor timing of the parsed flags (``p.error`` on invalid ones)."""
    drops: dict[str, float] = {}
    for item in a.drop_prob:
        kind, sep, value = item.partition("=")
        try:
            drops[kind] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            p.error(f"--drop-prob expects KIND=P, got {item!r}")
    try:
        return SensorTiming(
            pose_rate_hz=a.pose_rate, pose_delay_ms=a.pose_delay_ms,
            pose_jitter_ms=a.pose_jitter_ms, info_rate_hz=a.info_rate,
            info_start_s=a.info_start_s, depth_lag_ms=a.depth_lag_ms,
            depth_jitter_ms=a.depth_jitter_ms, drop_prob=drops, seed=a.seed)
    except SensorTimingError as err:
        p.error(str(err))


def _frames(a: argparse.Namespace) -> list[Frame]:
    """The frames of ``--source`` (RgbdDirError for a folder that cannot be read)."""
    if a.source == "folder":
        from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir

        return load_rgbd_dir(a.folder)
    if a.source == "synthetic":
        from spatial_mllm_ros.synthetic import make_walkthrough

        return list(make_walkthrough(0, n_frames=a.views, width=a.width, height=a.height).frames)
    return procedural_frames(max(a.views, 2) * 4, a.width, a.height)


def _camera_counts(p: argparse.ArgumentParser, a: argparse.Namespace,
                   names: Sequence[str]) -> dict[str, int]:
    """``--camera-count NAME=N`` items (``p.error`` on a malformed one or a rig-less use)."""
    if (a.camera_count or a.inject_camera) and not names:
        p.error("--camera-count and --inject-camera need --rig")
    if a.source == "folder" and names:
        p.error("--rig plays --source synthetic or procedural")
    if a.inject_camera and a.inject_camera not in names:
        p.error(f"--inject-camera {a.inject_camera!r} is not in --rig")
    out: dict[str, int] = {}
    for item in a.camera_count:
        name, sep, value = item.partition("=")
        if not sep or name not in names or not value.isdigit():
            p.error(f"--camera-count expects NAME=N with NAME in --rig, got {item!r}")
        out[name] = int(value)
    return out


def _stream_settings(p: argparse.ArgumentParser, a: argparse.Namespace) -> StreamSettings:
    """The stream settings of the parsed flags (``p.error`` on an invalid sensor timing, an
    unknown ``--inject`` kind or ``--source folder`` without ``--folder``)."""
    timing = _timing(p, a)
    inject = tuple(k for k in a.inject.split(",") if k)
    for k in inject:
        if k not in INJECT_KINDS:
            p.error(f"unknown --inject kind {k!r}; one of {', '.join(INJECT_KINDS)}")
    if a.source == "folder" and a.folder is None:
        p.error("--source folder needs --folder DIR")
    return StreamSettings(
        rate_hz=a.rate, count=a.count, loop=a.loop, colour_format=a.colour_format,
        colour_encoding=a.colour_encoding, depth_encoding=a.depth_encoding,
        topics={k: getattr(a, f"{k}_topic") for k in StreamSettings().topics},
        reliability=a.reliability, qos_depth=a.qos_depth, inject=inject,
        inject_count=a.inject_count, good_after=a.good_after,
        wait_subscribers_s=a.wait_subscribers, wait_for_node=a.wait_for_node, timing=timing,
    )


def _exit_status(summary: dict[str, Any] | None, stopped: Interrupted | None) -> int:
    """Print the summary (one JSON line on stdout) if there is one; the exit status: OK, or
    the signal's (with one line on stderr saying how far the stream got)."""
    if summary is not None:
        print(json.dumps(summary), flush=True)
    if stopped is None:
        return ExitCode.OK
    done = "before publishing" if summary is None else f"after {summary['good_frames']} " \
        "good frames"
    print(f"{PROG}: stopped by {stopped.name} {done}", file=sys.stderr)
    return stopped.exit_code


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (130 / 143 when SIGINT / SIGTERM ended it)."""
    args_all = sys.argv if argv is None else ["rgbd_stream_publisher", *argv]
    cli = rclpy.utilities.remove_ros_args(args_all)[1:]
    parser = build_parser()
    a = parser.parse_args(cli)
    settings = _stream_settings(parser, a)
    names = [n for n in a.rig.split(",") if n]
    counts = _camera_counts(parser, a, names)
    summary: dict[str, Any] | None = None
    stopped: Interrupted | None = None
    try:
        with interrupting_signals(PROG):
            try:
                frames = _frames(a) if not names else []
                rig = rig_frames(a.source, names, a.views, a.width, a.height,
                                 base=bool(a.rig_odometry)) if names else {}
            except RgbdDirError as err:
                print(f"{PROG}: error: {err}", file=sys.stderr)
                return ExitCode.INPUT
            except ValueError as err:
                parser.error(str(err))
            # rclpy's own handlers would shut the context down under a publish (RCLError)
            rclpy.init(args=args_all, signal_handler_options=SignalHandlerOptions.NO)
            node = Node("rgbd_stream_publisher")
            try:
                if names:
                    each = rig_settings(settings, names, a.rig_namespace, counts,
                                        a.inject_camera, a.rig_odometry)
                    summary, stopped = run_rig(
                        {n: StreamPublisher(node, rig[n], each[n]) for n in each})
                else:
                    publisher = StreamPublisher(node, frames, settings)
                    summary = publisher.run()
                    stopped = publisher.interrupted
            finally:
                node.destroy_node()
                rclpy.try_shutdown()
    except Interrupted as sig:
        stopped = sig
    return _exit_status(summary, stopped)

if __name__ == "__main__":
    sys.exit(main())
