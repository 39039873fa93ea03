"""``spatial-mllm-infer`` as a user runs it: the README's line, the onnxruntime backend, a
model load without library warnings, a checkpoint directory that does not exist, and timings
that add up.

Issue 16, points 1, 9 and 11 (infer's part).  Each test runs the command as a process
(``testkit.cli.run_command``) with the tiny checkpoint of ``$SPATIAL_MLLM_TINY_CHECKPOINT``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
from testkit.cli import CommandResult, assert_clean, assert_refused, run_command
from testkit.readme import readme_command_lines, words

from spatial_mllm_ros.exitcodes import ExitCode

#: The README's line (README "Checkpoints" block); DIR is the user's checkpoint directory.
README_INFER = ("spatial-mllm-infer --checkpoint DIR --frames ../shared/data/real_rgbd_shelf "
                "--question 'How many boxes are there?'")
#: small settings that keep a tiny-model answer fast
FAST = ("--max-pixels", "15680", "--max-new-tokens", "4", "--no-grounding")
#: stage timings are rounded by nothing: their sum equals ``total`` up to float addition
SUM_TOLERANCE_S = 1e-9


def _checkpoint() -> str:
    checkpoint = os.environ.get("SPATIAL_MLLM_TINY_CHECKPOINT", "")
    if not checkpoint:
        pytest.skip("SPATIAL_MLLM_TINY_CHECKPOINT is not set (make test sets it)")
    return checkpoint


def _readme_argv(*extra: str) -> list[str]:
    """The README's infer line (which the README must still show), DIR = the tiny checkpoint."""
    argv = words(README_INFER)
    assert argv in readme_command_lines(), f"the README no longer shows {README_INFER!r}"
    return [w.replace("DIR", _checkpoint()) if w == "DIR" else w for w in argv] + list(extra)


def _library_noise(res: CommandResult) -> list[str]:
    """stderr lines that a library logged (transformers' ``[transformers] ...`` warnings,
    any ``warning`` line), i.e. everything but the command's own stage lines."""
    return [line for line in res.stderr.splitlines()
            if line.strip() and not line.startswith("spatial-mllm-infer: ")]


def _answer(res: CommandResult) -> dict[str, Any]:
    assert_clean(res)
    answer: dict[str, Any] = res.json()
    assert answer["status"] == "OK", res.describe()
    return answer


def test_readme_infer_line(shelf: Path) -> None:
    """The README's line, word for word (torch encoders, the profile's settings): exit 0,
    only the command's own stage lines on stderr, the answer as JSON naming torch."""
    res = run_command(_readme_argv())
    answer = _answer(res)
    assert not _library_noise(res), res.describe()
    assert answer["vision_backend"]["requested"] == "torch"
    assert answer["vision_backend"]["used"] == {"vision_2d": "torch", "spatial": "torch"}


def _assert_truthful(backend: dict[str, Any], requested: str) -> None:
    """``vision_backend`` names the requested backend and, per encoder, what answered."""
    assert backend["requested"] == requested, backend
    assert set(backend["used"]) == {"vision_2d", "spatial"}, backend
    for encoder, used in backend["used"].items():
        assert used in (requested, "torch", f"{requested}+torch"), (encoder, backend)
        calls = backend["calls"][encoder]
        assert used == "+".join(sorted(calls, key=lambda b: b == "torch")), backend
        assert all(n > 0 for n in calls.values()), backend


def test_onnxruntime_line_exits_cleanly_and_names_the_backend(
        shelf: Path, tmp_path: Path) -> None:
    """The README's line with ``--vision-backend onnxruntime``, as the issue ran it: the
    engine's background build is still running at the end (a fresh cache), then once more
    with the cache built, then waiting for the engines.  Each exits 0 with no
    ``terminate called`` abort, and the JSON says which backend each encoder ran on."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}  # a cache of this test's own
    argv = _readme_argv("--vision-backend", "onnxruntime")
    for run in ("fresh cache", "cache built"):
        res = run_command(argv, env=env)
        assert "terminate called" not in res.stderr, f"{run}\n{res.describe()}"
        _assert_truthful(_answer(res)["vision_backend"], "onnxruntime")
    waited = run_command([*argv, "-p", "model.vision_build_wait_s:=120"], env=env)
    backend = _answer(waited)["vision_backend"]
    _assert_truthful(backend, "onnxruntime")
    assert backend["used"] == {"vision_2d": "onnxruntime", "spatial": "onnxruntime"}, backend


@pytest.mark.parametrize("layout", ["v1.1", "v1.0"])
def test_a_fresh_tiny_checkpoint_loads_without_library_warnings(
        shelf: Path, tmp_path: Path, layout: str) -> None:
    """``spatial-mllm-checkpoint tiny`` writes a checkpoint whose load and answer print
    nothing on stderr but the commands' own stage lines (no transformers warning)."""
    out = tmp_path / f"tiny-{layout}"
    made = run_command(["spatial-mllm-checkpoint", "tiny", str(out), "--layout", layout,
                        "--no-progress"])
    assert_clean(made)
    assert made.stderr == "", made.describe()
    res = run_command(["spatial-mllm-infer", "--checkpoint", str(out), "--frames", str(shelf),
                       "--question", "How many boxes are there?", "--no-progress", *FAST])
    _answer(res)
    assert res.stderr == "", res.describe()


def test_missing_checkpoint_directory_is_refused_before_loading(
        shelf: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-checkpoint"
    res = run_command(["spatial-mllm-infer", "--checkpoint", str(missing), "--frames",
                       str(shelf), "--question", "How many boxes are there?"])
    assert_refused(res, ExitCode.INPUT, f"checkpoint directory {missing} does not exist")
    assert "loading the model" not in res.stderr, res.describe()
    assert res.stdout == "", res.describe()


def test_a_checkpoint_that_does_not_load_is_a_model_error(shelf: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    res = run_command(["spatial-mllm-infer", "--checkpoint", str(broken), "--frames",
                       str(shelf), "--question", "How many boxes are there?"])
    assert_refused(res, ExitCode.MODEL, "model failed to load")
    assert res.json()["status"] == "MODEL_ERROR", res.describe()


def test_stage_timings_add_up_to_their_totals(shelf: Path) -> None:
    """The answer's stages plus ``other`` make its ``total``; the command's parts (frames
    read, model load, answer, other) make the command's ``total``."""
    res = run_command(["spatial-mllm-infer", "--checkpoint", _checkpoint(), "--frames",
                       str(shelf), "--question", "How many boxes are there?", *FAST])
    answer = _answer(res)
    stages = answer["timings_s"]
    assert list(stages)[-2:] == ["other", "total"], stages
    parts = [v for k, v in stages.items() if k != "total"]
    assert all(v >= 0.0 for v in parts), stages
    assert math.isclose(sum(parts), stages["total"], abs_tol=SUM_TOLERANCE_S), stages
    command = answer["command_timings_s"]
    assert list(command) == ["frames_read", "load", "answer", "other", "total"], command
    parts = [v for k, v in command.items() if k != "total"]
    assert all(v >= 0.0 for v in parts), command
    assert math.isclose(sum(parts), command["total"], abs_tol=SUM_TOLERANCE_S), command
    assert command["answer"] >= stages["total"], (command, stages)
