"""Ground-truth scene questions, checked against hand computations on hand-built layouts."""

from __future__ import annotations

import json
import math

import pytest

from spatial_mllm_ros.evaluation.questions import parse_question_line
from spatial_mllm_ros.evaluation.scene_questions import (
    ROUTE_PLANNING_SUPPORTED,
    SceneQuestionConfig,
    closest_point_distance,
    direction_angle_deg,
    generate_scene_questions,
    relative_direction,
)
from spatial_mllm_ros.synthetic.scene import Room, SceneLayout, SceneObject


def box(iid: int, label: str, center, size) -> SceneObject:
    return SceneObject(iid, label, (1, 2, 3), tuple(map(float, center)), tuple(map(float, size)))


# Room 6 x 5 m.  Unit-ish boxes on the floor (z centre = half height).
SOFA = box(1, "sofa", (1.0, 1.0, 0.4), (2.0, 1.0, 0.8))  # x 0..2, y 0.5..1.5
TV = box(2, "tv", (5.0, 4.0, 1.0), (1.2, 0.1, 0.7))  # x 4.4..5.6, y 3.95..4.05
TABLE = box(3, "table", (3.0, 1.0, 0.35), (1.0, 0.8, 0.7))  # x 2.5..3.5, y 0.6..1.4
LAMP = box(4, "lamp", (1.0, 4.0, 0.8), (0.3, 0.3, 1.6))  # x 0.85..1.15
CHAIR_A = box(5, "chair", (4.0, 1.0, 0.45), (0.5, 0.5, 0.9))
CHAIR_B = box(6, "chair", (5.2, 2.0, 0.45), (0.5, 0.5, 0.9))
PLANT = box(7, "plant", (5.5, 0.5, 0.4), (0.4, 0.4, 0.8))
LAYOUT = SceneLayout(0, Room(6.0, 5.0, 2.6), (SOFA, TV, TABLE, LAMP, CHAIR_A, CHAIR_B, PLANT))
SEEN = {1: 100, 2: 400, 3: 200, 4: 300, 5: 500, 6: 600, 7: 700}


def by_type(questions, qtype):
    return [q for q in questions if q.question_type == qtype]


def option_text(q):
    letter = q.ground_truth
    return next(o for o in q.options if o.startswith(f"{letter}. "))[3:]


def test_closest_point_distance_by_hand() -> None:
    # sofa x max 2.0, table x min 2.5; y and z overlap -> 0.5 m
    assert closest_point_distance(SOFA, TABLE) == pytest.approx(0.5)
    # sofa (x 0..2, y 0.5..1.5) to tv (x 4.4..5.6, y 3.95..4.05, z 0.65..1.35): gaps 2.4, 2.45, 0
    assert closest_point_distance(SOFA, TV) == pytest.approx(math.hypot(2.4, 2.45))
    assert closest_point_distance(TV, SOFA) == closest_point_distance(SOFA, TV)
    touching = box(9, "x", (2.5, 1.0, 0.4), (1.0, 1.0, 0.8))
    assert closest_point_distance(SOFA, touching) == 0.0
    # not the centre distance
    assert closest_point_distance(SOFA, TABLE) < math.dist(SOFA.center_m, TABLE.center_m)


def test_direction_angles_and_labels() -> None:
    s, f = (0.0, 0.0), (0.0, 1.0)  # facing +y: left is -x
    assert direction_angle_deg(s, f, (-1.0, 0.0)) == pytest.approx(90.0)
    assert direction_angle_deg(s, f, (1.0, 0.0)) == pytest.approx(270.0)

    def obj(x, y):
        return box(9, "q", (x, y, 0.5), (0.1, 0.1, 1.0))

    stand, face = obj(0, 0), obj(0, 2)
    cases = {
        (-1.0, 1.0): ("left", "left", "front-left"),
        (-0.5, -1.0): ("left", "back", "back-left"),  # 153 deg
        (-1.0, -0.6): ("left", "left", "back-left"),  # 121 deg
        (1.0, -0.6): ("right", "right", "back-right"),  # 239 deg
        (1.0, 1.0): ("right", "right", "front-right"),
        (-1.0, 0.3): ("left", "left", "front-left"),
        (0.3, -1.0): ("right", "back", "back-right"),
    }
    for (x, y), expected in cases.items():
        got = tuple(
            relative_direction(stand, face, obj(x, y), d) for d in ("easy", "medium", "hard")
        )
        assert got == expected, (x, y)
    # within 10 degrees of a boundary: ambiguous
    assert relative_direction(stand, face, obj(0.05, 2.0), "easy") is None  # ~1.4 deg from 0
    assert relative_direction(stand, face, obj(-1.0, -0.9), "medium") is None  # ~132 deg
    # a wide query box straddling the facing line is ambiguous (corners on both sides)
    wide = box(9, "w", (0.0, 3.0, 0.5), (3.0, 0.1, 1.0))
    assert relative_direction(stand, face, wide, "hard") is None


def test_generated_answers_match_hand_computation() -> None:
    qs = generate_scene_questions(LAYOUT, SEEN, SceneQuestionConfig(seed=1, max_per_type=50))
    # every line is valid for the questions-file parser
    for q in qs:
        parse_question_line(json.dumps(q.to_json_dict()))
    counting = {q.extra["category"]: q.ground_truth for q in by_type(qs, "object_counting")}
    assert counting["chair"] == 2.0 and counting["sofa"] == 1.0
    room = by_type(qs, "room_size_estimation")
    assert len(room) == 1 and room[0].ground_truth == pytest.approx(30.0)
    sizes = {q.extra["category"]: q.ground_truth for q in by_type(qs, "object_size_estimation")}
    assert sizes == pytest.approx(
        {"sofa": 200.0, "tv": 120.0, "table": 100.0, "lamp": 160.0, "plant": 80.0}
    )  # chairs are not unique: not asked
    dists = {tuple(q.extra["objects"]): q.ground_truth for q in by_type(qs, "object_abs_distance")}
    assert dists[("sofa", "table")] == pytest.approx(0.5)
    assert dists[("lamp", "plant")] == pytest.approx(math.hypot(4.15, 3.15), abs=5e-5)  # 0.1 mm
    # relative distance: the answer letter points at the closest category (closest points,
    # chair = the nearer of its two instances)
    for q in by_type(qs, "object_rel_distance"):
        target = next(o for o in LAYOUT.objects if o.label == q.extra["target"])
        choices = [o[3:] for o in q.options]
        dist = {
            c: min(closest_point_distance(target, o) for o in LAYOUT.objects if o.label == c)
            for c in choices
        }
        assert option_text(q) == min(dist, key=dist.get)
    # relative direction: answer = independent angle computation at the object centres
    n_dir = 0
    for diff in ("easy", "medium", "hard"):
        for q in by_type(qs, f"object_rel_direction_{diff}"):
            s, f, t = (
                next(o for o in LAYOUT.objects if o.label == lbl) for lbl in q.extra["objects"]
            )
            fx, fy = f.center_m[0] - s.center_m[0], f.center_m[1] - s.center_m[1]
            qx, qy = t.center_m[0] - s.center_m[0], t.center_m[1] - s.center_m[1]
            ang = math.degrees(math.atan2(fx * qy - fy * qx, fx * qx + fy * qy)) % 360
            left = ang < 180
            if diff == "easy":
                want = "left" if left else "right"
            elif diff == "medium":
                want = "back" if 135 <= ang < 225 else ("left" if left else "right")
            else:
                want = ("front-" if ang < 90 or ang >= 270 else "back-") + (
                    "left" if left else "right"
                )
            assert option_text(q) == want
            assert len(q.options) == {"easy": 2, "medium": 3, "hard": 4}[diff]
            n_dir += 1
    assert n_dir > 0
    # appearance order: first sightings sofa 100, table 200, lamp 300, tv 400, chair 500, plant 700
    first = {"sofa": 100, "table": 200, "lamp": 300, "tv": 400, "chair": 500, "plant": 700}
    app = by_type(qs, "obj_appearance_order")
    assert app
    for q in app:
        order = option_text(q).split(", ")
        assert order == sorted(order, key=first.get)
        assert len(set(q.options)) == 4
    assert not by_type(qs, "route_planning") and ROUTE_PLANNING_SUPPORTED is False


def test_unseen_objects_are_not_asked_about() -> None:
    seen = {k: v for k, v in SEEN.items() if k not in (6, 2)}  # one chair and the tv unseen
    qs = generate_scene_questions(LAYOUT, seen, SceneQuestionConfig(max_per_type=50))
    counting = {q.extra["category"] for q in by_type(qs, "object_counting")}
    assert "chair" not in counting and "tv" not in counting
    assert all("tv" not in q.question for q in qs if q.question_type != "obj_appearance_order")
    for q in by_type(qs, "obj_appearance_order"):
        assert "tv" not in q.question


def test_same_seed_same_questions() -> None:
    a = generate_scene_questions(LAYOUT, SEEN, SceneQuestionConfig(seed=3))
    b = generate_scene_questions(LAYOUT, SEEN, SceneQuestionConfig(seed=3))
    assert [q.to_json_dict() for q in a] == [q.to_json_dict() for q in b]
