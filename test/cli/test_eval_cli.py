"""The README's "Offline evaluation" lines, run as a user runs them, and the mistakes a user
makes with them: each a process, checked for its exit code (``ExitCode``), a clean stderr and
the files it promises.

The README writes under /tmp/scene, /tmp/eval and /tmp/shelf_bag; here each goes to a
temporary folder of its own, with every other word as the README has it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from testkit.cli import CommandResult, assert_clean, assert_refused, run_command
from testkit.readme import readme_command_lines, words

from spatial_mllm_ros.exitcodes import ExitCode

SCENE_LINE = "spatial-mllm-scene /tmp/scene --seed 3"
EVAL_LINE = ("spatial-mllm-eval /tmp/scene/bag --questions /tmp/scene/questions.jsonl "
             "--out /tmp/eval --strategies coverage,uniform")
BAG_LINE = "spatial-mllm-bag-from-rgbd ../shared/data/real_rgbd_shelf /tmp/shelf_bag"
#: Keep a test's own eval runs small (the README's exact run is the module's fixture).
SMALL = ["-p", "model.max_pixels:=15680", "-p", "answer.max_new_tokens:=4", "--no-thumbnails"]


def readme_argv(line: str, **subs: str | Path) -> list[str]:
    """The README's command line ``line`` (it must be in the README) as an argument vector,
    its fixed paths replaced as ``subs`` says (``{"/tmp/scene": tmp}``)."""
    w = words(line)
    assert w in readme_command_lines(), f"the README no longer shows {line!r}"
    out = []
    for word in w:
        for old, new in subs.items():
            word = word.replace(old, str(new))
        out.append(word)
    return out


def eval_argv(scene: Path, out: Path) -> list[str]:
    """The README's ``spatial-mllm-eval`` line on ``scene``, writing to ``out``."""
    return readme_argv(EVAL_LINE, **{"/tmp/scene": scene, "/tmp/eval": out})


def _replaced(argv: list[str], old: str, new: str | Path) -> list[str]:
    assert old in argv, argv
    return [str(new) if word == old else word for word in argv]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CommandResult]:
    """``spatial-mllm-scene /tmp/scene --seed 3``, in a temporary folder."""
    path = tmp_path_factory.mktemp("readme") / "scene"
    return path, run_command(readme_argv(SCENE_LINE, **{"/tmp/scene": path}))


@pytest.fixture(scope="module")
def evaluated(scene: tuple[Path, CommandResult]) -> tuple[Path, CommandResult]:
    """The README's evaluation of that scene, exactly."""
    path, _ = scene
    out = path.parent / "eval"
    return out, run_command(eval_argv(path, out))


@pytest.fixture(scope="module")
def resumed(scene: tuple[Path, CommandResult],
            evaluated: tuple[Path, CommandResult]) -> CommandResult:
    """The same command again over the completed run: everything resumed."""
    path, _ = scene
    out, _ = evaluated
    return run_command(eval_argv(path, out))


def test_readme_offline_lines(scene: tuple[Path, CommandResult],
                              evaluated: tuple[Path, CommandResult]) -> None:
    """``spatial-mllm-scene /tmp/scene --seed 3`` then the README's ``spatial-mllm-eval``
    line, exactly: both exit 0 with nothing on stderr that looks like a fault."""
    assert_clean(scene[1])
    assert_clean(evaluated[1])


def test_scene_writes_a_bag_questions_and_ground_truth(
        scene: tuple[Path, CommandResult]) -> None:
    path, res = scene
    assert_clean(res)
    assert (path / "bag" / "metadata.yaml").is_file()
    assert (path / "questions.jsonl").stat().st_size > 0
    truth = json.loads((path / "scene.json").read_text())
    assert truth["seed"] == 3 and truth["objects"]


def test_scene_shows_its_rendering_progress(scene: tuple[Path, CommandResult]) -> None:
    """Rendering takes the most time: it counts its frames on stderr, stdout keeps the
    summary."""
    _, res = scene
    counts = re.findall(r"^spatial-mllm-scene: rendering .*: (\d+)/60 frames$", res.stderr,
                        re.MULTILINE)
    assert len(counts) >= 2 and counts[-1] == "60", res.describe()
    assert "spatial-mllm-scene" not in res.stdout


def test_eval_writes_metrics_report_and_plots(evaluated: tuple[Path, CommandResult]) -> None:
    out, res = evaluated
    assert_clean(res)
    for name in ("metrics.json", "report.md", "scores.png", "latency.png", "coverage.png",
                 "results.jsonl"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["strategies"]) == {"coverage", "uniform"}
    assert f"report: {out / 'report.md'}" in res.stdout
    # what ran the vision encoders, from the engine the run used (closed after the run)
    report = (out / "report.md").read_text()
    assert "Vision encoders: requested torch; vision_2d ran on torch" in report, report


def test_eval_says_the_tiny_model_answers_meaninglessly(
        evaluated: tuple[Path, CommandResult]) -> None:
    """The default model is the generated tiny one (random weights): the report says so at
    its top, metrics.json says so, and so does the summary on stdout."""
    out, res = evaluated
    head = (out / "report.md").read_text().split("\n## ")[0].split("| type |")[0]
    assert "random weights" in head and "meaningless" in head, head
    model = json.loads((out / "metrics.json").read_text())["model"]
    assert model["random_weights"] is True and "meaningless" in model["note"]
    assert "meaningless" in res.stdout


def test_eval_prints_coverage_with_few_digits(evaluated: tuple[Path, CommandResult]) -> None:
    _, res = evaluated
    lines = [ln for ln in res.stdout.splitlines() if "coverage" in ln and ln.startswith("[")]
    assert len(lines) == 2, res.describe()
    for line in lines:
        tail = line[line.index("coverage "):]
        for number in re.findall(r"\d+\.\d+|\d+", tail):
            digits = number.replace(".", "").lstrip("0")
            assert len(digits) <= 4, f"{number} in {line!r}"


def test_eval_resumed_says_nothing_was_recomputed(resumed: CommandResult) -> None:
    """A re-run over a complete run recomputes nothing: no time split of nothing."""
    assert_clean(resumed)
    assert "outside the model 100.0 %" not in resumed.stdout, resumed.describe()
    assert "nothing recomputed" in resumed.stdout, resumed.describe()


def test_bag_from_rgbd_readme_line(shelf: Path, tmp_path: Path) -> None:
    out = tmp_path / "shelf_bag"
    res = run_command(readme_argv(BAG_LINE, **{"../shared/data/real_rgbd_shelf": shelf,
                                                "/tmp/shelf_bag": out}))
    assert_clean(res)
    assert (out / "metadata.yaml").is_file()
    assert "15 frames" in res.stdout


# ----------------------------------------------------------------------------- mistakes
def test_misspelt_strategy_is_refused_before_loading_the_model(
        scene: tuple[Path, CommandResult], tmp_path: Path) -> None:
    path, _ = scene
    res = run_command(_replaced(eval_argv(path, tmp_path / "eval"), "coverage,uniform",
                                "coverage,unifrom"))
    assert_refused(res, ExitCode.USAGE, "unifrom", "uniform")
    assert "loading" not in res.stderr + res.stdout, res.describe()
    assert not (tmp_path / "eval").exists()


def test_eval_of_a_missing_bag_is_an_input_error(scene: tuple[Path, CommandResult],
                                                  tmp_path: Path) -> None:
    path, _ = scene
    res = run_command(_replaced(eval_argv(path, tmp_path / "eval"), f"{path}/bag",
                                tmp_path / "nobag"))
    assert_refused(res, ExitCode.INPUT, "nobag", "not found")
    assert "loading" not in res.stderr


def test_eval_of_a_missing_questions_file_is_an_input_error(
        scene: tuple[Path, CommandResult], tmp_path: Path) -> None:
    path, _ = scene
    res = run_command(_replaced(eval_argv(path, tmp_path / "eval"),
                                f"{path}/questions.jsonl", f"{path}/questons.jsonl"))
    assert_refused(res, ExitCode.INPUT, "questons.jsonl")


def test_eval_with_a_missing_checkpoint_is_an_input_error(
        scene: tuple[Path, CommandResult], tmp_path: Path) -> None:
    path, _ = scene
    res = run_command([*eval_argv(path, tmp_path / "eval"), "--checkpoint",
                       f"{tmp_path}/nockpt"])
    assert_refused(res, ExitCode.INPUT, "nockpt", "does not exist")
    assert "loading" not in res.stderr


def test_eval_of_a_model_that_cannot_fit_its_budget_is_refused_before_loading(
        scene: tuple[Path, CommandResult], tmp_path: Path) -> None:
    path, _ = scene
    res = run_command([*eval_argv(path, tmp_path / "eval"), "-p",
                       "model.memory_budget_gb:=0.5"])
    assert_refused(res, ExitCode.USAGE, "does not fit in 0.5 GB (model.memory_budget_gb)")
    assert "loading" not in res.stderr
    assert not (tmp_path / "eval").exists()


def test_eval_into_a_file_is_an_output_error(scene: tuple[Path, CommandResult],
                                             tmp_path: Path) -> None:
    path, _ = scene
    out = tmp_path / "eval"
    out.write_text("not a folder\n")
    res = run_command(eval_argv(path, out))
    assert_refused(res, ExitCode.OUTPUT, str(out))
    assert "loading" not in res.stderr


def test_eval_resuming_other_settings_is_an_output_error(
        scene: tuple[Path, CommandResult], evaluated: tuple[Path, CommandResult]) -> None:
    path, _ = scene
    out, _ = evaluated
    res = run_command([*eval_argv(path, out), *SMALL])
    assert_refused(res, ExitCode.OUTPUT, "other settings")


def test_a_bad_parameter_is_a_usage_error(scene: tuple[Path, CommandResult],
                                          tmp_path: Path) -> None:
    path, _ = scene
    res = run_command([*eval_argv(path, tmp_path / "eval"), "-p", "sampling.frame_budgt:=8"])
    assert_refused(res, ExitCode.USAGE, "frame_budgt")


def test_scene_into_an_existing_scene_is_an_output_error(
        scene: tuple[Path, CommandResult]) -> None:
    path, _ = scene
    res = run_command(readme_argv(SCENE_LINE, **{"/tmp/scene": path}))
    assert_refused(res, ExitCode.OUTPUT, "already exists")
    assert "rendering" not in res.stderr


def test_bag_from_rgbd_into_an_existing_bag_is_an_output_error(
        shelf: Path, scene: tuple[Path, CommandResult]) -> None:
    path, _ = scene
    res = run_command(readme_argv(BAG_LINE, **{"../shared/data/real_rgbd_shelf": shelf,
                                                "/tmp/shelf_bag": path / "bag"}))
    assert_refused(res, ExitCode.OUTPUT, "already exists")


def test_bag_from_rgbd_of_a_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    res = run_command(readme_argv(BAG_LINE, **{"../shared/data/real_rgbd_shelf":
                                                tmp_path / "noshelf",
                                                "/tmp/shelf_bag": tmp_path / "b"}))
    assert_refused(res, ExitCode.INPUT, "noshelf")
    assert not (tmp_path / "b").exists()


def test_a_misspelt_flag_is_a_usage_error(tmp_path: Path) -> None:
    res = run_command(f"spatial-mllm-scene {tmp_path}/scene --seed 3 --widht 64")
    assert_refused(res, ExitCode.USAGE, "--widht")
    assert not (tmp_path / "scene").exists()


def test_checkpoint_inspect_of_a_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    res = run_command(f"spatial-mllm-checkpoint inspect {tmp_path}/nockpt")
    assert_refused(res, ExitCode.INPUT, "nockpt", "does not exist")


def test_checkpoint_tiny_onto_a_file_is_an_output_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x\n")
    res = run_command(f"spatial-mllm-checkpoint tiny {target} --layout v1.1")
    assert_refused(res, ExitCode.OUTPUT, str(target))
