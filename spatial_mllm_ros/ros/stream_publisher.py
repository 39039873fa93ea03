"""``rgbd_stream_publisher``: publishes an RGB-D camera stream over real ROS topics.

Per frame slot it publishes a colour ``Image`` (or ``CompressedImage``), an aligned depth
``Image`` (16UC1 mm or 32FC1 m), a ``CameraInfo`` and a ``PoseStamped`` of the camera optical
frame, all with the same stamp, at ``--rate`` Hz (default 30, 640x480).

Sources (``--source``):
    * ``procedural`` (default): a cheap generated stream (~1 ms per frame) -- a textured wall
      and a box in front of it seen by a camera sliding sideways, with correct parallax,
      consistent depth, intrinsics and poses, and a band without depth (a sensor hole).
      Meant for tests and benchmarks, where rendering must not compete with the node for CPU.
    * ``synthetic``: views of a synthetic room walkthrough (``spatial_mllm_ros.synthetic``),
      ``--views`` of them rendered once at start-up (~0.5 s each) and replayed back and forth.
    * ``folder``: a directory in the ``real_rgbd_shelf`` convention (``--folder``), looped.
Stamps are the publisher's wall clock at the start plus ``i / rate``.

Fault injection (``--inject kind[,kind...]``): after ``--count`` good frames, each kind is
published ``--inject-count`` times (a bad slot publishes only the malformed message), then
``--good-after`` good frames.  Kinds and the rejection reason the node must count:

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
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.publisher import Publisher
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame
from spatial_mllm_ros.ros.conversions import (
    camera_info_msg,
    colour_image_msg,
    compressed_image_msg,
    depth_image_msg,
    header,
    pose_stamped_msg,
)
from spatial_mllm_ros.ros.qos import camera_qos

__all__ = [
    "INJECT_KINDS",
    "StreamPublisher",
    "StreamSettings",
    "folder_frames",
    "main",
    "procedural_frames",
    "synthetic_frames",
]

#: kind -> (topic kind, reason the node must count)
INJECT_KINDS: dict[str, tuple[str, str]] = {
    "wrong_step": ("colour", "bad_step"),
    "truncated_data": ("colour", "bad_size"),
    "unknown_encoding": ("colour", "unknown_encoding"),
    "empty_image": ("colour", "empty_image"),
    "oversized_image": ("colour", "oversized_image"),
    "nan_depth": ("depth", "bad_depth_values"),
    "negative_depth": ("depth", "bad_depth_values"),
    "missing_intrinsics": ("camera_info", "missing_intrinsics"),
    "stamp_backwards": ("colour", "stamp_backwards"),
    "corrupt_compressed": ("colour_compressed", "decode_failed"),
    "bad_pose": ("pose", "bad_pose"),
}

FRAME_ID = "camera_color_optical_frame"
WORLD_FRAME = "map"


# --------------------------------------------------------------------------- sources
def procedural_frames(
    n_views: int = 30, width: int = 640, height: int = 480, wall_m: float = 2.5,
    box_m: float = 1.4, sweep_m: float = 0.6,
) -> list[Frame]:
    """A camera sliding along world x in front of a textured wall with a box before it.

    World frame: z up, the camera optical axis along world +y.  The wall is at ``wall_m``
    and the box face at ``box_m`` from the camera; image content shifts by ``fx * dx / Z``
    between views (true parallax).  Rows 0..height/16 have no depth (a sensor hole).
    """
    f = width / (2.0 * math.tan(math.radians(75.0) / 2.0))
    intr = CameraIntrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height)
    margin = math.ceil(f * sweep_m / box_m) + 2
    cols = np.arange(width + 2 * margin)
    rows = np.arange(height)
    # textures in world units so that motion is consistent
    xw = (cols - margin - intr.cx)[None, :] * wall_m / f
    yw = (rows - intr.cy)[:, None] * wall_m / f
    checker = ((np.floor(xw / 0.25) + np.floor(yw / 0.25)) % 2).astype(np.float32)
    wall = np.empty((height, cols.size, 3), np.uint8)
    wall[..., 0] = (90 + 100 * checker).astype(np.uint8)
    wall[..., 1] = (120 + 60 * np.sin(xw * 4.0) ** 2).astype(np.uint8)
    wall[..., 2] = (160 - 80 * checker).astype(np.uint8)
    box = np.zeros((height, cols.size), bool)
    c0 = margin + width // 2 - width // 8
    box[height // 3: 2 * height // 3, c0: c0 + width // 4] = True
    frames: list[Frame] = []
    r_world_cam = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # optical -> z-up world
    for i in range(n_views):
        dx = sweep_m * math.sin(2 * math.pi * i / max(n_views, 1))
        shift_wall = round(f * dx / wall_m)
        shift_box = round(f * dx / box_m)
        rgb = wall[:, margin + shift_wall: margin + shift_wall + width].copy()
        depth = np.full((height, width), np.float32(wall_m), np.float32)
        bmask = np.roll(box, -shift_box, axis=1)[:, margin: margin + width]
        rgb[bmask] = (200, 60, 40)
        depth[bmask] = box_m
        depth[: height // 16] = 0.0
        pose = np.eye(4)
        pose[:3, :3] = r_world_cam
        pose[:3, 3] = (dx, 0.0, 1.2)
        frames.append(Frame(0, FRAME_ID, rgb, depth, intr, pose, WORLD_FRAME, i))
    return frames


def synthetic_frames(n_views: int = 8, width: int = 640, height: int = 480,
                     seed: int = 0) -> list[Frame]:
    """``n_views`` rendered views of a synthetic room walkthrough."""
    from spatial_mllm_ros.synthetic import make_walkthrough

    return list(make_walkthrough(seed, n_frames=n_views, width=width, height=height).frames)


def folder_frames(path: str | Path) -> list[Frame]:
    """The frames of a directory in the ``real_rgbd_shelf`` convention."""
    from spatial_mllm_ros.synthetic import load_rgbd_dir

    return load_rgbd_dir(path)


def _ping_pong(n: int, i: int) -> int:
    """Index into n views for slot i, going back and forth (no jump at the loop point)."""
    if n <= 1:
        return 0
    period = 2 * n - 2
    k = i % period
    return k if k < n else period - k


# --------------------------------------------------------------------------- publisher
@dataclass
class StreamSettings:
    """What to publish; see ``rgbd_stream_publisher --help``."""

    rate_hz: float = 30.0
    count: int = 90
    loop: bool = False
    colour_format: str = "raw"  # raw | jpeg | png
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
        """Wait until every publisher in ``kinds`` is matched (discovery), up to the timeout."""
        deadline = time.monotonic() + self.s.wait_subscribers_s
        pubs = [self.pubs[k] for k in kinds if k in self.pubs]
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() > 0 for p in pubs):
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------------- slots
    def publish_good(self, index: int, stamp_ns: int) -> None:
        """Colour + depth + camera info + pose of view ``index`` with ``stamp_ns``."""
        fr = self.frames[_ping_pong(len(self.frames), index)]
        if "colour" in self.pubs and self.s.colour_format == "raw":
            self._publish("colour", colour_image_msg(fr.rgb, stamp_ns, fr.frame_id,
                                                     self.s.colour_encoding))
        elif self.s.colour_format != "raw":
            self._publish("colour_compressed",
                          compressed_image_msg(fr.rgb, stamp_ns, fr.frame_id,
                                               self.s.colour_format))
        if fr.depth_m is not None and "depth" in self.pubs:
            self._publish("depth", depth_image_msg(fr.depth_m, stamp_ns, fr.frame_id,
                                                   self.s.depth_encoding))
        if fr.intrinsics is not None and "camera_info" in self.pubs:
            self._publish("camera_info", camera_info_msg(fr.intrinsics, stamp_ns, fr.frame_id))
        if fr.pose is not None and "pose" in self.pubs:
            self._publish("pose", pose_stamped_msg(fr.pose, stamp_ns,
                                                   fr.world_frame_id or WORLD_FRAME))
        self._last_colour_ns = stamp_ns
        self.good_frames += 1

    def publish_bad(self, kind: str, stamp_ns: int) -> None:
        """The malformed message of ``kind`` (only that message) with ``stamp_ns``."""
        fr = self.frames[0]
        h, w = fr.height, fr.width
        fid = fr.frame_id
        if kind in ("wrong_step", "truncated_data", "unknown_encoding"):
            msg = colour_image_msg(fr.rgb, stamp_ns, fid, "rgb8")
            if kind == "wrong_step":
                msg.step = w * 3 - 1
            elif kind == "truncated_data":
                msg.data = msg.data[: len(msg.data) - w * 3]
            else:
                msg.encoding = "nv21"
            self._publish("colour", msg)
        elif kind == "empty_image":
            self._publish("colour", Image(header=header(stamp_ns, fid), height=0, width=0,
                                          encoding="rgb8", step=0))
        elif kind == "oversized_image":
            big = np.zeros((2 * h, 2 * w, 3), np.uint8)
            self._publish("colour", colour_image_msg(big, stamp_ns, fid, "rgb8"))
        elif kind in ("nan_depth", "negative_depth"):
            if kind == "nan_depth":
                d = np.full((h, w), np.nan, np.float32)
                d[::2] = np.inf
            else:
                d = np.full((h, w), 1.5, np.float32)
                d[h // 2:] = -1.0
            self._publish("depth", depth_image_msg(d, stamp_ns, fid, "32FC1"))
        elif kind == "missing_intrinsics":
            zero = CameraIntrinsics(0.0, 0.0, 0.0, 0.0, w, h)
            msg = camera_info_msg(zero, stamp_ns, fid)
            msg.k = [0.0] * 9
            self._publish("camera_info", msg)
        elif kind == "stamp_backwards":
            back = (self._last_colour_ns or stamp_ns) - 1_000_000_000
            self._publish("colour", colour_image_msg(fr.rgb, back, fid, "rgb8"))
        elif kind == "corrupt_compressed":
            msg = compressed_image_msg(fr.rgb, stamp_ns, fid, "jpeg")
            msg.data = msg.data[:16]  # a JPEG header without the image
            self._publish("colour_compressed", msg)
        elif kind == "bad_pose":
            msg = pose_stamped_msg(np.eye(4), stamp_ns, WORLD_FRAME)
            msg.pose.orientation.w = 0.0
            self._publish("pose", msg)
        else:
            raise ValueError(f"unknown inject kind {kind!r}; one of {sorted(INJECT_KINDS)}")
        self.injected[kind] = self.injected.get(kind, 0) + 1

    # --------------------------------------------------------------------- run
    def schedule(self) -> list[str | None]:
        """The slot plan: None = a good frame, else an inject kind."""
        plan: list[str | None] = [None] * self.s.count
        for kind in self.s.inject:
            plan += [kind] * self.s.inject_count
        plan += [None] * self.s.good_after
        return plan

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
    return p


def _frames(a: argparse.Namespace) -> list[Frame]:
    if a.source == "folder":
        if a.folder is None:
            raise SystemExit("--source folder needs --folder")
        return folder_frames(a.folder)
    if a.source == "synthetic":
        return synthetic_frames(a.views, a.width, a.height)
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
        wait_subscribers_s=a.wait_subscribers,
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
