"""Killing the evaluator midway (SIGKILL) and running it again: nothing answered is recomputed
and the final metrics equal those of an uninterrupted run. Real processes, tiny checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spatial_mllm_ros.evaluation.cli import scene_main

pytest.importorskip("torch", reason="the tiny-model tier needs torch")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from spatial_mllm_ros.model.tiny import write_checkpoint

    root = tmp_path_factory.mktemp("killresume")
    ckpt = write_checkpoint(root / "tiny-v1.1", layout="v1.1")
    scene = root / "scene"
    assert scene_main([str(scene), "--seed", "5", "--frames", "16", "--width", "160",
                       "--height", "120", "--max-per-type", "2"]) == 0
    return ckpt, scene


def eval_cmd(ckpt: Path, scene: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "spatial_mllm_ros.evaluation.cli", str(scene / "bag"),
            "--questions", str(scene / "questions.jsonl"), "--out", str(out),
            "--checkpoint", str(ckpt), "--frame-budget", "4", "--max-new-tokens", "4",
            "--no-progress", "--no-thumbnails"]


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for raw in path.read_text().splitlines():
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError:
            pass  # the line the kill cut off; the evaluator drops it too
    return out


def test_sigkill_midway_then_resume_equals_uninterrupted(setup: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    ckpt, scene = setup
    env = dict(os.environ)

    full = tmp_path / "full"
    res = subprocess.run(eval_cmd(ckpt, scene, full), cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    total = len(lines(full / "results.jsonl"))
    assert total >= 10

    killed = tmp_path / "killed"
    proc = subprocess.Popen(eval_cmd(ckpt, scene, killed), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(lines(killed / "results.jsonl")) < 4 and time.monotonic() < deadline:
        assert proc.poll() is None, "the evaluation finished before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done_before = lines(killed / "results.jsonl")
    assert 4 <= len(done_before) < total

    res = subprocess.run(eval_cmd(ckpt, scene, killed), cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"resumed {len(done_before)}" in res.stdout
    assert f"answered {total - len(done_before)}," in res.stdout
    after = lines(killed / "results.jsonl")
    keys = [(r["id"], r["strategy"]) for r in after]
    assert len(keys) == len(set(keys)) == total  # nothing answered twice
    # the lines written before the kill are untouched
    assert after[: len(done_before)] == done_before

    m_full = json.loads((full / "metrics.json").read_text())
    m_resumed = json.loads((killed / "metrics.json").read_text())
    def scored(m: dict) -> dict:  # everything but wall-clock latencies
        return {s: {k: v for k, v in d.items() if k != "latency_s"}
                for s, d in m["strategies"].items()}

    assert scored(m_resumed) == scored(m_full)
    assert m_resumed["comparison"] == m_full["comparison"]
    assert m_resumed["run"]["pairs_resumed"] == len(done_before)
    # and each answer, including the frames it used, is the uninterrupted run's
    by_key = {(r["id"], r["strategy"]): r for r in lines(full / "results.jsonl")}
    for r in after:
        ref = by_key[(r["id"], r["strategy"])]
        assert (r["record"]["frame_stamps_ns"], r["record"]["answer"], r["score"]) == (
            ref["record"]["frame_stamps_ns"], ref["record"]["answer"], ref["score"])
