"""Object boxes from Qwen2.5-VL output, mapped to the original frame, and their 3D position.

Qwen2.5-VL writes boxes in absolute pixels of the image *as resized by its processor* (not
normalised to 0..1000 as Qwen2-VL did), in two forms:

- JSON: ``[{"bbox_2d": [x1, y1, x2, y2], "label": "chair"}, ...]``, often inside a
  ```` ```json ```` fence, sometimes a single object, sometimes truncated;
- special tokens:
  ``<|object_ref_start|>chair<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>``
  (several ``<|box_start|>`` groups may follow one reference).

:func:`parse_boxes` never raises because of the model's text: malformed entries are skipped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.frame import CameraIntrinsics
from spatial_mllm_ros.core.jsonsafe import finite_or_none
from spatial_mllm_ros.vsibench.errors import BoxError


@dataclass(eq=False)
class Box2D:
    """An axis-aligned object box in pixels of the ORIGINAL frame (x right, y down).

    Attributes:
        label: the object's label ("" if the model gave none).
        score: confidence in [0, 1]; NaN if unknown (Qwen2.5-VL gives none).
        x_min, y_min, x_max, y_max: corners in original-frame pixels, ordered, clipped to
            [0, width] x [0, height] (continuous coordinates: pixel (i, j) spans [j, j+1)).
        frame_index: index of the frame the box belongs to (-1 if unknown).
        position: (3,) float64 metres, the object's 3D centre (see :func:`box_position` for the
            frame), or None.
    """

    label: str
    score: float
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    frame_index: int = -1
    position: npt.NDArray[np.float64] | None = None

    @property
    def width(self) -> float:
        return self.x_max - self.x_min

    @property
    def height(self) -> float:
        return self.y_max - self.y_min

    @property
    def center(self) -> tuple[float, float]:
        return (0.5 * (self.x_min + self.x_max), 0.5 * (self.y_min + self.y_max))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (NaN score -> None, position -> list or None)."""
        return {
            "label": self.label,
            "score": finite_or_none(self.score),
            "bbox": [self.x_min, self.y_min, self.x_max, self.y_max],
            "frame_index": self.frame_index,
            "position": None if self.position is None else [float(v) for v in self.position],
        }


# --- parsing -----------------------------------------------------------------------------------

_REF_OR_BOX = re.compile(
    r"<\|object_ref_start\|>(?P<ref>.*?)<\|object_ref_end\|>"
    r"|<\|box_start\|>(?P<box>.*?)<\|box_end\|>",
    re.DOTALL,
)
_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_MAX_TEXT = 16_384  # characters read from a model answer (~4k tokens); the rest is ignored
_OBJECT_START = re.compile(r"\{\s*\"")


def _as_number(v: object) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def _coords(values: object) -> tuple[float, float, float, float] | None:
    if isinstance(values, (list, tuple)) and len(values) == 2:  # [[x1, y1], [x2, y2]]
        if all(isinstance(p, (list, tuple)) and len(p) == 2 for p in values):
            values = [*values[0], *values[1]]
    if not isinstance(values, (list, tuple)) or len(values) != 4:
        return None
    nums = [_as_number(v) for v in values]
    if any(n is None for n in nums):
        return None
    x1, y1, x2, y2 = (float(n) for n in nums if n is not None)
    return x1, y1, x2, y2


def _json_entries(
    value: object, out: list[tuple[str, float, tuple[float, float, float, float]]]
) -> None:
    """Collect (label, score, coords) from every dict with a ``bbox_2d`` inside ``value``."""
    if isinstance(value, list):
        for v in value:
            _json_entries(v, out)
        return
    if not isinstance(value, dict):
        return
    if "bbox_2d" in value:
        coords = _coords(value["bbox_2d"])
        if coords is None:
            return
        label = value.get("label", "")
        label = label if isinstance(label, str) else ("" if label is None else str(label))
        score = math.nan
        for key in ("score", "confidence"):
            s = _as_number(value.get(key))
            if s is not None:
                score = s
                break
        out.append((label.strip(), score, coords))
        return
    for v in value.values():
        if isinstance(v, (list, dict)):
            _json_entries(v, out)


def _scan_json(text: str) -> list[tuple[int, str, float, tuple[float, float, float, float]]]:
    """Entries of every decodable JSON object starting at ``{"`` (outermost first), with position.

    Lists need no decoding of their own: each element object is found at its own ``{``.
    """
    decoder = json.JSONDecoder()
    found: list[tuple[int, str, float, tuple[float, float, float, float]]] = []
    pos = 0
    while (m := _OBJECT_START.search(text, pos)) is not None:
        start = m.start()
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            pos = start + 1
            continue
        entries: list[tuple[str, float, tuple[float, float, float, float]]] = []
        _json_entries(value, entries)
        found.extend((start, *e) for e in entries)
        pos = end
    return found


def _scan_tokens(
    text: str,
) -> list[tuple[int, str, float, tuple[float, float, float, float]]]:
    found: list[tuple[int, str, float, tuple[float, float, float, float]]] = []
    label = ""
    for m in _REF_OR_BOX.finditer(text):
        if m.group("ref") is not None:
            label = m.group("ref").strip()
            continue
        nums = _FLOAT.findall(m.group("box"))
        if len(nums) != 4:
            continue
        coords = _coords(nums)
        if coords is not None:
            found.append((m.start(), label, math.nan, coords))
    return found


def _check_size(size: tuple[int, int], name: str) -> tuple[int, int]:
    try:
        w, h = int(size[0]), int(size[1])
    except (TypeError, ValueError, IndexError) as err:
        raise BoxError(f"{name} must be (width, height), got {size!r}") from err
    if w <= 0 or h <= 0:
        raise BoxError(f"{name} must be positive (width, height), got {size!r}")
    return w, h


def parse_boxes(
    text: str,
    resized_size: tuple[int, int],
    original_size: tuple[int, int],
    *,
    token_coords: Literal["absolute", "normalized_1000"] = "absolute",
) -> list[Box2D]:
    """Boxes from a Qwen2.5-VL answer, in original-frame pixels, in order of appearance.

    Args:
        text: the generated text (any content; JSON and special-token forms may be mixed).
        resized_size: (width, height) of the image the model saw (the processor's resize).
        original_size: (width, height) of the original frame.
        token_coords: the coordinate convention of the special-token form: ``absolute``
            (Qwen2.5-VL, resized-input pixels) or ``normalized_1000`` (Qwen2-VL, 0..1000).
            JSON ``bbox_2d`` is always absolute.

    Returns:
        Boxes scaled by original/resized per axis, corners ordered, clipped to the image; boxes
        with no area left after clipping are dropped. ``score`` is NaN unless the JSON entry
        had a numeric ``score``/``confidence``; ``frame_index`` is -1.

    Raises:
        BoxError: a size that is not two positive integers (never for the model's text).
    """
    rw, rh = _check_size(resized_size, "resized_size")
    ow, oh = _check_size(original_size, "original_size")
    if not isinstance(text, str):
        return []
    text = text[:_MAX_TEXT]
    entries = [(p, lab, s, c, "json") for p, lab, s, c in _scan_json(text)]
    entries += [(p, lab, s, c, "token") for p, lab, s, c in _scan_tokens(text)]
    entries.sort(key=lambda e: e[0])
    boxes: list[Box2D] = []
    for _, label, score, (x1, y1, x2, y2), form in entries:
        if form == "token" and token_coords == "normalized_1000":
            sx, sy = ow / 1000.0, oh / 1000.0
        else:
            sx, sy = ow / rw, oh / rh
        xa, xb = sorted((x1 * sx, x2 * sx))
        ya, yb = sorted((y1 * sy, y2 * sy))
        xa, xb = min(max(xa, 0.0), float(ow)), min(max(xb, 0.0), float(ow))
        ya, yb = min(max(ya, 0.0), float(oh)), min(max(yb, 0.0), float(oh))
        if xb <= xa or yb <= ya:
            continue
        boxes.append(Box2D(label=label, score=score, x_min=xa, y_min=ya, x_max=xb, y_max=yb))
    return boxes


# --- 3D position -------------------------------------------------------------------------------


def box_position(
    box: Box2D,
    depth_m: npt.NDArray[np.floating[Any]],
    intrinsics: CameraIntrinsics,
    pose: npt.NDArray[np.float64] | None = None,
    *,
    to_world: bool = True,
    central_fraction: float = 0.5,
    max_depth_m: float = math.inf,
) -> npt.NDArray[np.float64] | None:
    """Robust 3D centre of the object in ``box`` from a registered depth image.

    The pixels of the central region of the box (``central_fraction`` of its width and height,
    around its centre; at least one pixel) with a valid depth (finite, > 0, <= ``max_depth_m``)
    are back-projected with the pinhole model (pixel (i, j) centre at u = j, v = i as in
    ``K``) and the per-axis median of those points is returned. When the central region holds
    no valid depth, the whole box is used.

    Frame of the result: the WORLD frame (``pose @ p``, ``pose`` camera-to-world) when ``pose``
    is given and ``to_world`` is True; otherwise the camera OPTICAL frame (x right, y down,
    z forward). Use :func:`position_frame` to know which.

    Args:
        box: box in pixels of the image ``intrinsics`` describes.
        depth_m: (H, W) depth in metres, 0 = none; when its size differs from
            ``intrinsics``' the box and intrinsics are scaled to it.
        intrinsics: pinhole intrinsics of the box's image.
        pose: (4, 4) camera-to-world transform, or None.

    Returns:
        (3,) float64 metres, or None when the box holds no valid depth.

    Raises:
        BoxError: ``depth_m`` not 2D, bad ``pose`` shape or ``central_fraction`` not in (0, 1].
    """
    if depth_m.ndim != 2:
        raise BoxError(f"depth_m must be (H, W), got shape {depth_m.shape}")
    if not 0.0 < central_fraction <= 1.0:
        raise BoxError(f"central_fraction must be in (0, 1], got {central_fraction}")
    h, w = depth_m.shape
    if h == 0 or w == 0:
        return None
    if (w, h) != (intrinsics.width, intrinsics.height):
        sx, sy = w / intrinsics.width, h / intrinsics.height
        intrinsics = intrinsics.scaled(w, h)
    else:
        sx = sy = 1.0
    x0, x1 = box.x_min * sx, box.x_max * sx
    y0, y1 = box.y_min * sy, box.y_max * sy
    if not all(math.isfinite(v) for v in (x0, x1, y0, y1)):
        return None
    points = _points_in(depth_m, intrinsics, x0, y0, x1, y1, central_fraction, max_depth_m)
    if points is None and central_fraction < 1.0:
        points = _points_in(depth_m, intrinsics, x0, y0, x1, y1, 1.0, max_depth_m)
    if points is None:
        return None
    p = np.median(points, axis=0).astype(np.float64)
    if pose is not None and to_world:
        t = np.asarray(pose, dtype=np.float64)
        if t.shape != (4, 4):
            raise BoxError(f"pose must be (4, 4), got shape {t.shape}")
        p = t[:3, :3] @ p + t[:3, 3]
    return p


def position_frame(
    pose: npt.NDArray[np.float64] | None, to_world: bool = True
) -> Literal["world", "camera"]:
    """Which frame :func:`box_position` returns for these arguments."""
    return "world" if pose is not None and to_world else "camera"


def _points_in(
    depth: npt.NDArray[np.floating[Any]],
    k: CameraIntrinsics,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    fraction: float,
    max_depth_m: float,
) -> npt.NDArray[np.float64] | None:
    """(N, 3) optical-frame points of the valid pixels in the central region, or None."""
    h, w = depth.shape
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    hw, hh = 0.5 * fraction * (x1 - x0), 0.5 * fraction * (y1 - y0)
    # Pixels whose centre (j + 0.5, i + 0.5) lies in the region; at least the centre pixel.
    j0 = max(0, math.ceil(cx - hw - 0.5))
    j1 = min(w - 1, math.floor(cx + hw - 0.5))
    i0 = max(0, math.ceil(cy - hh - 0.5))
    i1 = min(h - 1, math.floor(cy + hh - 0.5))
    if j1 < j0:
        j0 = j1 = min(max(int(cx), 0), w - 1)
    if i1 < i0:
        i0 = i1 = min(max(int(cy), 0), h - 1)
    z = np.asarray(depth[i0 : i1 + 1, j0 : j1 + 1], dtype=np.float64)
    valid = np.isfinite(z) & (z > 0.0) & (z <= max_depth_m)
    if not valid.any():
        return None
    ii, jj = np.nonzero(valid)
    zz = z[ii, jj]
    u = (jj + j0).astype(np.float64)
    v = (ii + i0).astype(np.float64)
    x = (u - k.cx) * zz / k.fx
    y = (v - k.cy) * zz / k.fy
    return np.stack([x, y, zz], axis=1)
