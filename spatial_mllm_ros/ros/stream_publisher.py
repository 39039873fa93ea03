"""``rgbd_stream_publisher``: publishes an RGB-D camera stream over real ROS topics.

Per frame slot it publishes a colour ``Image`` (or ``CompressedImage``), an aligned depth
``Image`` (16UC1 mm or 32FC1 m), a ``CameraInfo`` and a ``PoseStamped`` of the camera optical
frame, all with the same stamp, at ``--rate`` Hz (default 30, 640x480).

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

At the end one JSON line is printed on stdout: messages published per topic kind, injected
counts and the good-frame count, for accounting checks.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.publisher import Publisher
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from spatial_mllm_ros.core.frame import DEFAULT_WORLD_FRAME_ID, Frame
from spatial_mllm_ros.ros.conversions import ENCODER
from spatial_mllm_ros.ros.matching import wait_subscribed
from spatial_mllm_ros.ros.qos import camera_qos
from spatial_mllm_ros.synthetic.faults import INJECT_KINDS, faulty_message, inject_schedule
from spatial_mllm_ros.synthetic.procedural import ping_pong, procedural_frames

__all__ = ["StreamPublisher", "StreamSettings", "build_parser", "main"]


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
    })
    reliability: str = "best_effort"
    qos_depth: int = 10
    inject: tuple[str, ...] = ()
    inject_count: int = 3
    good_after: int = 0
    wait_subscribers_s: float = 10.0
    wait_for_node: str = ""  # wait for this node's subscriptions, not for any subscriber


class StreamPublisher:
    """Publishes frames of a source as camera messages, with optional fault injection."""

    def __init__(self, node: Node, frames: Sequence[Frame], settings: StreamSettings) -> None:
        if not frames:
            raise ValueError("the source has no frames")
        self.node = node
        self.frames = frames
        self.s = settings
        qos = camera_qos(settings.reliability, settings.qos_depth)
        types: dict[str, type] = {
            "colour": Image, "colour_compressed": CompressedImage, "depth": Image,
            "camera_info": CameraInfo, "pose": PoseStamped,
        }
        self.pubs: dict[str, Publisher[Any]] = {
            k: node.create_publisher(types[k], t, qos) for k, t in settings.topics.items() if t
        }
        self.published: dict[str, int] = dict.fromkeys(self.pubs, 0)
        self.injected: dict[str, int] = {}
        self.good_frames = 0
        self._last_colour_ns = 0

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

    # ------------------------------------------------------------------- slots
    def publish_good(self, index: int, stamp_ns: int) -> None:
        """Colour + depth + camera info + pose of view ``index`` with ``stamp_ns``."""
        fr = self.frames[ping_pong(len(self.frames), index)]
        if "colour" in self.pubs and self.s.colour_format == "raw":
            self._publish("colour", ENCODER.colour_image(fr.rgb, stamp_ns, fr.frame_id,
                                                         self.s.colour_encoding))
        elif self.s.colour_format != "raw":
            self._publish("colour_compressed",
                          ENCODER.compressed_image(fr.rgb, stamp_ns, fr.frame_id,
                                                   self.s.colour_format))
        if fr.depth_m is not None and "depth" in self.pubs:
            self._publish("depth", ENCODER.depth_image(fr.depth_m, stamp_ns, fr.frame_id,
                                                       self.s.depth_encoding))
        if fr.intrinsics is not None and "camera_info" in self.pubs:
            self._publish("camera_info",
                          ENCODER.camera_info(fr.intrinsics, stamp_ns, fr.frame_id))
        if fr.pose is not None and "pose" in self.pubs:
            self._publish("pose", ENCODER.pose_stamped(
                fr.pose, stamp_ns, fr.world_frame_id or DEFAULT_WORLD_FRAME_ID))
        self._last_colour_ns = stamp_ns
        self.good_frames += 1

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

    def run(self) -> dict[str, Any]:
        """Publish the plan at the rate (forever with ``loop``); return the summary."""
        plan = self.schedule()
        kinds = {self._colour_kind(), "depth", "camera_info", "pose"} & set(self.pubs)
        kinds |= {INJECT_KINDS[k][0] for k in self.s.inject}
        matched = self.wait_for_subscribers(sorted(kinds))
        period_ns = int(1e9 / self.s.rate_hz)
        start_stamp = time.time_ns()
        t0 = time.monotonic_ns()
        slot = good_index = 0
        good_stamps: collections.deque[int] = collections.deque(maxlen=100_000)
        while rclpy.ok():
            if slot >= len(plan):
                if not self.s.loop:
                    break
                slot = 0
                plan = [None] * max(self.s.count, 1)
            due = t0 + (slot_total := self.good_frames + sum(self.injected.values())) * period_ns
            delay = (due - time.monotonic_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
            stamp = start_stamp + slot_total * period_ns
            kind = plan[slot]
            if kind is None:
                self.publish_good(good_index, stamp)
                good_stamps.append(stamp)
                good_index += 1
            else:
                self.publish_bad(kind, stamp)
            slot += 1
        if self.s.reliability == "reliable":
            for pub in self.pubs.values():
                pub.wait_for_all_acked(rclpy.duration.Duration(seconds=5.0))
        return {
            "published": self.published,
            "injected": self.injected,
            "good_frames": self.good_frames,
            "subscribers_matched": matched,
            "first_stamp_ns": start_stamp,
            "good_stamps_ns": list(good_stamps),  # the last 100,000 with --loop
        }


# --------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rgbd_stream_publisher", description=__doc__,
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
    return p


def _frames(a: argparse.Namespace) -> list[Frame]:
    if a.source == "folder":
        if a.folder is None:
            raise SystemExit("--source folder needs --folder")
        from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir

        return load_rgbd_dir(a.folder)
    if a.source == "synthetic":
        from spatial_mllm_ros.synthetic import make_walkthrough

        return list(make_walkthrough(0, n_frames=a.views, width=a.width, height=a.height).frames)
    return procedural_frames(max(a.views, 2) * 4, a.width, a.height)


def main(argv: list[str] | None = None) -> int:
    args_all = sys.argv if argv is None else ["rgbd_stream_publisher", *argv]
    cli = rclpy.utilities.remove_ros_args(args_all)[1:]
    a = build_parser().parse_args(cli)
    inject = tuple(k for k in a.inject.split(",") if k)
    for k in inject:
        if k not in INJECT_KINDS:
            raise SystemExit(f"unknown --inject kind {k!r}; one of {', '.join(INJECT_KINDS)}")
    settings = StreamSettings(
        rate_hz=a.rate, count=a.count, loop=a.loop, colour_format=a.colour_format,
        colour_encoding=a.colour_encoding, depth_encoding=a.depth_encoding,
        topics={k: getattr(a, f"{k}_topic") for k in StreamSettings().topics},
        reliability=a.reliability, qos_depth=a.qos_depth, inject=inject,
        inject_count=a.inject_count, good_after=a.good_after,
        wait_subscribers_s=a.wait_subscribers, wait_for_node=a.wait_for_node,
    )
    frames = _frames(a)
    rclpy.init(args=args_all)
    node = Node("rgbd_stream_publisher")
    try:
        summary = StreamPublisher(node, frames, settings).run()
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
