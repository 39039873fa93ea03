"""``spatial-mllm-infer`` over frame folders a user has: colour only, colour + poses, RGB-D.

Issue 16, points 2 and 3, and issue 17 point 8 (the answer's part): every frame of a folder is
a candidate (the buffer keeps frames while it has room), the answer uses as many as asked
when the folder has them, says why when it used fewer, and says what its frames lacked
instead of reporting a coverage of 0.0.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from testkit.cli import assert_clean, run_command

CHECKPOINT = os.environ.get("SPATIAL_MLLM_TINY_CHECKPOINT", "")
QUESTION = "How many boxes are there?"
#: small settings that keep a tiny-model answer fast
FAST = ("-p", "model.max_pixels:=15680", "-p", "answer.max_new_tokens:=4", "--no-grounding")


def _folder(shelf: Path, out: Path, *suffixes: str) -> Path:
    """A copy of the shelf's colour images and the files ending in ``suffixes``."""
    out.mkdir()
    for p in shelf.iterdir():
        if p.name.endswith(".color.png") or any(p.name.endswith(s) for s in suffixes):
            shutil.copy(p, out / p.name)
    return out


def _infer(frames: Path, *extra: str) -> dict[str, Any]:
    if not CHECKPOINT:
        pytest.skip("SPATIAL_MLLM_TINY_CHECKPOINT is not set (make test sets it)")
    res = run_command(["spatial-mllm-infer", "--checkpoint", CHECKPOINT, "--frames",
                       str(frames), "--question", QUESTION, *extra])
    assert_clean(res)
    answer: dict[str, Any] = res.json()
    assert answer["status"] == "OK", res.describe()
    return answer


@pytest.mark.parametrize("suffixes", [(), (".pose.txt", "camera_intrinsics.txt")],
                         ids=["colour_only", "poses_no_depth"])
def test_a_folder_without_depth_answers_from_the_frames_asked(
        shelf: Path, tmp_path: Path, suffixes: tuple[str, ...]) -> None:
    frames = _folder(shelf, tmp_path / "frames", *suffixes)
    answer = _infer(frames, "--frame-budget", "8", *FAST)
    stamps = answer["frame_stamps_ns"]
    assert len(stamps) == len(set(stamps)) == 8, answer  # issue 16: one frame, stamp 0
    assert stamps == sorted(stamps)
    # coverage on the geometry the model predicts (the README's colour-only rule), or, when
    # that prediction fails, the scored rule and no coverage figure; the note says which
    if answer["strategy"] == "coverage(predicted)":
        assert 0.0 < answer["coverage"] <= 1.0, answer
        want = "coverage is of the geometry the model predicted"
    else:
        assert answer["coverage"] is None, answer
        want = "coverage not measured"
    assert [n for n in answer["notes"] if "had no depth" in n and want in n], answer


def test_a_colour_only_answer_says_coverage_was_not_measured(shelf: Path, tmp_path: Path) -> None:
    # issue 17 point 8: coverage 0.000/0.000 and an empty error said nothing of the cause
    frames = _folder(shelf, tmp_path / "frames")
    answer = _infer(frames, "--frame-budget", "8", "--strategy", "uniform", *FAST)
    assert len(set(answer["frame_stamps_ns"])) == 8, answer
    assert answer["coverage"] is None and answer["uniform_coverage"] is None, answer
    assert answer["notes"] == [
        "the frames had no depth, no pose and no camera intrinsics: coverage not measured"]
    assert answer["error"] == ""


def test_a_budget_above_the_folder_uses_every_frame_and_says_so(shelf: Path) -> None:
    # the README's command line, with the frame budget a user asks for
    answer = _infer(shelf, "--frame-budget", "16")
    stamps = answer["frame_stamps_ns"]
    assert len(stamps) == len(set(stamps)) == 15, answer
    assert any("16 frames asked, 15 used" in n and "15 frames" in n
               for n in answer["notes"]), answer
    assert 0.0 < answer["coverage"] <= 1.0


def test_uniform_over_the_shelf_uses_the_budget(shelf: Path) -> None:
    answer = _infer(shelf, "--frame-budget", "8", "--strategy", "uniform", *FAST)
    assert len(set(answer["frame_stamps_ns"])) == 8, answer
    assert answer["strategy"] == "uniform" and answer["notes"] == [], answer
