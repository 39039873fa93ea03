"""Parity of ``spatial-mllm-vsibench`` with the authors' ``eval_vsibench.py`` on the same
generated VSI-Bench folder (mp4 videos, parquet, card) and the same tiny v1.1 checkpoint.

Runs only where ``SPATIAL_MLLM_REFERENCE_DIR`` (a checkout of diankun-wu/Spatial-MLLM) and
``SPATIAL_MLLM_REFERENCE_PYTHON`` (transformers 4.51.3, qwen_vl_utils, decord, datasets and the
reference's other requirements) are given, as ``test_reference_parity.py``; skipped with that
reason elsewhere. Compared per question: the frame indices the video reader is asked for, the
chat text, the model's output, its cleaned form and reward; and the metrics, both the
reference's over its own results and over this project's ``results_spatial-mllm.json`` (its
``--results_json`` mode). Both sides decode with the reference's settings (``do_sample``,
temperature 0.1, top_p 0.001, up to 1024 new tokens, the checkpoint's ``top_k=1``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from testkit.cli import run_command
from testkit.tiny import tiny_checkpoint
from testkit.vsibench_data import write_dataset

REFERENCE_DIR_ENV = "SPATIAL_MLLM_REFERENCE_DIR"
REFERENCE_PYTHON_ENV = "SPATIAL_MLLM_REFERENCE_PYTHON"
HELPER = Path(__file__).with_name("reference_vsibench_side.py")
NFRAMES, THREADS = 4, 2


def _reference() -> tuple[Path, Path]:
    """(checkout, interpreter) from the environment; skips, naming what is missing."""
    missing = [f"{name} is not set" for name in (REFERENCE_DIR_ENV, REFERENCE_PYTHON_ENV)
               if not os.environ.get(name)]
    if missing:
        pytest.skip("VSI-Bench reference parity: " + "; ".join(missing) + " (a checkout of "
                    "github.com/diankun-wu/Spatial-MLLM and a python with transformers==4.51.3, "
                    "qwen_vl_utils, decord, datasets and its other requirements)")
    checkout = Path(os.environ[REFERENCE_DIR_ENV])
    if not (checkout / "src" / "evaluation" / "vsibench" / "eval_vsibench.py").is_file():
        pytest.fail(f"{REFERENCE_DIR_ENV}={checkout} has no "
                    "src/evaluation/vsibench/eval_vsibench.py")
    return checkout, Path(os.environ[REFERENCE_PYTHON_ENV])


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]],
                                                              dict[str, Any], dict[str, Any]]:
    checkout, python = _reference()
    work = tmp_path_factory.mktemp("vsibench_parity")
    dataset = work / "vsibench"
    write_dataset(dataset, frames=12, width=112, height=84)
    checkpoint = tiny_checkpoint("v1.1")
    out = work / "project"
    res = run_command(["spatial-mllm-vsibench", str(dataset), "--out", str(out),
                       "--checkpoint", str(checkpoint), "--nframes", str(NFRAMES),
                       "-p", "model.max_pixels:=0", "--no-progress"], timeout=1800)
    assert res.returncode == 0, res.describe()
    project = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    request = {"checkpoint": str(checkpoint), "dataset_dir": str(dataset), "nframes": NFRAMES,
               "threads": THREADS,
               "project_results": str(out / "results_spatial-mllm.json")}
    (work / "request.json").write_text(json.dumps(request))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS=str(THREADS), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PYTHONPATH=str(HELPER.parent))
    proc = subprocess.run([str(python), str(HELPER), str(work / "request.json"),
                           str(work / "ref")], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        pytest.fail(f"reference side failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    reference = json.loads((work / "ref" / "result.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    return project, reference, metrics


def _by_id(results: list[dict[str, Any]], key: str = "id") -> dict[Any, dict[str, Any]]:
    return {r[key] if key == "id" else r["sample"]["id"]: r for r in results}


def test_frame_indices_match(sides: Any) -> None:
    project, reference, _ = sides
    if reference["video_backend"] != "decord":
        pytest.skip("the reference environment reads videos without decord")
    ordered = sorted(project, key=lambda r: r["id"])
    assert reference["frame_indices"] == [r["frames"] for r in ordered]


def test_prompts_predictions_and_rewards_match(sides: Any) -> None:
    project, reference, _ = sides
    ours, theirs = _by_id(project), _by_id(reference["results"], "sample")
    assert sorted(ours) == sorted(theirs)
    for qid, r in theirs.items():
        assert ours[qid]["prompt"] == r["prompt"], qid
        assert ours[qid]["model_output"] == r["model_output"], qid
        assert ours[qid]["prediction"] == r["cleaned_model_output"], qid
        assert ours[qid]["score"] == pytest.approx(r["reward"]), qid


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metrics as ``{"a.b.c": value}`` (pytest.approx compares flat mappings)."""
    flat: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = float(value)
    return flat


def test_metrics_match(sides: Any) -> None:
    _, reference, metrics = sides
    expected = _flat(reference["metrics"])
    assert _flat(metrics["reference"]) == pytest.approx(expected)
    assert _flat(reference["metrics_of_project_results"]) == pytest.approx(expected)
    assert metrics["overall"] == pytest.approx(100 * reference["metrics"]["all"]["macro"])
