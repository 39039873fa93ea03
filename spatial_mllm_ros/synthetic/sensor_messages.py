"""The camera messages of :class:`~spatial_mllm_ros.synthetic.sensor_timing.SensorEvent` s, made
from a frame source with one :class:`~spatial_mllm_ros.core.encode.MessageEncoder`.  No rclpy.

Colour frame ``i`` of a schedule shows view ``ping_pong(len(frames), i)`` of the source (back
and forth, so an endless stream has no jump).  A pose event carries the true camera pose at its
stamp: the source's poses of the two frames around the stamp, interpolated
(:func:`~spatial_mllm_ros.synthetic.trajectory.interpolate_pose`) -- the camera moves along a
continuous trajectory through the frames' poses (before the first frame and after the last,
the motion of the first / last interval continues), so a consumer that interpolates the pose
messages at an image's stamp recovers that image's pose.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.encode import MessageEncoder
from spatial_mllm_ros.core.frame import DEFAULT_WORLD_FRAME_ID, Frame
from spatial_mllm_ros.core.topic_kinds import BY_KIND
from spatial_mllm_ros.synthetic.errors import SyntheticError
from spatial_mllm_ros.synthetic.procedural import ping_pong
from spatial_mllm_ros.synthetic.sensor_timing import SensorEvent
from spatial_mllm_ros.synthetic.trajectory import interpolate_pose

__all__ = ["SensorMessages"]


class SensorMessages:
    """Builds the messages of sensor events from ``frames``.

    Args:
        enc: the message encoder (rclpy, rosbags or namespace messages).
        frames: the source views (at least one).
        kinds: the topic kinds to make messages for (of
            :data:`~spatial_mllm_ros.core.topic_kinds.TOPIC_KINDS`; ``colour_compressed``
            with a jpeg/png format, ``odometry`` from the pose events like ``pose``).
        colour_format: ``raw`` (an ``Image`` in ``colour_encoding``) or ``jpeg``/``png`` (a
            ``CompressedImage``, made whether or not ``colour_compressed`` is in ``kinds``).
        depth_encoding: ``16UC1`` (mm) or ``32FC1`` (m).
        cache_images: encode each view's colour and depth image once and send later events
            of the same view with that payload under a new header (no new encoding; an rclpy
            message still copies the bytes once) (a publisher replaying
            a few views: the depth encoding was most of its time); memory: every view's
            images (about 1.5 MB per 640x480 RGB-D view).
    """

    def __init__(
        self, enc: MessageEncoder, frames: Sequence[Frame], kinds: Collection[str],
        colour_format: Literal["raw", "jpeg", "png"] = "raw", colour_encoding: str = "rgb8",
        depth_encoding: str = "16UC1", cache_images: bool = False,
    ) -> None:
        if not frames:
            raise SyntheticError("the source has no frames")
        self.enc = enc
        self.frames = frames
        self.kinds = frozenset(kinds)
        self.colour_format = colour_format
        self.colour_encoding = colour_encoding
        self.depth_encoding = depth_encoding
        self.cache_images = cache_images
        #: (topic kind, view index) -> the view's image message, as first encoded
        self._images: dict[tuple[str, int], Any] = {}

    def _image(self, kind: str, index: int, stamp_ns: int, encode: Callable[[], Any]) -> Any:
        """View ``index``'s image of topic kind ``kind`` stamped ``stamp_ns``: ``encode()``,
        or with :attr:`cache_images` the view's first encoding under a new header."""
        if not self.cache_images:
            return encode()
        key = (kind, ping_pong(len(self.frames), index))
        first = self._images.get(key)
        if first is None:
            first = self._images[key] = encode()
            return first
        return self.enc.restamped_image(BY_KIND[kind].msg_type, first, stamp_ns)

    def frame(self, index: int) -> Frame:
        """The view shown by colour frame ``index`` of the stream."""
        return self.frames[ping_pong(len(self.frames), index)]

    def pose(self, event: SensorEvent) -> npt.NDArray[np.float64] | None:
        """(4, 4) camera-to-world pose at a pose event's stamp; None where the source's frames
        have no pose."""
        a = self.frame(event.frame).pose
        if event.weight == 0.0 or a is None:
            return None if a is None else np.asarray(a, dtype=np.float64)
        b = self.frame(event.frame + 1).pose
        return None if b is None else interpolate_pose(a, b, event.weight)

    def messages(self, event: SensorEvent) -> list[tuple[str, Any]]:
        """(topic kind, message) pairs of ``event``: none where the source lacks the data or
        the kind is not made."""
        fr = self.frame(event.frame)
        stamp = event.stamp_ns
        out: list[tuple[str, Any]] = []
        fmt = self.colour_format
        if event.kind == "colour":
            if fmt == "raw":
                if "colour" in self.kinds:
                    out.append(("colour", self._image(
                        "colour", event.frame, stamp, lambda: self.enc.colour_image(
                            fr.rgb, stamp, fr.frame_id, self.colour_encoding))))
            else:
                out.append(("colour_compressed", self._image(
                    "colour_compressed", event.frame, stamp, lambda: self.enc.compressed_image(
                        fr.rgb, stamp, fr.frame_id, fmt))))
        elif event.kind == "depth":
            depth = fr.depth_m
            if depth is not None and "depth" in self.kinds:
                out.append(("depth", self._image(
                    "depth", event.frame, stamp, lambda: self.enc.depth_image(
                        depth, stamp, fr.frame_id, self.depth_encoding))))
        elif event.kind == "camera_info":
            if fr.intrinsics is not None and "camera_info" in self.kinds:
                out.append(("camera_info", self.enc.camera_info(fr.intrinsics, stamp,
                                                                fr.frame_id)))
        elif self.kinds & {"pose", "odometry"}:
            pose = self.pose(event)
            if pose is None:
                return out
            world = fr.world_frame_id or DEFAULT_WORLD_FRAME_ID
            if "pose" in self.kinds:
                out.append(("pose", self.enc.pose_stamped(pose, stamp, world)))
            if "odometry" in self.kinds:
                out.append(("odometry", self.enc.odometry(pose, stamp, world, fr.frame_id)))
        return out
