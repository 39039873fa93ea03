"""The data behind the evaluation report: result lines embed the answer record unchanged,
latency parts add up to the total, one coverage point per question, zero scores stay zero,
captioned contact sheets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.evaluation.metrics import score_one
from spatial_mllm_ros.evaluation.questions import Question
from spatial_mllm_ros.evaluation.report import OTHER_EXPLAINED, write_report
from spatial_mllm_ros.evaluation.report_data import (
    LATENCY_STAGES,
    OTHER,
    coverage_points,
    latency_table,
    metrics_by_strategy,
    score_bars,
)
from spatial_mllm_ros.evaluation.results import (
    RESULTS_FILE,
    RESULTS_FORMAT,
    ResultSink,
    result_line,
)
from spatial_mllm_ros.evaluation.thumbnails import (
    CAPTION_PX,
    frame_captions,
    write_contact_sheet,
)

ABCD = ("A. w", "B. x", "C. y", "D. z")


def line(qid: str, strategy: str, answer: str, qtype: str = "object_counting",
         gt: float | str = 4.0, options=None, status=AnswerStatus.OK,
         timings: dict[str, float] | None = None, coverage: float = 0.5,
         uniform: float = 0.4) -> dict:
    q = Question(id=qid, question=f"{qid}?", question_type=qtype, ground_truth=gt,
                 options=options)
    rec = AnswerRecord(query_id=0, question=q.question, status=status, question_type=qtype,
                       answer=answer, frame_stamps_ns=[1, 2], strategy=strategy,
                       coverage=coverage, uniform_coverage=uniform,
                       timings_s=dict({"sampling": 0.01, "total": 0.05} if timings is None
                                      else timings))
    return result_line(q, strategy, None, 10, rec, score_one(qtype, answer, gt), 0.04, 1,
                       "lmms-eval")


def test_result_line_embeds_exactly_the_answer_record() -> None:
    rec = AnswerRecord(query_id=3, question="How many?", status=AnswerStatus.OK,
                       question_type="object_counting", answer="4", numeric_value=4.0,
                       frame_stamps_ns=[5, 9], strategy="uniform", coverage=math.nan,
                       timings_s={"decode": 0.5, "total": 0.7})
    q = Question(id="q1", question="How many?", question_type="object_counting",
                 ground_truth=4.0)
    got = result_line(q, "uniform", 123, 8, rec, score_one("object_counting", "4", 4.0),
                      0.6, 1, "spatial-mllm-v1.1")
    assert got["record"] == rec.to_json()
    assert got["format"] == RESULTS_FORMAT and got["id"] == "q1" and got["ground_truth"] == 4.0
    assert got["score"]["score"] == 1.0 and got["cutoff_stamp_ns"] == 123
    assert got["prompt_template"] == "spatial-mllm-v1.1"  # the report rescores with its rule
    # the evaluation's own keys do not repeat the answer's fields
    assert not {"answer", "status", "frame_stamps_ns", "timings_s"} & set(got)


def test_sink_writes_strict_json_with_nan_as_null(tmp_path: Path) -> None:
    path = tmp_path / RESULTS_FILE
    with ResultSink(path) as sink:
        sink.append(line("a", "uniform", "4", coverage=math.nan))
    doc = json.loads(path.read_text())
    assert doc["record"]["coverage"] is None and doc["record"]["uniform_coverage"] == 0.4


def test_latency_parts_add_up_to_the_total() -> None:
    rows = [
        line("a", "s", "4", timings={"sampling": 0.01, "vision_2d": 0.02, "decode": 0.03,
                                     "total": 0.10}),
        line("b", "s", "4", timings={"sampling": 0.02, "decode": 0.04, "total": 0.08}),
        # refused before sampling: no timings, not an answer that was timed
        line("c", "s", "", status=AnswerStatus.INVALID_QUESTION, timings={}),
    ]
    table = latency_table(rows)
    assert set(table) == {*LATENCY_STAGES, OTHER, "total"}
    assert table["total"] == pytest.approx(0.09)
    assert table["sampling"] == pytest.approx(0.015) and table["vision_2d"] == pytest.approx(0.01)
    assert table["decode"] == pytest.approx(0.035)
    assert table[OTHER] == pytest.approx((0.04 + 0.02) / 2)
    assert sum(table[p] or 0.0 for p in (*LATENCY_STAGES, OTHER)) == pytest.approx(table["total"])


def test_latency_table_without_timed_answers_is_empty() -> None:
    table = latency_table([line("c", "s", "", status=AnswerStatus.NO_FRAMES, timings={})])
    assert all(v is None for v in table.values())


def test_coverage_has_one_point_per_question_even_when_values_coincide() -> None:
    # same buffer, same budget: every question gets the same coverage -- still 17 points
    ids = [f"q{i}" for i in range(17)]
    rows = [line(q, s, "4", coverage=0.6, uniform=0.5) for q in ids for s in ("cov", "uni")]
    rows = [r for r in rows if not (r["id"] == "q3" and r["strategy"] == "uni")]
    questions, points = coverage_points(rows)
    assert questions == ids
    assert set(points) == {"cov", "uni"}
    for s in ("cov", "uni"):
        assert [p.question_id for p in points[s]] == ids
    assert all(p.coverage == 0.6 and p.uniform_coverage == 0.5 for p in points["cov"])
    assert points["uni"][3].coverage is None  # not answered by that strategy


def test_zero_scores_stay_zero_and_missing_ones_are_none() -> None:
    rows = [
        line("n", "a", "7"), line("n", "b", "9"),  # wrong counts: 0 for both
        line("m", "a", "B", qtype="object_rel_distance", gt="C", options=ABCD),  # only "a"
    ]
    bars = score_bars(metrics_by_strategy(rows))
    assert bars.labels == ("object_counting", "object_rel_distance", "overall")
    assert bars.values["a"] == [0.0, 0.0, 0.0]
    assert bars.values["b"] == [0.0, None, 0.0]


def test_report_explains_other_and_lists_it(tmp_path: Path) -> None:
    with ResultSink(tmp_path / RESULTS_FILE) as sink:
        for q in ("a", "b"):
            for s in ("coverage", "uniform"):
                sink.append(line(q, s, "4", timings={"decode": 0.02, "total": 0.05}))
    files = write_report(tmp_path)
    text = files.report.read_text()
    assert OTHER_EXPLAINED in text and "| latency other (s) | 0.0300 | 0.0300 |" in text
    lat = json.loads(files.metrics.read_text())["strategies"]["coverage"]["latency_s"]
    assert lat[OTHER] == pytest.approx(0.03) and lat["total"] == pytest.approx(0.05)
    assert [p.name for p in files.plots] == ["scores.png", "latency.png", "coverage.png"]
    assert all(p.stat().st_size > 1000 for p in files.plots)


def _frame(stamp_ns: int, w: int = 64, h: int = 48) -> Frame:
    rgb = np.full((h, w, 3), 90, dtype=np.uint8)
    return Frame(stamp_ns=stamp_ns, frame_id="cam", rgb=rgb)


def test_contact_sheet_captions_give_buffer_index_and_seconds(tmp_path: Path) -> None:
    start = 1_000_000_000_000
    buffered = [_frame(start + i * 250_000_000) for i in range(6)]
    used = [buffered[1], buffered[4]]
    captions = frame_captions(used, buffered, start)
    assert captions == ["#1 0.25s", "#4 1.00s"]
    path = write_contact_sheet(used, tmp_path / "s.png", 36, captions)
    img = cv2.imread(str(path))
    assert img.shape[0] == 36 + CAPTION_PX and img.shape[1] == 2 * 48 + 2
    strip = img[36:, :48]
    assert (strip < 128).any() and (strip == 255).any()  # dark text on white
    with pytest.raises(ValueError, match="1 captions for 2 frames"):
        write_contact_sheet(used, tmp_path / "t.png", 36, captions[:1])
