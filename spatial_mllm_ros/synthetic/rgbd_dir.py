"""Read/write RGB-D frame directories (the ``real_rgbd_shelf`` convention).

Layout of a directory::

    camera_intrinsics.txt        3x3 K, whitespace separated
    frame-NNNNNN.color.png       RGB colour image (8-bit)
    frame-NNNNNN.depth.png       uint16 depth in millimetres, 0 = no measurement (optional)
    frame-NNNNNN.pose.txt        4x4 camera-to-world transform (metres), row-major (optional)
    frame-NNNNNN.segm.png        uint16 instance ids (optional; 0 = room structure)
    scene.json                   synthetic ground truth (optional; see walkthrough.py), with
                                 ``frames[i].stamp_ns`` used as stamps when present

Frames are indexed by the 6-digit number, which need not be contiguous.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.frame import CameraIntrinsics, Frame
from spatial_mllm_ros.synthetic.errors import SceneFormatError
from spatial_mllm_ros.synthetic.walkthrough import (
    DEFAULT_FRAME_ID,
    DEFAULT_WORLD_FRAME_ID,
    SyntheticScene,
    depth_from_mm,
    depth_to_mm,
)

_COLOR_RE = re.compile(r"^frame-(\d{6})\.color\.(png|jpg)$")


def write_rgbd_dir(scene: SyntheticScene, path: str | Path) -> Path:
    """Write a synthetic scene in the directory convention (plus ``scene.json``)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if not scene.frames:
        raise SceneFormatError("scene has no frames")
    k = scene.frames[0].intrinsics
    if k is None:
        raise SceneFormatError("frames need intrinsics to be written")
    np.savetxt(out / "camera_intrinsics.txt", k.matrix, fmt="%.8f")
    for i, f in enumerate(scene.frames):
        stem = out / f"frame-{i:06d}"
        if not cv2.imwrite(f"{stem}.color.png", cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR)):
            raise SceneFormatError(f"could not write {stem}.color.png")
        if f.depth_m is not None:
            cv2.imwrite(f"{stem}.depth.png", depth_to_mm(f.depth_m))
        if f.pose is not None:
            np.savetxt(f"{stem}.pose.txt", f.pose, fmt="%.9f")
        if scene.instance_masks is not None:
            m = np.clip(scene.instance_masks[i], 0, 65535).astype(np.uint16)
            cv2.imwrite(f"{stem}.segm.png", m)
    (out / "scene.json").write_text(json.dumps(scene.ground_truth(), indent=1))
    return out


def load_ground_truth(path: str | Path) -> dict[str, Any]:
    """The ``scene.json`` of a directory.

    Raises:
        SceneFormatError: missing or not valid JSON.
    """
    p = Path(path) / "scene.json"
    try:
        data: dict[str, Any] = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SceneFormatError(f"cannot read ground truth {p}: {err}") from err
    return data


def _read_matrix(p: Path, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
    try:
        m = np.loadtxt(p, dtype=np.float64)
    except (OSError, ValueError) as err:
        raise SceneFormatError(f"cannot read matrix {p}: {err}") from err
    if m.size != shape[0] * shape[1]:
        raise SceneFormatError(f"{p}: expected {shape} values, got {m.size}")
    return m.reshape(shape)


def load_rgbd_dir(
    path: str | Path,
    rate_hz: float = 30.0,
    start_ns: int = 0,
    frame_id: str = DEFAULT_FRAME_ID,
    world_frame_id: str = DEFAULT_WORLD_FRAME_ID,
) -> list[Frame]:
    """Load every frame of a directory in index order.

    Stamps come from ``scene.json`` when present, else ``start_ns + i / rate_hz`` for the i-th
    loaded frame.  Depth (uint16 mm) becomes float32 metres; missing depth or pose files give
    colour-only / pose-less frames.

    Raises:
        SceneFormatError: no frames, unreadable images or matrices, size mismatches.
    """
    root = Path(path)
    if not root.is_dir():
        raise SceneFormatError(f"{root} is not a directory")
    found = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _COLOR_RE.match(p.name)))
    if not found:
        raise SceneFormatError(f"no frame-NNNNNN.color.png files in {root}")
    k_file = root / "camera_intrinsics.txt"
    k_mat = _read_matrix(k_file, (3, 3)) if k_file.exists() else None
    stamps: dict[int, int] = {}
    if (root / "scene.json").exists():
        gt = load_ground_truth(root)
        stamps = {int(f["index"]): int(f["stamp_ns"]) for f in gt.get("frames", [])}
    frames: list[Frame] = []
    for n, (idx, color_path) in enumerate(found):
        bgr = cv2.imread(str(color_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SceneFormatError(f"cannot read {color_path}")
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        h, w = rgb.shape[:2]
        stem = root / f"frame-{idx:06d}"
        depth = None
        depth_path = Path(f"{stem}.depth.png")
        if depth_path.exists():
            raw = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED)
            if raw is None or raw.dtype != np.uint16 or raw.shape != (h, w):
                raise SceneFormatError(f"{depth_path}: expected {w}x{h} uint16 depth")
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


def scene_from_dir(path: str | Path) -> tuple[list[Frame], dict[str, Any]]:
    """Frames and ground truth of a directory written by :func:`write_rgbd_dir`."""
    return load_rgbd_dir(path), load_ground_truth(path)
