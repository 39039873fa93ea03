"""Ground-truth VSI-Bench-style questions computed exactly from a synthetic scene.

Inputs: a :class:`~spatial_mllm_ros.synthetic.scene.SceneLayout` (axis-aligned object boxes in
world metres, z up, REP 103) and the first-sighting stamp of each instance the camera saw
(``SyntheticScene.first_seen_ns()``).  Only objects the camera saw are asked about; a category
is *complete* when every instance of it was seen, *unique* when it has exactly one instance.

Definitions (following VSI-Bench's question generator, vision-x-nyu/thinking-in-space, whose
templates are used verbatim where known):

* ``object_counting`` -- number of instances of a complete category.
* ``object_abs_distance`` -- VSI-Bench measures "from the closest point of each object": its
  generator samples points inside both 3D boxes and takes the minimum pairwise distance. For
  axis-aligned boxes that minimum has a closed form, computed here exactly: per axis the gap
  ``max(0, a_min - b_max, b_min - a_max)``, distance = the norm of the gaps (0 when the boxes
  touch; such pairs are skipped because MRA needs a ground truth > 0). Not the centre distance.
* ``object_size_estimation`` -- the longest box side of a unique object, in centimetres.
* ``room_size_estimation`` -- floor area in m^2 (VSI-Bench: area of the room's floor outline;
  the synthetic room is a rectangle, so width x length).
* ``object_rel_distance`` -- which of four categories is closest (closest-point distance,
  minimum over the category's instances) to a unique object; asked only when the nearest
  beats the runner-up by at least ``rel_distance_margin_m``.
* ``object_rel_direction_{easy,medium,hard}`` -- standing at the centre of a unique object,
  facing the centre of another, where is a third: the angle in the floor plane measured
  counter-clockwise (to the left, z up) from the facing direction to the query object's centre.
  hard: quadrants front-left [0, 90), back-left [90, 180), back-right [180, 270), front-right
  [270, 360); medium: left [0, 135), back [135, 225), right [225, 360) (VSI-Bench's "back" =
  turning at least 135 degrees); easy: left (0, 180), right (180, 360) (VSI-Bench's easy
  generator was not available here: this is our reading of "left or right"). As in VSI-Bench a
  triple is skipped as ambiguous when two of its objects are closer than 0.3 m or farther than
  5 m (closest points), when the centre's angle lies within 10 degrees of a bin boundary, or
  when more than two of the query box's 8 corners fall in another bin than its centre.
* ``obj_appearance_order`` -- order of first sighting of four categories (a category's first
  sighting is its earliest instance's), asked only when the four times differ by at least
  ``min_appearance_gap_ns``; the options are the true order and three other permutations.
* ``route_planning`` is **not generated**: VSI-Bench's route questions were written by human
  annotators over free-space walks (turn sequences between objects); defining a sound
  ground truth would need a navigable free-space model of the room and a canonical way to
  phrase turns, which this generator does not have.

Multiple-choice options are shuffled with ``random.Random(seed)``: the same scene and seed give
the same file.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.evaluation.questions import Question
from spatial_mllm_ros.synthetic.scene import SceneLayout, SceneObject
from spatial_mllm_ros.vsibench.prompts import OPTION_LETTERS

__all__ = [
    "ROUTE_PLANNING_SUPPORTED",
    "SceneQuestionConfig",
    "category_distance",
    "closest_point_distance",
    "direction_angle_deg",
    "direction_label",
    "generate_scene_questions",
    "longest_dimension_cm",
    "relative_direction",
]

ROUTE_PLANNING_SUPPORTED = False
"""Route-planning questions are not generated (see the module docstring)."""

TEMPLATES: dict[str, str] = {
    "object_counting": "How many {category}(s) are in this room?",
    "object_abs_distance": (
        "Measuring from the closest point of each object, what is the direct distance between "
        "the {a} and the {b} (in meters)?"
    ),
    "object_size_estimation": (
        "What is the length of the longest dimension (length, width, or height) of the "
        "{category}, measured in centimeters?"
    ),
    "room_size_estimation": (
        "What is the size of this room (in square meters)? If multiple rooms are shown, "
        "estimate the size of the combined space."
    ),
    "object_rel_distance": (
        "Measuring from the closest point of each object, which of these objects ({choices}) "
        "is the closest to the {category}?"
    ),
    "object_rel_direction_hard": (
        "If I am standing by the {stand} and facing the {face}, is the {query} to my "
        "front-left, front-right, back-left, or back-right? The directions refer to the "
        "quadrants of a Cartesian plane (if I am standing at the origin and facing along the "
        "positive y-axis)."
    ),
    "object_rel_direction_medium": (
        "If I am standing by the {stand} and facing the {face}, is the {query} to my left, "
        "right, or back? An object is to my back if I would have to turn at least 135 degrees "
        "in order to face it."
    ),
    "object_rel_direction_easy": (
        "If I am standing by the {stand} and facing the {face}, is the {query} to my left or "
        "to my right?"
    ),
    "obj_appearance_order": (
        "What will be the first-time appearance order of the following categories in the "
        "video: {categories}?"
    ),
}

DIRECTIONS: dict[str, tuple[str, ...]] = {
    "hard": ("front-left", "front-right", "back-left", "back-right"),
    "medium": ("left", "right", "back"),
    "easy": ("left", "right"),
}
_BOUNDARIES: dict[str, tuple[float, ...]] = {
    "hard": (0.0, 90.0, 180.0, 270.0, 360.0),
    "medium": (0.0, 135.0, 225.0, 360.0),
    "easy": (0.0, 180.0, 360.0),
}


@dataclass(frozen=True)
class SceneQuestionConfig:
    """Generation settings.

    Attributes:
        seed: shuffles options and picks among candidates.
        max_per_type: questions per type at most (per difficulty for relative direction).
        rel_distance_margin_m: nearest vs runner-up margin for relative distance.
        min_pair_distance_m, max_pair_distance_m: VSI-Bench's direction-triple distance bounds.
        angle_margin_deg: VSI-Bench's ambiguity margin around direction bin boundaries.
        min_appearance_gap_ns: least gap between first sightings in an appearance order.
        id_prefix: prepended to every question id.
    """

    seed: int = 0
    max_per_type: int = 2
    rel_distance_margin_m: float = 0.15
    min_pair_distance_m: float = 0.3
    max_pair_distance_m: float = 5.0
    angle_margin_deg: float = 10.0
    min_appearance_gap_ns: int = 1
    id_prefix: str = ""


# ----------------------------------------------------------------------------- geometry
def closest_point_distance(a: SceneObject, b: SceneObject) -> float:
    """Euclidean distance between the closest points of two axis-aligned boxes (m; 0 if they
    touch or overlap)."""
    gap = np.maximum(0.0, np.maximum(a.bbox_min - b.bbox_max, b.bbox_min - a.bbox_max))
    return float(np.linalg.norm(gap))


def category_distance(objs_a: Sequence[SceneObject], objs_b: Sequence[SceneObject]) -> float:
    """Minimum closest-point distance over all instance pairs of two categories (m)."""
    return min(closest_point_distance(a, b) for a in objs_a for b in objs_b)


def longest_dimension_cm(obj: SceneObject) -> float:
    """Longest box side in centimetres (VSI-Bench object size)."""
    return 100.0 * obj.longest_side_m


def direction_angle_deg(
    stand_xy: npt.ArrayLike, face_xy: npt.ArrayLike, query_xy: npt.ArrayLike
) -> float:
    """Angle in [0, 360) from the facing direction to the query, counter-clockwise (left),
    in the floor plane (x, y; z up)."""
    s = np.asarray(stand_xy, dtype=np.float64)[:2]
    f = np.asarray(face_xy, dtype=np.float64)[:2] - s
    q = np.asarray(query_xy, dtype=np.float64)[:2] - s
    ang = math.degrees(math.atan2(f[0] * q[1] - f[1] * q[0], f[0] * q[0] + f[1] * q[1]))
    return ang % 360.0


def direction_label(angle_deg: float, difficulty: str) -> str:
    """The direction word of an angle (see the module docstring) for a difficulty."""
    a = angle_deg % 360.0
    if difficulty == "hard":
        return ("front-left", "back-left", "back-right", "front-right")[int(a // 90.0) % 4]
    if difficulty == "medium":
        return "left" if a < 135.0 else ("back" if a < 225.0 else "right")
    if difficulty == "easy":
        return "left" if a < 180.0 else "right"
    raise ValueError(f"unknown difficulty {difficulty!r}; expected easy, medium or hard")


def _box_corners(obj: SceneObject) -> npt.NDArray[np.float64]:
    lo, hi = obj.bbox_min, obj.bbox_max
    return np.array(list(itertools.product(*zip(lo, hi, strict=True))), dtype=np.float64)


def relative_direction(
    stand: SceneObject,
    face: SceneObject,
    query: SceneObject,
    difficulty: str,
    angle_margin_deg: float = 10.0,
) -> str | None:
    """Direction of ``query`` from ``stand`` facing ``face``; None when ambiguous (centre
    angle within ``angle_margin_deg`` of a bin boundary, or > 2 of the 8 corners in another
    bin than the centre)."""
    s, f = stand.center_m, face.center_m
    angle = direction_angle_deg(s, f, query.center_m)
    bounds = _BOUNDARIES[difficulty]
    if min(abs(angle - b) for b in bounds) < angle_margin_deg:
        return None
    label = direction_label(angle, difficulty)
    others = sum(
        direction_label(direction_angle_deg(s, f, c), difficulty) != label
        for c in _box_corners(query)
    )
    if others > 2:
        return None
    return label


# ----------------------------------------------------------------------------- helpers
class _Facts:
    def __init__(self, layout: SceneLayout, first_seen_ns: Mapping[int, int]) -> None:
        self.layout = layout
        self.first_seen = {int(k): int(v) for k, v in first_seen_ns.items()}
        by_label: dict[str, list[SceneObject]] = {}
        for o in layout.objects:
            by_label.setdefault(o.label, []).append(o)
        self.by_label = by_label
        self.complete = sorted(
            lbl for lbl, objs in by_label.items()
            if all(o.instance_id in self.first_seen for o in objs)
        )
        self.unique = [lbl for lbl in self.complete if len(by_label[lbl]) == 1]

    def obj(self, label: str) -> SceneObject:
        return self.by_label[label][0]

    def label_first_seen(self, label: str) -> int:
        return min(self.first_seen[o.instance_id] for o in self.by_label[label])


def _options(
    rng: random.Random, correct: str, distractors: Sequence[str]
) -> tuple[tuple[str, ...], str]:
    opts = [correct, *distractors]
    rng.shuffle(opts)
    letter = OPTION_LETTERS[opts.index(correct)]
    return tuple(f"{OPTION_LETTERS[i]}. {o}" for i, o in enumerate(opts)), letter


def _take(rng: random.Random, items: list[Question], n: int) -> list[Question]:
    if len(items) <= n:
        return items
    return sorted(rng.sample(items, n), key=items.index)


# ----------------------------------------------------------------------------- generators
@dataclass(frozen=True)
class _Make:
    """Builds the questions of one scene: ids ``<id_prefix><question_type>_<n>``."""

    id_prefix: str

    def __call__(self, qtype: str, n: int, text: str, gt: str | float,
                 options: tuple[str, ...] | None = None, **extra: object) -> Question:
        return Question(
            id=f"{self.id_prefix}{qtype}_{n}", question=text, question_type=qtype,
            ground_truth=gt, options=options, extra=dict(extra),
        )


def _counting(facts: _Facts, make: _Make) -> list[Question]:
    """Object counting: every complete category, most numerous first."""
    return [
        make("object_counting", i, TEMPLATES["object_counting"].format(category=lbl),
             float(len(facts.by_label[lbl])), category=lbl)
        for i, lbl in enumerate(sorted(facts.complete, key=lambda x: (-len(facts.by_label[x]), x)))
    ]


def _abs_distances(facts: _Facts, make: _Make) -> list[Question]:
    """Absolute distance (m, closest points) between every pair of unique objects that do
    not touch."""
    abs_q: list[Question] = []
    for a, b in itertools.combinations(facts.unique, 2):
        d = closest_point_distance(facts.obj(a), facts.obj(b))
        if d <= 0.0:
            continue
        abs_q.append(make("object_abs_distance", len(abs_q),
                          TEMPLATES["object_abs_distance"].format(a=a, b=b), round(d, 4),
                          objects=[a, b]))
    return abs_q


def _sizes(facts: _Facts, make: _Make) -> list[Question]:
    """Object size (longest side, cm) of every unique object."""
    return [
        make("object_size_estimation", i,
             TEMPLATES["object_size_estimation"].format(category=lbl),
             round(longest_dimension_cm(facts.obj(lbl)), 4), category=lbl)
        for i, lbl in enumerate(facts.unique)
    ]


def _rel_distances(facts: _Facts, make: _Make, rng: random.Random,
                   margin_m: float) -> list[Question]:
    """Relative distance: per unique target, the first set of four other complete categories
    whose nearest beats the runner-up by ``margin_m`` (m); options shuffled with ``rng``."""
    rel_q: list[Question] = []
    for target in facts.unique:
        pool = [lbl for lbl in facts.complete if lbl != target]
        for choice in itertools.combinations(pool, 4):
            dists = sorted(
                (category_distance(facts.by_label[c], [facts.obj(target)]), c) for c in choice
            )
            if dists[1][0] - dists[0][0] < margin_m:
                continue
            ordered = list(choice)
            rng.shuffle(ordered)
            letter = OPTION_LETTERS[ordered.index(dists[0][1])]
            opts = tuple(f"{OPTION_LETTERS[i]}. {c}" for i, c in enumerate(ordered))
            rel_q.append(make("object_rel_distance", len(rel_q),
                              TEMPLATES["object_rel_distance"].format(
                                  choices=", ".join(ordered), category=target),
                              letter, opts, target=target))
            break  # one choice set per target
    return rel_q


def _rel_directions(facts: _Facts, make: _Make, rng: random.Random, cfg: SceneQuestionConfig,
                    difficulty: str) -> list[Question]:
    """Relative direction at ``difficulty``: every unambiguous (stand, face, query) of the
    triples of unique objects within the pair distance bounds; options shuffled with
    ``rng``."""
    qtype = f"object_rel_direction_{difficulty}"
    dir_q: list[Question] = []
    for triple in itertools.combinations(facts.unique, 3):
        objs = [facts.obj(x) for x in triple]
        pair_d = [closest_point_distance(p, q) for p, q in itertools.combinations(objs, 2)]
        if min(pair_d) < cfg.min_pair_distance_m or max(pair_d) > cfg.max_pair_distance_m:
            continue
        for s, f, q in ((0, 1, 2), (0, 2, 1), (1, 0, 2)):
            gt = relative_direction(objs[s], objs[f], objs[q], difficulty,
                                    cfg.angle_margin_deg)
            if gt is None:
                continue
            words = DIRECTIONS[difficulty]
            opts, letter = _options(rng, gt, [w for w in words if w != gt])
            dir_q.append(make(
                qtype, len(dir_q),
                TEMPLATES[qtype].format(stand=triple[s], face=triple[f], query=triple[q]),
                letter, opts, direction=gt,
                objects=[triple[s], triple[f], triple[q]],
            ))
    return dir_q


def _appearance_orders(layout: SceneLayout, facts: _Facts, make: _Make, rng: random.Random,
                       min_gap_ns: int) -> list[Question]:
    """Appearance order of every four seen categories whose first sightings (ns) differ by
    ``min_gap_ns`` at least; the true order and three other permutations, shuffled with
    ``rng``."""
    seen_labels = sorted(
        {o.label for o in layout.objects if o.instance_id in facts.first_seen}
    )
    first = {
        lbl: min(facts.first_seen[o.instance_id] for o in facts.by_label[lbl]
                 if o.instance_id in facts.first_seen)
        for lbl in seen_labels
    }
    app_q: list[Question] = []
    for four in itertools.combinations(seen_labels, 4):
        times = sorted(first[c] for c in four)
        if min(b - a for a, b in itertools.pairwise(times)) < min_gap_ns:
            continue
        order = sorted(four, key=lambda c: first[c])
        shown = list(four)
        rng.shuffle(shown)
        perms = [list(p) for p in itertools.permutations(order) if list(p) != order]
        distractors = [", ".join(p) for p in rng.sample(perms, 3)]
        opts, letter = _options(rng, ", ".join(order), distractors)
        app_q.append(make("obj_appearance_order", len(app_q),
                          TEMPLATES["obj_appearance_order"].format(categories=", ".join(shown)),
                          letter, opts, order=order))
    return app_q


def generate_scene_questions(
    layout: SceneLayout,
    first_seen_ns: Mapping[int, int],
    config: SceneQuestionConfig | None = None,
) -> list[Question]:
    """Every question type this module defines, with exact ground truths (see module doc).

    The types are generated in a fixed order that draws on one ``random.Random(seed)``, so
    the same scene and seed give the same questions."""
    cfg = config or SceneQuestionConfig()
    facts = _Facts(layout, first_seen_ns)
    rng = random.Random(cfg.seed)
    make = _Make(cfg.id_prefix)
    n = cfg.max_per_type
    out = _counting(facts, make)[:n]
    out += _take(rng, _abs_distances(facts, make), n)
    out += _take(rng, _sizes(facts, make), n)
    out.append(make("room_size_estimation", 0, TEMPLATES["room_size_estimation"],
                    round(layout.room.floor_area_m2, 6)))
    out += _take(rng, _rel_distances(facts, make, rng, cfg.rel_distance_margin_m), n)
    for difficulty in ("easy", "medium", "hard"):
        out += _take(rng, _rel_directions(facts, make, rng, cfg, difficulty), n)
    out += _take(rng, _appearance_orders(layout, facts, make, rng, cfg.min_appearance_gap_ns),
                 n)
    return out
