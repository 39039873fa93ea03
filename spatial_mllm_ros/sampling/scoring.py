"""The seed's scored frame selection (a geometry-light alternative to max coverage).

Per-frame score (seed document)::

    score = 0.35 depth_variation + 0.25 surface_complexity + 0.20 edge_density + 0.20 motion

with the four cues computed on a fixed 160x120 working resolution:

* ``depth_variation``: coefficient of variation (std / mean) of the valid depth, clipped to 1.
* ``surface_complexity``: diversity of surface normals -- normals from the cross product of
  neighbouring back-projected points, binned by azimuth (8) x elevation (4); the normalized
  entropy of that histogram (0 = one plane, 1 = normals spread evenly).
* ``edge_density``: fraction of pixels whose grey-level gradient magnitude exceeds 20/255.
* ``motion``: mean absolute grey-level difference to the *previous candidate frame* (a cheap
  stand-in for optical-flow magnitude), 0 for the first frame.

Each cue is min-max normalized over the candidate set (so the weights compare like with like).
**Colour-only frames** (no depth, or no intrinsics for the normals) have no depth cues; their
score uses the cues that are available with the weights renormalized to sum to one
(e.g. 0.5 edge + 0.5 motion), so colour-only and RGB-D frames are ranked on the same 0..1 scale.

A frame's own cues (all but ``motion``) and its working grey image are computed once per
frame and kept while the frame lives (:func:`own_cues`): the node scores every buffered frame
at each question, and between two questions most of them are the same frames.

Selection is greedy on the score.  The seed decays "scores of frames near the previously
selected one by 0.8^|i-j|"; read literally that would damp far frames more than near ones,
so it is implemented as the evident intent: after picking frame j every score is multiplied by
``1 - 0.8**|i - j|`` (0 for j itself, 0.2 for its neighbours, ~1 far away).  A small floor
(1e-3) is added to every score so that, among equally scored frames, the decay still spreads
the selection out in time.  Ties go to the lowest index.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.frame import Frame

WEIGHTS = {
    "depth_variation": 0.35,
    "surface_complexity": 0.25,
    "edge_density": 0.20,
    "motion": 0.20,
}
DECAY = 0.8
SCORE_FLOOR = 1e-3
WORK_SIZE = (160, 120)  # (width, height) of the working resolution
EDGE_THRESHOLD = 20.0 / 255.0
_AZ_BINS, _EL_BINS = 8, 4

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FrameCues:
    """Raw cues of N frames; NaN marks a cue that is unavailable for a frame.  Shapes (N,)."""

    depth_variation: FloatArray
    surface_complexity: FloatArray
    edge_density: FloatArray
    motion: FloatArray

    def as_matrix(self) -> FloatArray:
        """(N, 4) in the order of :data:`WEIGHTS`."""
        return np.stack(
            [self.depth_variation, self.surface_complexity, self.edge_density, self.motion], axis=1
        )


def _grey(frame: Frame) -> npt.NDArray[np.float32]:
    g = cv2.cvtColor(np.ascontiguousarray(frame.rgb), cv2.COLOR_RGB2GRAY)
    g = cv2.resize(g, WORK_SIZE, interpolation=cv2.INTER_AREA)
    return np.asarray(g, dtype=np.float32) / 255.0


def _work_depth(frame: Frame) -> npt.NDArray[np.float32] | None:
    if frame.depth_m is None:
        return None
    return np.asarray(
        cv2.resize(frame.depth_m.astype(np.float32), WORK_SIZE, interpolation=cv2.INTER_NEAREST)
    )


def edge_density(grey: npt.NDArray[np.float32]) -> float:
    """Fraction of pixels with gradient magnitude > 20/255 (grey in [0, 1])."""
    gx = np.zeros_like(grey)
    gy = np.zeros_like(grey)
    gx[:, 1:-1] = (grey[:, 2:] - grey[:, :-2]) * 0.5
    gy[1:-1, :] = (grey[2:, :] - grey[:-2, :]) * 0.5
    return float(np.mean(np.hypot(gx, gy) > EDGE_THRESHOLD))


def depth_variation(depth: npt.NDArray[np.float32]) -> float:
    """Coefficient of variation of valid depth, clipped to [0, 1]; NaN if < 16 valid pixels."""
    d = depth[np.isfinite(depth) & (depth > 0)]
    if d.size < 16:
        return float("nan")
    return float(np.clip(np.std(d) / max(float(np.mean(d)), 1e-6), 0.0, 1.0))


def surface_complexity(depth: npt.NDArray[np.float32], frame: Frame) -> float:
    """Normalized entropy of the normal-direction histogram; NaN without intrinsics/valid depth."""
    if frame.intrinsics is None:
        return float("nan")
    k = frame.intrinsics.scaled(WORK_SIZE[0], WORK_SIZE[1])
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    z = depth
    pts = np.stack([(u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z], axis=2)
    dx = pts[:-1, 1:] - pts[:-1, :-1]
    dy = pts[1:, :-1] - pts[:-1, :-1]
    valid = (z[:-1, :-1] > 0) & (z[:-1, 1:] > 0) & (z[1:, :-1] > 0)
    n = np.cross(dx, dy)[valid]
    norm = np.linalg.norm(n, axis=1)
    ok = norm > 1e-9
    if np.count_nonzero(ok) < 16:
        return float("nan")
    n = n[ok] / norm[ok, None]
    az = np.arctan2(n[:, 0], n[:, 2])
    el = np.arcsin(np.clip(n[:, 1], -1.0, 1.0))
    hist, _, _ = np.histogram2d(
        az, el, bins=(_AZ_BINS, _EL_BINS), range=((-np.pi, np.pi), (-np.pi / 2, np.pi / 2))
    )
    p = hist.ravel() / hist.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(_AZ_BINS * _EL_BINS))


@dataclass(frozen=True)
class OwnCues:
    """The cues of one frame on its own: its (120, 160) working grey image in [0, 1] (for the
    motion to the next candidate), edge density, and the depth cues (NaN without depth)."""

    grey: npt.NDArray[np.float32]
    edge_density: float
    depth_variation: float
    surface_complexity: float


#: each live frame's own cues (weak keys: an entry goes with its frame)
_OWN_CUES: weakref.WeakKeyDictionary[Frame, OwnCues] = weakref.WeakKeyDictionary()
_OWN_CUES_LOCK = threading.Lock()


def _compute_own_cues(frame: Frame) -> OwnCues:
    grey = _grey(frame)
    depth = _work_depth(frame)
    if depth is None:
        return OwnCues(grey, edge_density(grey), float("nan"), float("nan"))
    return OwnCues(grey, edge_density(grey), depth_variation(depth),
                   surface_complexity(depth, frame))


def own_cues(frame: Frame) -> OwnCues:
    """``frame``'s own cues, computed on its first use and kept while the frame lives (a
    :class:`Frame` is immutable)."""
    with _OWN_CUES_LOCK:
        cues = _OWN_CUES.get(frame)
    if cues is None:
        cues = _compute_own_cues(frame)
        with _OWN_CUES_LOCK:
            _OWN_CUES[frame] = cues
    return cues


def frame_cues(frames: Sequence[Frame]) -> FrameCues:
    """Raw cues of each frame (motion relative to the previous frame in the sequence)."""
    own = [own_cues(f) for f in frames]
    motion = np.zeros(len(own))
    for i in range(1, len(own)):
        motion[i] = float(np.mean(np.abs(own[i].grey - own[i - 1].grey)))
    return FrameCues(np.array([c.depth_variation for c in own], dtype=np.float64),
                     np.array([c.surface_complexity for c in own], dtype=np.float64),
                     np.array([c.edge_density for c in own], dtype=np.float64), motion)


def motion_complexity(frames: Sequence[Frame]) -> float:
    """Motion complexity of a clip in [0, 1]: mean grey difference between consecutive frames,
    scaled so that a mean change of 1/8 of the grey range (strong motion) maps to 1."""
    if len(frames) < 2:
        return 0.0
    m = frame_cues(frames).motion[1:]
    return float(np.clip(np.mean(m) * 8.0, 0.0, 1.0))


def scores_from_cues(cues: FrameCues) -> FloatArray:
    """Weighted score per frame in [SCORE_FLOOR, 1 + SCORE_FLOOR] (see module docstring)."""
    x = cues.as_matrix()
    w = np.array(list(WEIGHTS.values()))
    norm = np.full_like(x, np.nan)
    for c in range(x.shape[1]):
        col = x[:, c]
        ok = np.isfinite(col)
        if not ok.any():
            continue
        lo, hi = float(col[ok].min()), float(col[ok].max())
        norm[ok, c] = (col[ok] - lo) / (hi - lo) if hi > lo else 0.0
    avail = np.isfinite(norm)
    wsum = (w[None, :] * avail).sum(axis=1)
    num = np.where(avail, norm, 0.0) @ w
    base = np.divide(num, wsum, out=np.zeros_like(num), where=wsum > 0)
    out: FloatArray = base + SCORE_FLOOR
    return out


def frame_scores(frames: Sequence[Frame]) -> FloatArray:
    """Scores (N,) of frames; see :func:`scores_from_cues`."""
    if not frames:
        return np.zeros(0)
    return scores_from_cues(frame_cues(frames))


def select_by_score(
    scores: npt.ArrayLike,
    k: int,
    preselected: Sequence[int] = (),
    allowed: Sequence[int] | None = None,
) -> list[int]:
    """Greedy selection with the proximity decay.

    Args:
        scores: (N,) non-negative scores.
        k: number of frames to add.
        preselected: indices already chosen (their decay applies; they are not returned).
        allowed: indices that may be chosen (default: all).

    Returns:
        Up to ``k`` new indices in selection order.
    """
    s = np.array(scores, dtype=np.float64, copy=True)
    n = s.shape[0]
    idx = np.arange(n)
    eligible = np.zeros(n, dtype=bool)
    if allowed is None:
        eligible[:] = True
    else:
        eligible[np.asarray(list(allowed), dtype=np.intp)] = True
    chosen: list[int] = []

    def decay(j: int) -> None:
        s[:] *= 1.0 - DECAY ** np.abs(idx - j)

    for j in preselected:
        eligible[j] = False
        decay(j)
    while len(chosen) < k and eligible.any():
        masked = np.where(eligible, s, -np.inf)
        j = int(np.argmax(masked))  # first maximum: lowest index on ties
        chosen.append(j)
        eligible[j] = False
        decay(j)
    return chosen
