"""RGB-D frame directories (the ``real_rgbd_shelf`` convention): the one reader and writer.

Layout of a directory::

    camera_intrinsics.txt        3x3 K, whitespace separated (optional)
    frame-NNNNNN.color.png       RGB colour image, 8-bit (or .color.jpg)
    frame-NNNNNN.depth.png       uint16 depth in millimetres, 0 = no measurement (optional)
    frame-NNNNNN.pose.txt        4x4 camera-to-world transform (metres), row-major (optional)
    frame-NNNNNN.segm.png        uint16 instance ids (optional; written, not read here)
    scene.json                   metadata (optional), e.g. a synthetic scene's ground truth;
                                 ``frames[i].index`` / ``frames[i].stamp_ns`` give stamps

Frames are indexed by the 6-digit number, which need not be contiguous.  Recorded sequences
(``shared/data/real_rgbd_shelf``) and the synthetic generator's output
(:func:`spatial_mllm_ros.synthetic.write_scene_dir`) both follow it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.encode import depth_from_mm, depth_to_mm
from spatial_mllm_ros.core.errors import RgbdDirError
from spatial_mllm_ros.core.frame import (
    DEFAULT_FRAME_ID,
    DEFAULT_WORLD_FRAME_ID,
    CameraIntrinsics,
    Frame,
)

__all__ = ["SCENE_JSON", "load_rgbd_dir", "load_scene_json", "write_rgbd_dir"]

#: name of the optional metadata file
SCENE_JSON = "scene.json"

_COLOR_RE = re.compile(r"^frame-(\d{6})\.color\.(png|jpg)$")


def write_rgbd_dir(
    frames: Sequence[Frame],
    path: str | Path,
    instance_masks: Sequence[npt.NDArray[np.integer]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write frames as ``frame-NNNNNN.*`` (N = position in ``frames``); return the directory.

    ``camera_intrinsics.txt`` holds the first frame's K; depth and pose files are written for
    frames that have them; ``instance_masks`` (one (H, W) id image per frame) become
    ``.segm.png``; ``metadata`` (JSON-serialisable) becomes ``scene.json``.

    Raises:
        RgbdDirError: no frames, the first frame without intrinsics, or a failed write.
    """
    out = Path(path)
    if not frames:
        raise RgbdDirError("no frames to write")
    k = frames[0].intrinsics
    if k is None:
        raise RgbdDirError("frames need intrinsics to be written")
    if instance_masks is not None and len(instance_masks) != len(frames):
        raise RgbdDirError(f"{len(instance_masks)} instance masks for {len(frames)} frames")
    try:
        out.mkdir(parents=True, exist_ok=True)
        np.savetxt(out / "camera_intrinsics.txt", k.matrix, fmt="%.8f")
        for i, f in enumerate(frames):
            stem = out / f"frame-{i:06d}"
            _imwrite(f"{stem}.color.png", cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR))
            if f.depth_m is not None:
                _imwrite(f"{stem}.depth.png", depth_to_mm(f.depth_m))
            if f.pose is not None:
                np.savetxt(f"{stem}.pose.txt", f.pose, fmt="%.9f")
            if instance_masks is not None:
                _imwrite(f"{stem}.segm.png",
                         np.clip(instance_masks[i], 0, 65535).astype(np.uint16))
        if metadata is not None:
            (out / SCENE_JSON).write_text(json.dumps(metadata, indent=1))
    except OSError as err:
        raise RgbdDirError(f"cannot write {out}: {err}") from err
    return out


def _imwrite(path: str, image: npt.NDArray[Any]) -> None:
    if not cv2.imwrite(path, image):
        raise RgbdDirError(f"could not write {path}")


def load_scene_json(path: str | Path) -> dict[str, Any]:
    """The ``scene.json`` of directory ``path``.

    Raises:
        RgbdDirError: missing or not valid JSON.
    """
    p = Path(path) / SCENE_JSON
    try:
        data: dict[str, Any] = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RgbdDirError(f"cannot read {p}: {err}") from err
    return data


def _read_matrix(p: Path, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
    try:
        m = np.loadtxt(p, dtype=np.float64)
    except (OSError, ValueError) as err:
        raise RgbdDirError(f"cannot read matrix {p}: {err}") from err
    if m.size != shape[0] * shape[1]:
        raise RgbdDirError(f"{p}: expected {shape} values, got {m.size}")
    return m.reshape(shape)


def _spread(n: int, max_frames: int) -> list[int]:
    """Positions of ``max_frames`` of ``n`` items evenly spread, first and last included
    (all of them when ``max_frames`` <= 0 or >= n)."""
    if max_frames <= 0 or max_frames >= n:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, max_frames).round()})


def load_rgbd_dir(
    path: str | Path,
    rate_hz: float = 30.0,
    start_ns: int = 0,
    frame_id: str = DEFAULT_FRAME_ID,
    world_frame_id: str = DEFAULT_WORLD_FRAME_ID,
    max_frames: int = 0,
) -> list[Frame]:
    """Load the frames of a directory in index order.

    Args:
        path: the directory.
        rate_hz: frame rate of synthesised stamps, Hz.
        start_ns: stamp of the first frame of the sequence when stamps are synthesised.
        frame_id, world_frame_id: ``Frame.frame_id`` and (for posed frames) ``world_frame_id``.
        max_frames: > 0 loads only that many frames, evenly spread over the sequence (first
            and last included); 0 loads all.

    Stamps come from ``scene.json`` when it lists the frame, else ``start_ns + k / rate_hz``
    for the frame at position k of the whole sorted sequence (so a spread subset keeps its
    timing).  ``Frame.seq`` is the file's index.  Depth (uint16 mm) becomes (H, W) float32
    metres; missing depth or pose files give colour-only / pose-less frames.

    Raises:
        RgbdDirError: not a directory, no frames, unreadable images or matrices, size
            mismatches.
    """
    root = Path(path)
    if not root.is_dir():
        raise RgbdDirError(f"{root} is not a directory")
    found = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _COLOR_RE.match(p.name)))
    if not found:
        raise RgbdDirError(f"no frame-NNNNNN.color.png files in {root}")
    k_file = root / "camera_intrinsics.txt"
    k_mat = _read_matrix(k_file, (3, 3)) if k_file.exists() else None
    stamps: dict[int, int] = {}
    if (root / SCENE_JSON).exists():
        meta = load_scene_json(root)
        try:
            stamps = {int(f["index"]): int(f["stamp_ns"]) for f in meta.get("frames", [])}
        except (KeyError, TypeError, ValueError) as err:
            raise RgbdDirError(f"{root / SCENE_JSON}: bad frames entry: {err}") from err
    frames: list[Frame] = []
    for n in _spread(len(found), max_frames):
        idx, color_path = found[n]
        bgr = cv2.imread(str(color_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise RgbdDirError(f"cannot read {color_path}")
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        h, w = rgb.shape[:2]
        stem = root / f"frame-{idx:06d}"
        depth = None
        depth_path = Path(f"{stem}.depth.png")
        if depth_path.exists():
            raw = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED)
            if raw is None or raw.dtype != np.uint16 or raw.shape != (h, w):
                raise RgbdDirError(f"{depth_path}: expected {w}x{h} uint16 depth")
            depth = depth_from_mm(np.asarray(raw, dtype=np.uint16))
        pose_path = Path(f"{stem}.pose.txt")
        pose = _read_matrix(pose_path, (4, 4)) if pose_path.exists() else None
        k = CameraIntrinsics.from_matrix(k_mat, w, h) if k_mat is not None else None
        stamp = stamps.get(idx, start_ns + round(n * 1e9 / rate_hz))
        frames.append(
            Frame(
                stamp_ns=stamp,
                frame_id=frame_id,
                rgb=rgb,
                depth_m=depth,
                intrinsics=k,
                pose=pose,
                world_frame_id=world_frame_id if pose is not None else "",
                seq=idx,
            )
        )
    return frames
