"""Long commands report a line per stage on stderr; stdout keeps only their output."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from spatial_mllm_ros.core.progress import StageLog
from spatial_mllm_ros.evaluation.cli import scene_main


def test_a_stage_prints_its_start_and_its_duration() -> None:
    out = io.StringIO()
    with StageLog("prog", stream=out).stage("loading"):
        pass
    lines = out.getvalue().splitlines()
    assert lines[0] == "prog: loading ..."
    assert re.fullmatch(r"prog: loading: \d+\.\d s", lines[1])


def test_a_failing_stage_says_so_and_raises() -> None:
    out = io.StringIO()
    with pytest.raises(KeyError), StageLog("prog", stream=out).stage("reading"):
        raise KeyError("x")
    assert re.fullmatch(r"prog: reading: failed after \d+\.\d s", out.getvalue().splitlines()[1])


def test_a_disabled_log_is_silent() -> None:
    out = io.StringIO()
    log = StageLog("prog", enabled=False, stream=out)
    with log.stage("loading"):
        log.note("hello")
    assert out.getvalue() == ""


def _scene(tmp_path: Path, *extra: str) -> int:
    return scene_main([str(tmp_path / "scene"), "--seed", "3", "--frames", "4", "--width", "64",
                       "--height", "48", *extra])


def test_scene_reports_its_stages_on_stderr(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _scene(tmp_path) == 0
    out, err = capsys.readouterr()
    assert "spatial-mllm-scene: rendering 4 frames 64x48 ..." in err
    assert f"spatial-mllm-scene: writing {tmp_path / 'scene' / 'bag'} (sqlite3) ..." in err
    assert out.startswith("wrote ") and "spatial-mllm-scene:" not in out


def test_scene_no_progress_is_silent_on_stderr(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert _scene(tmp_path, "--no-progress") == 0
    assert capsys.readouterr().err == ""


def test_a_counter_writes_a_line_per_tenth_of_the_work() -> None:
    out = io.StringIO()
    count = StageLog("prog", stream=out).counter("rendering", "frames")
    for done in range(1, 61):
        count(done, 60)
    lines = out.getvalue().splitlines()
    assert lines == [f"prog: rendering: {n}/60 frames" for n in range(6, 61, 6)]


def test_scene_counts_its_rendered_frames_on_stderr(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert _scene(tmp_path) == 0
    err = capsys.readouterr().err
    assert [f"spatial-mllm-scene: rendering 4 frames 64x48: {n}/4 frames" for n in range(1, 5)] \
        == [ln for ln in err.splitlines() if ln.endswith("frames") and "/4" in ln]
