"""Synthetic RGB-D walkthroughs: layout + trajectory + renderer -> :class:`Frame` stream.

Ground truth carried by :class:`SyntheticScene` (all JSON-serializable via
:meth:`SyntheticScene.ground_truth`):

* ``room``: width/length/height (m) and ``floor_area_m2``;
* ``objects``: instance id, label, colour, 3D box centre and size (world metres, z up);
* ``frames``: per frame the stamp (ns) and ``visible``: {instance_id: pixel count} for
  instances covering at least ``min_visible_pixels`` pixels;
* ``first_seen_ns`` per instance and ``appearance_order`` (instance ids by first sighting,
  ties by id) -- what VSI-Bench's appearance-order questions need.

Depth is float32 metres in :class:`Frame` (0 = no hit).  :func:`write_scene_dir` writes a
scene as an RGB-D directory (:mod:`spatial_mllm_ros.core.rgbd_dir`) with its ground truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.frame import (
    DEFAULT_FRAME_ID,
    DEFAULT_WORLD_FRAME_ID,
    CameraIntrinsics,
    Frame,
)
from spatial_mllm_ros.core.rgbd_dir import write_rgbd_dir
from spatial_mllm_ros.synthetic.render import render_view
from spatial_mllm_ros.synthetic.scene import SceneLayout, generate_layout
from spatial_mllm_ros.synthetic.trajectory import walkthrough_poses


def default_intrinsics(
    width: int = 640, height: int = 480, hfov_deg: float = 75.0
) -> CameraIntrinsics:
    """Pinhole intrinsics with the given horizontal field of view, principal point centred."""
    f = (width / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0)
    return CameraIntrinsics(
        float(f), float(f), (width - 1) / 2.0, (height - 1) / 2.0, width, height
    )


@dataclass
class SyntheticScene:
    """A rendered walkthrough and its ground truth."""

    layout: SceneLayout
    frames: list[Frame]
    visibility: list[dict[int, int]]
    fps: float
    instance_masks: list[npt.NDArray[np.int32]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def first_seen_ns(self) -> dict[int, int]:
        """Stamp of the first frame in which each seen instance is visible."""
        out: dict[int, int] = {}
        for f, vis in zip(self.frames, self.visibility, strict=True):
            for iid in vis:
                out.setdefault(iid, f.stamp_ns)
        return out

    def appearance_order(self) -> list[int]:
        """Instance ids ordered by first sighting (ties by id); unseen instances omitted."""
        seen = self.first_seen_ns()
        return sorted(seen, key=lambda i: (seen[i], i))

    def ground_truth(self) -> dict[str, Any]:
        """JSON-serializable ground truth (see module docstring)."""
        return ground_truth_doc(
            self.layout, self.fps, [f.stamp_ns for f in self.frames], self.visibility,
            self.frames[0].frame_id if self.frames else DEFAULT_FRAME_ID,
            self.frames[0].world_frame_id if self.frames else DEFAULT_WORLD_FRAME_ID)


def ground_truth_doc(layout: SceneLayout, fps: float, stamps_ns: list[int],
                     visibility: list[dict[int, int]], frame_id: str, world_frame_id: str
                     ) -> dict[str, Any]:
    """The ``scene.json`` document (see the module docstring) of a walkthrough whose frame
    ``i`` is stamped ``stamps_ns[i]`` and shows ``visibility[i]`` ({instance id: pixels});
    first sightings and the appearance order follow from them."""
    seen: dict[int, int] = {}
    for stamp, vis in zip(stamps_ns, visibility, strict=True):
        for iid in vis:
            seen.setdefault(iid, stamp)
    return {
        "format": "spatial_mllm_ros.synthetic/1",
        "seed": layout.seed,
        "fps": fps,
        "room": layout.room.to_dict(),
        "objects": [o.to_dict() for o in layout.objects],
        "frames": [
            {"index": i, "stamp_ns": stamp, "visible": {str(k): v for k, v in vis.items()}}
            for i, (stamp, vis) in enumerate(zip(stamps_ns, visibility, strict=True))
        ],
        "first_seen_ns": {str(k): v for k, v in seen.items()},
        "appearance_order": sorted(seen, key=lambda i: (seen[i], i)),
        "frame_id": frame_id,
        "world_frame_id": world_frame_id,
    }


def make_walkthrough(
    seed: int,
    n_frames: int = 60,
    fps: float = 5.0,
    width: int = 640,
    height: int = 480,
    start_ns: int = 0,
    min_visible_pixels: int = 50,
    keep_instance_masks: bool = False,
    has_ceiling: bool = True,
    laps: float = 1.0,
    on_frame: Callable[[int, int], None] | None = None,
) -> SyntheticScene:
    """Render a deterministic walkthrough of a random room.

    Args:
        seed: controls layout and trajectory.
        n_frames: number of frames; stamps are ``start_ns + i / fps`` seconds.
        fps: frame rate of the stamps.
        width, height: image size (intrinsics: 75 deg horizontal FOV, centred).
        min_visible_pixels: an instance counts as visible in a frame from this many pixels
            (scaled with the image area relative to 640x480).
        keep_instance_masks: also keep the (H, W) int32 instance masks (memory heavy).
        has_ceiling: whether the room has a ceiling.
        laps: loops of the trajectory over the whole walkthrough.
        on_frame: called as ``on_frame(done, n_frames)`` after each frame is rendered
            (a command's progress).
    """
    layout = generate_layout(seed, has_ceiling=has_ceiling)
    k = default_intrinsics(width, height)
    poses = walkthrough_poses(layout.room, n_frames, seed, laps=laps)
    min_px = max(1, round(min_visible_pixels * (width * height) / (640 * 480)))
    frames: list[Frame] = []
    visibility: list[dict[int, int]] = []
    masks: list[npt.NDArray[np.int32]] | None = [] if keep_instance_masks else None
    for i, pose in enumerate(poses):
        res = render_view(layout, k, pose)
        stamp = start_ns + round(i * 1e9 / fps)
        frames.append(
            Frame(
                stamp_ns=stamp,
                frame_id=DEFAULT_FRAME_ID,
                rgb=res.rgb,
                depth_m=res.depth_m,
                intrinsics=k,
                pose=pose,
                world_frame_id=DEFAULT_WORLD_FRAME_ID,
                seq=i,
            )
        )
        ids, counts = np.unique(res.instance[res.instance > 0], return_counts=True)
        visibility.append({int(a): int(b) for a, b in zip(ids, counts, strict=True) if b >= min_px})
        if masks is not None:
            masks.append(res.instance)
        if on_frame is not None:
            on_frame(i + 1, len(poses))
    return SyntheticScene(layout, frames, visibility, fps, masks)


def write_scene_dir(scene: SyntheticScene, path: str | Path) -> Path:
    """Write ``scene`` as an RGB-D directory: its frames, instance masks (``.segm.png``, when
    kept) and ground truth (``scene.json``); return the directory.

    Raises:
        spatial_mllm_ros.core.errors.RgbdDirError: the scene has no frames or a write fails.
    """
    return write_rgbd_dir(scene.frames, path, scene.instance_masks, scene.ground_truth())
