"""The README's "Plain Qwen2.5-VL spatial checkpoints" lines, run as a user runs them (issue 21
point 4): a tiny checkpoint in that layout, its real layout, ``spatial-mllm-infer`` on it, the
evaluator comparing it with the default v1.1 checkpoint on the same bag, and
``spatial-mllm-vsibench --checkpoint`` on it.

The README writes under /tmp/qwen, /tmp/scene, /tmp/eval and /tmp/eval-qwen; here each goes to
a temporary folder, with every other word as the README has it.  The scene is a small one
(12 frames, one question per type) so that four model runs stay short.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from testkit.cli import CommandResult, assert_clean, run_command
from testkit.paths import LAYOUTS
from testkit.readme import readme_command_lines, words
from testkit.vsibench_data import write_dataset

TINY_LINE = "spatial-mllm-checkpoint tiny /tmp/qwen --layout qwen2.5-vl"
LAYOUT_LINE = "spatial-mllm-checkpoint layout --layout qwen2.5-vl"
INFER_LINE = ("spatial-mllm-infer --checkpoint /tmp/qwen --frames ../shared/data/real_rgbd_shelf "
              "--question 'How many boxes are there?'")
EVAL_V11_LINE = ("spatial-mllm-eval /tmp/scene/bag --questions /tmp/scene/questions.jsonl "
                 "--out /tmp/eval --strategies coverage,uniform")
EVAL_QWEN_LINE = ("spatial-mllm-eval /tmp/scene/bag --questions /tmp/scene/questions.jsonl "
                  "--out /tmp/eval-qwen --strategies coverage,uniform --checkpoint /tmp/qwen")
VSIBENCH_ARGS = ["--nframes", "4", "-p", "model.max_pixels:=15680",
                 "-p", "answer.max_new_tokens:=4", "--no-progress"]


def readme_argv(line: str, **subs: str | Path) -> list[str]:
    """The README's line ``line`` (which it must still show), paths replaced as ``subs``."""
    w = words(line)
    assert w in readme_command_lines(), f"the README no longer shows {line!r}"
    out = []
    for word in w:
        for old, new in sorted(subs.items(), key=lambda kv: -len(kv[0])):
            word = word.replace(old, str(new))
        out.append(word)
    return out


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's tiny line, into a temporary folder."""
    path = tmp_path_factory.mktemp("ckpt") / "qwen"
    res = run_command(readme_argv(TINY_LINE, **{"/tmp/qwen": path}))
    assert_clean(res)
    assert json.loads((path / "config.json").read_text())["model_type"] == "qwen2_5_vl"
    return path


def _json(res: CommandResult) -> dict[str, Any]:
    assert_clean(res)
    out: dict[str, Any] = res.json()
    return out


def test_readme_layout_line_is_qwen2_5_vl_3b_instruct(qwen: Path) -> None:
    res = run_command(readme_argv(LAYOUT_LINE))
    assert_clean(res)
    reference = LAYOUTS / "qwen2_5_vl_3b_instruct.tsv"
    if not reference.is_file():
        pytest.skip(f"{reference} is not here (shared/ must sit beside the checkout)")
    assert sorted(res.stdout.splitlines()) == sorted(reference.read_text().splitlines())


def test_readme_infer_line_answers_without_a_spatial_encoder(qwen: Path, shelf: Path) -> None:
    answer = _json(run_command(readme_argv(INFER_LINE, **{"/tmp/qwen": qwen})))
    assert answer["status"] == "OK"
    assert answer["timings_s"]["spatial"] == 0.0 and answer["timings_s"]["connector"] == 0.0
    assert answer["timings_s"]["vision_2d"] > 0.0
    assert set(answer["vision_backend"]["calls"]["vision_2d"]) == {"torch"}  # + grounding
    assert answer["vision_backend"]["calls"]["spatial"] == {}


def test_readme_eval_lines_compare_two_checkpoints_on_one_bag(qwen: Path, tmp_path: Path
                                                              ) -> None:
    scene = tmp_path / "scene"
    assert_clean(run_command(["spatial-mllm-scene", str(scene), "--seed", "3", "--frames", "12",
                              "--width", "160", "--height", "120", "--max-per-type", "1",
                              "--no-progress"]))
    subs = {"/tmp/scene": scene, "/tmp/eval": tmp_path / "eval", "/tmp/qwen": qwen}
    runs = {}
    for name, line in (("v1.1", EVAL_V11_LINE), ("qwen", EVAL_QWEN_LINE)):
        assert_clean(run_command(readme_argv(line, **subs)))
        out = tmp_path / ("eval" if name == "v1.1" else "eval-qwen")
        runs[name] = {
            "run": json.loads((out / "run.json").read_text())["settings"],
            "metrics": json.loads((out / "metrics.json").read_text()),
            "ids": sorted(json.loads(line)["id"] for line in
                          (out / "results.jsonl").read_text().splitlines() if line.strip()),
        }
        assert (out / "report.md").is_file()
    v11, plain = runs["v1.1"], runs["qwen"]
    assert v11["ids"] == plain["ids"] and plain["ids"]
    assert v11["run"]["prompt_template"] == "spatial-mllm-v1.1"
    assert plain["run"]["prompt_template"] == "lmms-eval"
    assert plain["run"]["model"] == str(qwen)
    for strategy in ("coverage", "uniform"):
        assert plain["metrics"]["strategies"][strategy]["latency_s"]["spatial"] == 0.0
        assert v11["metrics"]["strategies"][strategy]["latency_s"]["spatial"] > 0.0
        assert set(plain["metrics"]["strategies"][strategy]["statuses"]) == {"OK"}


def test_vsibench_with_a_plain_checkpoint_asks_in_the_lmms_eval_form(qwen: Path, tmp_path: Path
                                                                    ) -> None:
    dataset = tmp_path / "vsibench"
    write_dataset(dataset, frames=12, width=112, height=84)
    out = tmp_path / "out"
    res = run_command(["spatial-mllm-vsibench", str(dataset), "--out", str(out),
                       "--checkpoint", str(qwen), *VSIBENCH_ARGS], timeout=900)
    assert_clean(res)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["errors"] == 0 and metrics["questions"] > 0
    reference = json.loads((out / "results_spatial-mllm.json").read_text())
    assert reference and all("These are frames of a video.\n" in r["prompt"]  # chat text
                             for r in reference)
