"""End to end on the real tiny checkpoint: synthetic scene bag -> spatial-mllm-eval -> report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spatial_mllm_ros.evaluation.cli import eval_main, scene_main
from spatial_mllm_ros.evaluation.metrics import REPORT_TYPES

pytest.importorskip("torch", reason="the tiny-model tier needs torch")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from spatial_mllm_ros.model.tiny import write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-v1.1", layout="v1.1")


def test_eval_tiny_end_to_end(checkpoint: Path, tmp_path: Path, capsys) -> None:
    scene = tmp_path / "scene"
    assert (
        scene_main(
            [
                str(scene),
                "--seed",
                "3",
                "--frames",
                "16",
                "--width",
                "160",
                "--height",
                "120",
                "--max-per-type",
                "1",
            ]
        )
        == 0
    )
    out = tmp_path / "eval"
    argv = [
        str(scene / "bag"),
        "--questions",
        str(scene / "questions.jsonl"),
        "--out",
        str(out),
        "--checkpoint",
        str(checkpoint),
        "--frame-budget",
        "4",
        "--no-progress",
        "--max-new-tokens",
        "4",
    ]
    assert eval_main(argv) == 0
    printed = capsys.readouterr().out
    assert "[coverage] overall" in printed and "[uniform] overall" in printed
    doc = json.loads((out / "metrics.json").read_text())
    expected_types = [t for t in REPORT_TYPES if t != "route_planning"]  # not generated
    for s in ("coverage", "uniform"):
        m = doc["strategies"][s]
        assert sorted(m["scores"]) == sorted(expected_types)
        assert m["overall"] is not None and 0.0 <= m["overall"] <= 100.0
        assert set(m["sub_scores"]) >= {
            "object_rel_direction_easy",
            "object_rel_direction_medium",
            "object_rel_direction_hard",
        }
        assert m["statuses"] == {"OK": m["answers"]}
        assert m["latency_s"]["decode"] > 0 and m["latency_s"]["spatial"] > 0
        assert m["mean_coverage"] > 0
    assert (
        doc["strategies"]["coverage"]["mean_coverage"]
        >= doc["strategies"]["coverage"]["mean_uniform_coverage"] - 1e-12
    )
    report = (out / "report.md").read_text()
    for png in ("scores.png", "latency.png", "coverage.png"):
        assert (out / png).stat().st_size > 1000 and png in report
    assert list((out / "thumbs").glob("*.png"))
    # a second run resumes everything and recomputes nothing
    assert eval_main(argv) == 0
    assert "answered 0, resumed" in capsys.readouterr().out
