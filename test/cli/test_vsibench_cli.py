"""``spatial-mllm-vsibench`` as a user runs it, on a small VSI-format dataset the tests write
(rendered rooms as mp4 + parquet + dataset card) and the tiny checkpoint: the README's command,
one worker against two Ray workers (one of them killed mid-scene), SIGINT then resume, and a
clear error for each bad input while the other questions are answered."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from testkit.cli import (
    assert_clean,
    assert_refused,
    noise,
    run_command,
    signal_group,
    start_command,
)
from testkit.readme import readme_command_lines, words
from testkit.tiny import tiny_checkpoint
from testkit.vsibench_data import PARQUET, write_dataset, write_parquet

from spatial_mllm_ros.benchmark.pool import CRASH_MARKER_ENV
from spatial_mllm_ros.exitcodes import ExitCode

CMD = "spatial-mllm-vsibench"
#: The README's command on the tiny model (DIR and OUT are the test's).
README_LINE = ("spatial-mllm-vsibench DIR --out OUT --nframes 4 -p model.max_pixels:=15680 "
               "-p answer.max_new_tokens:=4")
README_ARGS = list(words(README_LINE)[4:])
#: The README's two GPU lines (the released checkpoint and four GPUs).
README_GPU_LINES = (
    "spatial-mllm-vsibench /data/vsibench --out /data/runs/135k-sa --config desktop_gpu "
    "--nframes 16 --sampling space_aware --workers 4 -p model.vision_backend:=torch",
    "spatial-mllm-vsibench /data/vsibench --out /data/runs/135k-uniform --config desktop_gpu "
    "--nframes 16 --sampling uniform --workers 4 -p model.vision_backend:=torch",
)
QUESTIONS = 15  # 3 scenes x 5 questions


def _checkpoint() -> list[str]:
    ckpt = os.environ.get("SPATIAL_MLLM_TINY_CHECKPOINT", "")
    return ["--checkpoint", ckpt] if ckpt else []


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vsibench")
    write_dataset(root, frames=12, width=112, height=84)
    return root


def _lines(out: Path) -> list[dict[str, Any]]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _run(dataset: Path, out: Path, *extra: str, env: dict[str, str] | None = None
         ) -> Any:
    return run_command([CMD, str(dataset), "--out", str(out), *README_ARGS, *_checkpoint(),
                        "--no-progress", *extra], env=env, timeout=900)


def test_readme_command_answers_and_scores_every_question(dataset: Path, tmp_path: Path
                                                          ) -> None:
    out = tmp_path / "out"
    argv = list(words(README_LINE))
    assert tuple(argv) in readme_command_lines(), "the README no longer shows this line"
    argv[1], argv[3] = str(dataset), str(out)
    res = run_command(argv, timeout=900)  # the default profile's tiny model, as the README
    assert_clean(res)
    lines = _lines(out)
    assert sorted(r["id"] for r in lines) == list(range(QUESTIONS))
    metrics = json.loads((out / "metrics.json").read_text())
    assert res.json() == metrics
    assert set(metrics) >= {"overall", "object_counting", "room_size_estimation",
                            "object_rel_direction", "route_planning", "reference"}
    assert metrics["questions"] == QUESTIONS and metrics["errors"] == 0
    reference = json.loads((out / "results_spatial-mllm.json").read_text())
    assert {r["sample"]["id"] for r in reference} == set(range(QUESTIONS))
    assert all(set(r) == {"sample", "prompt", "model_output", "cleaned_model_output",
                          "cleaned_gt_answer", "reward", "correct"} for r in reference)
    report = (out / "report.md").read_text()
    assert "| scannet/scene0001_00 | mp4 | uniform | 0 4 7 11 |" in report


def test_two_ray_workers_one_killed_give_the_one_worker_results(dataset: Path,
                                                                tmp_path: Path) -> None:
    one = _run(dataset, tmp_path / "one")
    assert_clean(one)
    marker = tmp_path / "killed"
    two = _run(dataset, tmp_path / "two", "--workers", "2",
               env={CRASH_MARKER_ENV: str(marker)})
    assert_clean(two)
    assert marker.exists(), "no Ray worker was killed"
    ids = Counter(r["id"] for r in _lines(tmp_path / "two"))
    assert sorted(ids) == list(range(QUESTIONS)) and set(ids.values()) == {1}
    key = json.dumps
    assert sorted(map(key, _lines(tmp_path / "one"))) == sorted(map(key, _lines(tmp_path / "two")))
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert m1 == m2


def test_sigint_then_rerun_resumes_without_recomputing(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = out / "results.jsonl"
    argv = [CMD, str(dataset), "--out", str(out), *README_ARGS, *_checkpoint(), "--no-progress",
            "--nframes", "8"]
    proc = start_command(argv)
    try:
        deadline = time.monotonic() + 600
        while not (results.exists() and results.read_text().count("\n") >= 1):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no result line in 600 s"
            time.sleep(0.02)
        signal_group(proc, signal.SIGINT)
        _stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    assert not noise(stderr), stderr
    assert "run the same command again to resume" in stderr.strip().splitlines()[-1]
    before = results.read_bytes()
    done = before.count(b"\n")
    assert 1 <= done < QUESTIONS, "the run ended before SIGINT reached it"

    again = run_command(argv, timeout=900)
    assert_clean(again)
    assert f"{done} already answered, {QUESTIONS - done} answered now" in again.stderr
    after = results.read_bytes()
    assert after.startswith(before)  # nothing written before was rewritten
    assert sorted(r["id"] for r in _lines(out)) == list(range(QUESTIONS))


def test_each_bad_input_gets_its_error_and_the_rest_is_answered(dataset: Path,
                                                                tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(dataset, bad)
    # a corrupt video: the second scene's mp4 cut to a third
    corrupt = bad / "arkitscenes" / "41069025.mp4"
    corrupt.write_bytes(corrupt.read_bytes()[: corrupt.stat().st_size // 3])
    import pyarrow.parquet as pq

    rows = pq.read_table(bad / PARQUET).to_pylist()
    rows.append({**rows[0], "id": 100, "question_type": "object_teleportation"})
    rows.append({**rows[0], "id": 101, "scene_name": "scene9999_00"})  # no such video
    write_parquet(bad / PARQUET, rows)

    res = _run(bad, tmp_path / "out")
    assert res.returncode == ExitCode.NOT_OK, res.describe()
    assert not noise(res.stderr), res.describe()
    errors = {e["id"]: e["error"] for e in
              map(json.loads, (tmp_path / "out" / "errors.jsonl").read_text().splitlines())}
    assert "unknown question type 'object_teleportation'" in errors.pop(100)
    assert "no video" in errors.pop(101) and "scene9999_00.mp4" in res.stderr
    assert set(errors) == {5, 6, 7, 8, 9}  # the corrupt scene's questions
    assert all("41069025.mp4" in e for e in errors.values())
    answered = sorted(r["id"] for r in _lines(tmp_path / "out"))
    assert answered == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["errors"] == 7


def test_unreadable_parquet_is_refused(dataset: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(dataset, bad)
    (bad / PARQUET).write_bytes(b"not a parquet file")
    res = _run(bad, tmp_path / "out")
    assert_refused(res, ExitCode.INPUT, "cannot read the parquet", PARQUET)
    (bad / PARQUET).unlink()
    res = _run(bad, tmp_path / "out")
    assert_refused(res, ExitCode.INPUT, "test-*.parquet", "none exists")


def test_space_aware_without_geometry_heads_is_refused(dataset: Path, tmp_path: Path) -> None:
    headless = tiny_checkpoint("v1.1", with_heads=False)
    res = run_command([CMD, str(dataset), "--out", str(tmp_path / "out"), *README_ARGS,
                       "--checkpoint", str(headless), "--sampling", "space_aware",
                       "--no-progress"], timeout=600)
    assert_refused(res, ExitCode.MODEL, "space_aware", "model.vggt_checkpoint")


@pytest.mark.parametrize("line", README_GPU_LINES)
def test_readme_gpu_lines_without_the_profiles_checkpoint(line: str, dataset: Path,
                                                          tmp_path: Path) -> None:
    """Here the desktop_gpu profile's checkpoint is absent: refused at once, before Ray."""
    argv = list(words(line))
    assert tuple(argv) in readme_command_lines(), "the README no longer shows this line"
    argv[1], argv[3] = str(dataset), str(tmp_path / "out")
    res = run_command(argv, timeout=120)
    assert_refused(res, ExitCode.INPUT, "model.checkpoint", "does not exist")
    assert not (tmp_path / "out").exists()
