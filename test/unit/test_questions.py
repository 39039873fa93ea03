"""The questions file: loading, validation errors naming line and field, writing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spatial_mllm_ros.evaluation.errors import QuestionsFileError
from spatial_mllm_ros.evaluation.questions import Question, load_questions, write_questions

GOOD: list[dict[str, Any]] = [
    {
        "id": "q1",
        "question": "How many chairs are in this room?",
        "question_type": "object_counting",
        "ground_truth": 4,
        "bag_time_s": 12.5,
    },
    {
        "id": 2,
        "question": "Which is closest to the door?",
        "question_type": "object_rel_direction_hard",
        "options": ["A. sofa", "B. chair", "C. table"],
        "ground_truth": "b",
        "until_stamp_ns": 1_700_000_000_000_000_000,
        "scene_name": "scene0001",
    },
    {
        "id": "vsi-3",
        "question": "What is the size of this room?",
        "question_type": "room_size_estimation",
        "options": None,
        "ground_truth": "23.5",
    },
    {"id": "o", "question": "What is on the shelf?", "question_type": "open"},
]


def write_lines(path: Path, rows: list[Any], blank_after_first: bool = False) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    if blank_after_first:
        lines.insert(1, "   ")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_good_file(tmp_path: Path) -> None:
    qs = load_questions(write_lines(tmp_path / "q.jsonl", GOOD, blank_after_first=True))
    assert [q.id for q in qs] == ["q1", 2, "vsi-3", "o"]
    assert [q.line for q in qs] == [1, 3, 4, 5]  # the blank line 2 is skipped
    q1, q2, q3, q4 = qs
    assert q1.ground_truth == 4.0 and q1.options is None and q1.bag_time_s == 12.5
    assert q1.cutoff_stamp_ns(1_000_000_000) == 1_000_000_000 + 12_500_000_000
    assert q2.ground_truth == "B" and q2.options == ("A. sofa", "B. chair", "C. table")
    assert q2.extra == {"scene_name": "scene0001"}
    assert q2.cutoff_stamp_ns(5) == 1_700_000_000_000_000_000
    assert q3.ground_truth == 23.5 and q3.cutoff_stamp_ns(0) is None
    assert q4.ground_truth is None


def test_round_trip(tmp_path: Path) -> None:
    qs = load_questions(write_lines(tmp_path / "q.jsonl", GOOD))
    out = tmp_path / "out.jsonl"
    write_questions(out, qs)
    again = load_questions(out)
    assert [q.to_json_dict() for q in again] == [q.to_json_dict() for q in qs]
    assert again[1].extra == {"scene_name": "scene0001"}


def test_writer_keeps_unicode(tmp_path: Path) -> None:
    q = Question(id="u", question="Wie viele Stühle?", question_type="open", ground_truth=None)
    write_questions(tmp_path / "u.jsonl", [q])
    assert "Stühle" in (tmp_path / "u.jsonl").read_text(encoding="utf-8")


def base(**changes: Any) -> dict[str, Any]:
    row = dict(GOOD[1])
    row.update(changes)
    return {k: v for k, v in row.items() if v != "<drop>"}


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("{not json", None),
        ("[1, 2]", None),
        (base(id="<drop>"), "id"),
        (base(id=True), "id"),
        (base(id=1.5), "id"),
        (base(id="  "), "id"),
        (base(question="<drop>"), "question"),
        (base(question="   "), "question"),
        (base(question_type="object_colour"), "question_type"),
        (base(question_type="<drop>"), "question_type"),
        (base(options="<drop>"), "options"),
        (base(options=["A. only"]), "options"),
        (base(options="A. x, B. y"), "options"),
        (base(options=["A. x", ""]), "options"),
        (base(ground_truth="D"), "ground_truth"),  # only A..C exist
        (base(ground_truth="AB"), "ground_truth"),
        (base(ground_truth=1), "ground_truth"),
        (base(question_type="object_counting", options=None, ground_truth=0), "ground_truth"),
        (base(question_type="object_counting", options=None, ground_truth="x"), "ground_truth"),
        (base(question_type="object_counting", ground_truth=3), "options"),
        (base(question_type="open", ground_truth=3), "ground_truth"),
        (base(bag_time_s=-1), "bag_time_s"),
        (base(bag_time_s="12"), "bag_time_s"),
        (base(until_stamp_ns=1.5), "until_stamp_ns"),
    ],
)
def test_errors_name_line_and_field(tmp_path: Path, row: Any, field: str | None) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [GOOD[0], row])
    with pytest.raises(QuestionsFileError) as info:
        load_questions(path)
    err = info.value
    assert err.line == 2 and err.field == field
    assert f"{path}:2" in str(err)
    if field is not None:
        assert repr(field) in str(err)


def test_duplicate_id(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "dup.jsonl", [GOOD[0], GOOD[1], GOOD[0]])
    with pytest.raises(QuestionsFileError) as info:
        load_questions(path)
    assert info.value.line == 3 and info.value.field == "id" and "line 1" in str(info.value)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(QuestionsFileError) as info:
        load_questions(tmp_path / "missing.jsonl")
    assert info.value.line is None
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(QuestionsFileError, match="no questions"):
        load_questions(empty)
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(QuestionsFileError):
        load_questions(binary)


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD[0]).encode())
    assert load_questions(path)[0].id == "q1"
