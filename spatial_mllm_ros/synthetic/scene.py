"""Indoor room layouts with labelled furniture boxes (ground truth for tests and evaluation).

World frame (REP 103): x and y span the floor, z points up, metres.  The room is the
axis-aligned box ``[0, width_m] x [0, length_m] x [0, height_m]``; the floor is ``z = 0``.
Every object is an axis-aligned box given by its centre and full size (x, y, z extents) in
world metres, with a unique ``instance_id`` (1, 2, ...; 0 is reserved for the room's floor,
walls and ceiling in instance masks), a ``label`` (category, may repeat, e.g. two chairs) and a
display colour.  ``Room.floor_area_m2 = width_m * length_m``.

Layouts are deterministic functions of the seed.  Objects stand on the floor (or hang on a
wall: tv at 0.9-1.3 m), never overlap in plan view, and stay out of a central keep-out area
that the camera walkthrough (:mod:`.trajectory`) uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# label: (size ranges (x, y, z) in metres, base colour RGB, placement)
CATALOGUE: dict[str, tuple[tuple[tuple[float, float], ...], tuple[int, int, int], str]] = {
    "chair": (((0.45, 0.6), (0.45, 0.6), (0.8, 1.0)), (170, 90, 40), "floor"),
    "table": (((1.0, 1.6), (0.7, 1.0), (0.7, 0.78)), (120, 75, 45), "floor"),
    "sofa": (((1.8, 2.3), (0.8, 1.0), (0.8, 0.95)), (60, 90, 160), "wall"),
    "tv": (((0.9, 1.4), (0.06, 0.1), (0.55, 0.8)), (25, 25, 30), "wall_high"),
    "stove": (((0.6, 0.75), (0.6, 0.65), (0.85, 0.92)), (200, 200, 205), "wall"),
    "bed": (((1.4, 1.8), (1.9, 2.1), (0.45, 0.6)), (220, 200, 170), "wall"),
    "door": (((0.8, 0.95), (0.04, 0.06), (1.95, 2.1)), (150, 110, 70), "wall"),
    "refrigerator": (((0.6, 0.8), (0.6, 0.75), (1.6, 1.9)), (235, 235, 240), "wall"),
    "cabinet": (((0.6, 1.2), (0.4, 0.6), (0.8, 1.2)), (140, 160, 120), "wall"),
    "bookshelf": (((0.8, 1.2), (0.3, 0.4), (1.6, 2.0)), (100, 60, 30), "wall"),
    "lamp": (((0.3, 0.4), (0.3, 0.4), (1.4, 1.7)), (240, 220, 90), "floor"),
    "plant": (((0.35, 0.5), (0.35, 0.5), (0.6, 1.2)), (50, 140, 60), "floor"),
}
LABELS: tuple[str, ...] = tuple(CATALOGUE)


@dataclass(frozen=True)
class SceneObject:
    """A labelled axis-aligned box in world metres."""

    instance_id: int
    label: str
    color_rgb: tuple[int, int, int]
    center_m: tuple[float, float, float]
    size_m: tuple[float, float, float]

    @property
    def bbox_min(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.center_m) - np.asarray(self.size_m) / 2.0

    @property
    def bbox_max(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.center_m) + np.asarray(self.size_m) / 2.0

    @property
    def volume_m3(self) -> float:
        return float(np.prod(self.size_m))

    @property
    def longest_side_m(self) -> float:
        """Longest box dimension (VSI-Bench 'object size' in metres)."""
        return float(max(self.size_m))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneObject:
        return cls(
            int(d["instance_id"]),
            str(d["label"]),
            tuple(int(c) for c in d["color_rgb"]),  # type: ignore[arg-type]
            tuple(float(c) for c in d["center_m"]),  # type: ignore[arg-type]
            tuple(float(c) for c in d["size_m"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Room:
    """The room box ``[0, width_m] x [0, length_m] x [0, height_m]`` (x, y, z)."""

    width_m: float
    length_m: float
    height_m: float
    has_ceiling: bool = True

    @property
    def floor_area_m2(self) -> float:
        return self.width_m * self.length_m

    @property
    def center_xy(self) -> npt.NDArray[np.float64]:
        return np.array([self.width_m / 2.0, self.length_m / 2.0])

    def keepout_half_extent(self) -> npt.NDArray[np.float64]:
        """Half-size (x, y) of the central area kept free for the camera path."""
        return np.array([0.15 * self.width_m + 0.5, 0.15 * self.length_m + 0.5])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["floor_area_m2"] = self.floor_area_m2
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Room:
        return cls(
            float(d["width_m"]), float(d["length_m"]), float(d["height_m"]), bool(d["has_ceiling"])
        )


@dataclass(frozen=True)
class SceneLayout:
    """A room and its objects; deterministic from ``seed``."""

    seed: int
    room: Room
    objects: tuple[SceneObject, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "room": self.room.to_dict(),
            "objects": [o.to_dict() for o in self.objects],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneLayout:
        return cls(
            int(d["seed"]),
            Room.from_dict(d["room"]),
            tuple(SceneObject.from_dict(o) for o in d["objects"]),
        )


def _overlaps(
    a_min: npt.NDArray[np.float64],
    a_max: npt.NDArray[np.float64],
    b_min: npt.NDArray[np.float64],
    b_max: npt.NDArray[np.float64],
    margin: float,
) -> bool:
    return bool(np.all(a_min - margin < b_max) and np.all(b_min - margin < a_max))


def generate_layout(
    seed: int,
    n_objects: tuple[int, int] = (7, 11),
    has_ceiling: bool = True,
    labels: tuple[str, ...] = LABELS,
) -> SceneLayout:
    """Random room (width 5-9 m, length 4-8 m, height 2.5-3.0 m) with furniture boxes.

    Args:
        seed: RNG seed; the same seed gives the same layout.
        n_objects: inclusive range of objects to try to place (some may not fit).
        has_ceiling: render a ceiling (otherwise rays leaving through the top have no depth).
        labels: categories to draw from.
    """
    rng = np.random.default_rng(seed)
    room = Room(
        round(float(rng.uniform(5.0, 9.0)), 2),
        round(float(rng.uniform(4.0, 8.0)), 2),
        round(float(rng.uniform(2.5, 3.0)), 2),
        has_ceiling,
    )
    c = room.center_xy
    keep = room.keepout_half_extent()
    keep_min = np.array([c[0] - keep[0], c[1] - keep[1]])
    keep_max = np.array([c[0] + keep[0], c[1] + keep[1]])
    target = int(rng.integers(n_objects[0], n_objects[1] + 1))
    placed: list[SceneObject] = []
    footprints: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = []
    for _ in range(target):
        label = str(labels[int(rng.integers(len(labels)))])
        ranges, base, placement = CATALOGUE[label]
        size = np.round([rng.uniform(lo, hi) for lo, hi in ranges], 3)
        for _attempt in range(60):
            sx, sy, sz = size
            z0 = 0.0
            if placement in ("wall", "wall_high"):
                wall = int(rng.integers(4))
                if wall in (2, 3):  # walls at y = const are x-aligned; walls at x = const: swap
                    sx, sy = sy, sx
                along_x = wall in (0, 1)
                if along_x:
                    x = rng.uniform(sx / 2 + 0.05, room.width_m - sx / 2 - 0.05)
                    y = sy / 2 + 0.01 if wall == 0 else room.length_m - sy / 2 - 0.01
                else:
                    y = rng.uniform(sy / 2 + 0.05, room.length_m - sy / 2 - 0.05)
                    x = sx / 2 + 0.01 if wall == 2 else room.width_m - sx / 2 - 0.01
                if placement == "wall_high":
                    z0 = round(float(rng.uniform(0.9, 1.3)), 3)
            else:
                if rng.random() < 0.5:
                    sx, sy = sy, sx
                x = rng.uniform(sx / 2 + 0.05, room.width_m - sx / 2 - 0.05)
                y = rng.uniform(sy / 2 + 0.05, room.length_m - sy / 2 - 0.05)
            fmin = np.array([x - sx / 2, y - sy / 2])
            fmax = np.array([x + sx / 2, y + sy / 2])
            if fmin[0] < 0 or fmin[1] < 0 or fmax[0] > room.width_m or fmax[1] > room.length_m:
                continue
            if _overlaps(fmin, fmax, keep_min, keep_max, 0.0):
                continue
            if any(_overlaps(fmin, fmax, a, b, 0.1) for a, b in footprints):
                continue
            jitter = rng.integers(-25, 26, size=3)
            colour = tuple(int(v) for v in np.clip(np.asarray(base) + jitter, 0, 255))
            placed.append(
                SceneObject(
                    instance_id=len(placed) + 1,
                    label=label,
                    color_rgb=colour,  # type: ignore[arg-type]
                    center_m=(
                        round(float(x), 4),
                        round(float(y), 4),
                        round(z0 + float(sz) / 2, 4),
                    ),  # exact: sz has 3 decimals
                    size_m=(round(float(sx), 3), round(float(sy), 3), round(float(sz), 3)),
                )
            )
            footprints.append((fmin, fmax))
            break
    return SceneLayout(seed, room, tuple(placed))
