"""The VSI-Bench runner's pure parts: the dataset card, the authors' scores and metrics,
qwen_vl_utils' frame rule, the results file after a kill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testkit.vsibench_data import CARD

from spatial_mllm_ros.benchmark.dataset import parquet_files, select_types
from spatial_mllm_ros.benchmark.errors import DatasetError, OutputError, VideoError
from spatial_mllm_ros.benchmark.frames import (
    InputPath,
    PixelBounds,
    model_size,
    qwen_nframes,
    uniform_video_indices,
)
from spatial_mllm_ros.benchmark.metrics import (
    calculate_metrics,
    mean_relative_accuracy_f32,
    reward,
    summary,
)
from spatial_mllm_ros.benchmark.results import JsonLines, check_run_settings

V11 = "spatial-mllm-v1.1"


def test_card_names_the_full_config_test_files(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(CARD)
    for name in ("test-00000-of-00001.parquet", "test_debiased-00000-of-00001.parquet"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in parquet_files(tmp_path)] == ["test-00000-of-00001.parquet"]
    assert [p.name for p in parquet_files(tmp_path, config="debiased")] == [
        "test_debiased-00000-of-00001.parquet"]
    with pytest.raises(DatasetError, match="no config 'other'"):
        parquet_files(tmp_path, config="other")


def test_without_a_card_the_test_parquet_is_found_or_the_error_says_what_is_missing(
        tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="neither a dataset card"):
        parquet_files(tmp_path)
    (tmp_path / "test-00000-of-00001.parquet").write_bytes(b"")
    assert len(parquet_files(tmp_path)) == 1
    with pytest.raises(DatasetError, match="is not a directory"):
        parquet_files(tmp_path / "absent")


def test_types_filter_names_the_direction_difficulties_and_refuses_unknown_names() -> None:
    with pytest.raises(DatasetError, match="no VSI-Bench question type"):
        select_types([], ["object_teleportation"])
    assert select_types([], ["object_rel_direction"]) == []


def test_qwen_vl_utils_frame_rule() -> None:
    assert qwen_nframes(16, 100) == 16
    assert qwen_nframes(15, 100) == 16 and qwen_nframes(9, 100) == 8  # round half to even
    with pytest.raises(VideoError, match="2 <= n <= frames"):
        qwen_nframes(16, 10)
    # torch.linspace(0, 99, 16).round(): 6.6 -> 7, 13.2 -> 13, ...
    assert uniform_video_indices(100, 16)[:4] == [0, 7, 13, 20]
    assert uniform_video_indices(100, 16)[-1] == 99


def test_model_size_is_the_reference_size_of_each_path() -> None:
    released = PixelBounds(128 * 28 * 28, 768 * 28 * 28)  # the released profile's bounds
    assert model_size(640, 480, InputPath.VIDEO, 16, released) == (644, 476)
    assert model_size(640, 480, InputPath.FRAME_LIST, 16, released) == (644, 476)
    small = PixelBounds(15680, 15680)
    w, h = model_size(640, 480, InputPath.VIDEO, 16, small)
    assert w % 28 == 0 and h % 28 == 0 and w * h <= 15680


def test_reward_is_the_authors_vsi_reward() -> None:
    assert reward("B.", "B", "route_planning", V11).value == 1.0
    assert reward("<answer>b</answer>", "B", "object_rel_distance", V11).value == 1.0
    assert reward("B. left", "B", "object_rel_direction_easy", V11).value == 0.0
    assert reward("1,000", "1000", "object_counting", V11).value == 1.0
    assert reward("about 3", "3", "object_counting", V11).value == 0.0
    # float32, strict "<": 8 against 10 is a 20 % error, within 1 - θ for θ < 0.8 only
    assert mean_relative_accuracy_f32(8.0, 10.0) == pytest.approx(0.6)
    assert mean_relative_accuracy_f32(10.0, 10.0) == 1.0


def _result(qid: int, qtype: str, score: float) -> dict[str, object]:
    return {"id": qid, "question_type": qtype, "prediction": "x", "ground_truth": "y",
            "score": score, "sample": {"question_type": qtype}, "reward": score}


def test_overall_averages_the_direction_difficulties_first() -> None:
    results = [_result(0, "object_rel_direction_easy", 1.0),
               _result(1, "object_rel_direction_hard", 0.0),
               _result(2, "object_counting", 0.5), _result(3, "route_planning", 1.0)]
    ref = calculate_metrics(results)
    # direction 0.5, counting 0.5, route 1.0 -> all.macro 2/3; micro over questions 0.625
    assert ref["all"]["macro"] == pytest.approx(2 / 3)
    assert ref["all"]["micro"] == pytest.approx(0.625)
    assert ref["acc"]["macro"] == pytest.approx(0.75) and ref["mra"]["macro"] == 0.5
    paper = summary(results)
    assert paper.overall == pytest.approx(100 * ref["all"]["macro"])
    assert paper.scores["object_rel_direction"] == pytest.approx(50.0)


def test_results_file_drops_a_line_cut_short_and_refuses_a_bad_middle_line(
        tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"id": 1}) + "\n" + '{"id": 2, "predic')
    log = JsonLines(path)
    assert log.ids() == {"1"}
    log.append({"id": 2})
    log.close()
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == [1, 2]
    path.write_text('{"id": 1}\nnot json\n{"id": 3}\n')
    with pytest.raises(OutputError, match=r"results\.jsonl:2"):
        JsonLines(path)


def test_a_rerun_with_other_settings_is_refused(tmp_path: Path) -> None:
    check_run_settings(tmp_path, {"nframes": 16})
    check_run_settings(tmp_path, {"nframes": 16})
    with pytest.raises(OutputError, match="nframes differ"):
        check_run_settings(tmp_path, {"nframes": 8})
