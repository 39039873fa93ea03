"""Several cameras offline (issue 22): ``spatial-mllm-scene`` with a profile that names two
cameras writes one bag with both cameras' topics, and ``spatial-mllm-eval`` evaluates it with
that profile -- each camera ingested on its own into the one buffer, each answer naming the
cameras of its frames -- as processes, as a user runs them; the mistakes are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from testkit.cli import CommandResult, assert_clean, assert_refused, run_command
from testkit.readme import readme_command_lines, words

from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.params import config_dir

SMALL = ["-p", "model.max_pixels:=15680", "-p", "answer.max_new_tokens:=4", "--no-thumbnails"]
CAMERAS = ["front", "left"]


@pytest.fixture(scope="module")
def two_cameras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config/multi_camera.yaml with its front and left cameras only."""
    doc = yaml.safe_load((config_dir() / "multi_camera.yaml").read_text(encoding="utf-8"))
    params = doc["spatial_mllm"]["ros__parameters"]
    params["cameras"] = CAMERAS
    params["camera"] = {k: v for k, v in params["camera"].items() if k in CAMERAS}
    path = tmp_path_factory.mktemp("profile") / "two_cameras.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scene(two_cameras: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Path, CommandResult]:
    path = tmp_path_factory.mktemp("rig") / "scene"
    res = run_command(["spatial-mllm-scene", str(path), "--seed", "3", "--config",
                       str(two_cameras), "--frames", "20", "--width", "160", "--height",
                       "120"])
    return path, res


@pytest.fixture(scope="module")
def evaluated(scene: tuple[Path, CommandResult], two_cameras: Path) -> tuple[Path, CommandResult]:
    path, _ = scene
    out = path.parent / "eval"
    res = run_command(["spatial-mllm-eval", str(path / "bag"), "--questions",
                       str(path / "questions.jsonl"), "--out", str(out), "--strategies",
                       "coverage,uniform", "--config", str(two_cameras), "--limit", "2",
                       *SMALL])
    return out, res


def test_a_two_camera_bag_is_written(scene: tuple[Path, CommandResult]) -> None:
    path, res = scene
    assert_clean(res)
    meta = (path / "bag" / "metadata.yaml").read_text(encoding="utf-8")
    for cam in CAMERAS:
        for topic in ("color/image_raw", "aligned_depth_to_color/image_raw",
                      "color/camera_info", "camera_pose"):
            assert f"/{cam}/{topic}" in meta
    assert "/right/" not in meta


def test_the_scene_writes_its_ground_truth_with_the_cameras(
        scene: tuple[Path, CommandResult]) -> None:
    """scene.json as a one-camera scene writes it (room, objects, frames with what is visible,
    first sightings, appearance order, frame ids), plus each camera's frame id and extrinsic
    and what each camera saw per step."""
    from spatial_mllm_ros.synthetic.rig import rig_extrinsic

    path, res = scene
    assert_clean(res)
    assert str(path / "scene.json") in res.stdout
    truth = json.loads((path / "scene.json").read_text(encoding="utf-8"))
    assert {"format", "seed", "fps", "room", "objects", "frames", "first_seen_ns",
            "appearance_order", "frame_id", "world_frame_id"} <= set(truth)
    assert truth["seed"] == 3 and truth["objects"] and truth["room"]["floor_area_m2"] > 0
    assert list(truth["cameras"]) == CAMERAS
    for cam in CAMERAS:
        e = rig_extrinsic(cam)
        assert truth["cameras"][cam] == {
            "frame_id": f"{cam}_color_optical_frame",
            "extrinsic": {"translation": list(e.translation),
                          "rotation_xyzw": list(e.rotation_xyzw)}}
    frames = truth["frames"]
    assert [f["index"] for f in frames] == list(range(20))
    stamps = [f["stamp_ns"] for f in frames]
    assert stamps == sorted(stamps) and len(set(stamps)) == 20
    for f in frames:  # a step's visible instances: those any camera saw, pixels added up
        assert set(f["cameras"]) == set(CAMERAS)
        ids = {i for seen in f["cameras"].values() for i in seen}
        assert set(f["visible"]) == ids
        for i in ids:
            assert f["visible"][i] == sum(seen.get(i, 0) for seen in f["cameras"].values())
    first = {i: next(f["stamp_ns"] for f in frames if i in f["visible"])
             for i in truth["first_seen_ns"]}
    assert truth["first_seen_ns"] == first
    assert truth["appearance_order"] == sorted((int(i) for i in first),
                                               key=lambda i: (first[str(i)], i))
    assert truth["world_frame_id"] == "map"


def test_a_two_camera_bag_evaluates(evaluated: tuple[Path, CommandResult]) -> None:
    out, res = evaluated
    assert_clean(res, allowed=[r"random weights"])
    records = [json.loads(line)["record"]
               for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == 4 and all(r["status"] == "OK" for r in records)
    for r in records:
        assert len(r["frame_cameras"]) == len(r["frame_stamps_ns"]) > 0
        assert set(r["frame_cameras"]) <= set(CAMERAS)
    assert any(set(r["frame_cameras"]) == set(CAMERAS) for r in records)
    again = run_command(res.argv)  # resumable: the camera arrays read back from run.json
    assert_clean(again, allowed=[r"random weights"])
    assert "resumed 4" in again.stdout + again.stderr


def test_topic_overrides_are_refused_for_named_cameras(scene: tuple[Path, CommandResult],
                                                       two_cameras: Path, tmp_path: Path
                                                       ) -> None:
    path, _ = scene
    res = run_command(["spatial-mllm-eval", str(path / "bag"), "--questions",
                       str(path / "questions.jsonl"), "--out", str(tmp_path / "o"),
                       "--config", str(two_cameras), "--topic", "colour=/x"])
    assert_refused(res, ExitCode.USAGE, "--topic", "camera.<name>.<kind>")


def test_a_bad_camera_entry_is_refused_with_its_name(scene: tuple[Path, CommandResult],
                                                     two_cameras: Path, tmp_path: Path) -> None:
    path, _ = scene
    res = run_command(["spatial-mllm-eval", str(path / "bag"), "--questions",
                       str(path / "questions.jsonl"), "--out", str(tmp_path / "o"),
                       "--config", str(two_cameras), "-p",
                       "camera.left.extrinsic:=[0.0, 0.1, 0.0]"])
    assert_refused(res, ExitCode.USAGE, "camera 'left'", "extrinsic")


def test_a_camera_absent_from_the_bag_is_named(scene: tuple[Path, CommandResult],
                                               tmp_path: Path) -> None:
    path, _ = scene
    res = run_command(["spatial-mllm-eval", str(path / "bag"), "--questions",
                       str(path / "questions.jsonl"), "--out", str(tmp_path / "o"),
                       "--config", "multi_camera"])
    assert res.returncode == ExitCode.INPUT, res.describe()
    assert "camera 'right'" in res.stderr and "Traceback" not in res.stderr


RIG_LINE = "rgbd_stream_publisher --rig front,left,right --source synthetic --count 300"
RIG_SCENE_LINE = "spatial-mllm-scene /tmp/rig --seed 3 --config multi_camera --frames 30"
RIG_EVAL_LINE = ("spatial-mllm-eval /tmp/rig/bag --questions /tmp/rig/questions.jsonl "
                 "--out /tmp/rig_eval --config multi_camera --strategies coverage,uniform "
                 "--limit 4")


def _readme_argv(line: str, **subs: str | Path) -> list[str]:
    w = words(line)
    assert w in readme_command_lines(), f"the README no longer shows {line!r}"
    out = []
    for word in w:
        for old, new in subs.items():
            word = word.replace(old, str(new))
        out.append(word)
    return out


def test_readme_rig_publisher_line() -> None:
    """The README's rig line, exactly: three cameras, 300 good frames each."""
    res = run_command(_readme_argv(RIG_LINE))
    assert_clean(res)
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert {n: s["good_frames"] for n, s in summary["cameras"].items()} == {
        "front": 300, "left": 300, "right": 300}
    for s in summary["cameras"].values():
        assert s["published"]["colour"] == s["published"]["depth"] == 300


def test_readme_rig_scene_and_eval_lines(tmp_path: Path) -> None:
    """The README's multi-camera scene and evaluation lines, exactly (paths aside): three
    cameras in one bag, answers from the shared buffer naming their cameras."""
    subs = {"/tmp/rig_eval": tmp_path / "rig_eval", "/tmp/rig": tmp_path / "rig"}
    assert_clean(run_command(_readme_argv(RIG_SCENE_LINE, **subs)))
    res = run_command(_readme_argv(RIG_EVAL_LINE, **subs))
    assert_clean(res, allowed=[r"random weights"])
    lines = (tmp_path / "rig_eval" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line)["record"] for line in lines]
    assert len(records) == 8
    assert all(set(r["frame_cameras"]) <= {"front", "left", "right"} for r in records)
    assert any(len(set(r["frame_cameras"])) > 1 for r in records)


@pytest.mark.parametrize(("extra", "needles"), [
    (["-p", "cameras:=[front]", "-p", "camera.front.depth:=/front/depth"],
     ("camera 'front'", "camera.front.colour")),
    (["-p", "cameras:=[front]", "-p", "camera.front.colour:=/f", "-p", "camera.rear.colour:=/r"],
     ("camera.rear.colour", "not in cameras [front]")),
    (["--params-file", "config/multi_camera.yaml", "-p", "camera.left.odometry:=/odom"],
     ("camera 'left'", "more than one pose source")),
], ids=["no-colour", "unlisted-camera", "two-pose-sources"])
def test_the_node_refuses_a_bad_camera_entry_at_start_up(extra: list[str],
                                                         needles: tuple[str, ...]) -> None:
    """``spatial_mllm_node`` with a bad camera entry: one line naming the camera, exit 2,
    before anything loads."""
    res = run_command(["spatial_mllm_node", "--ros-args", *extra], timeout=90.0)
    assert_refused(res, ExitCode.USAGE, *needles)


def test_the_bag_converter_writes_several_cameras(two_cameras: Path, tmp_path: Path) -> None:
    """``spatial-mllm-bag-from-rgbd --camera NAME=DIR ...``: each camera's RGB-D folder on
    that camera's topics of the profile, in one bag that spatial-mllm-eval plans."""
    from spatial_mllm_ros.core.rgbd_dir import write_rgbd_dir
    from spatial_mllm_ros.synthetic.rig import make_rig_walkthrough

    rig = make_rig_walkthrough(5, n_steps=6, width=96, height=72, cameras=tuple(CAMERAS))
    argv = ["spatial-mllm-bag-from-rgbd", str(tmp_path / "bag"), "--config", str(two_cameras)]
    for cam in CAMERAS:
        write_rgbd_dir(rig.frames[cam], tmp_path / cam)
        argv += ["--camera", f"{cam}={tmp_path / cam}"]
    res = run_command(argv)
    assert_clean(res)
    for cam in CAMERAS:
        assert f"/{cam}/color/image_raw: 6" in res.stdout
        assert f"/{cam}/camera_pose: 6" in res.stdout
    from spatial_mllm_ros.bags import BagSource, camera_topics, plan_cameras
    from spatial_mllm_ros.settings import Settings

    with BagSource(tmp_path / "bag") as src:  # the evaluator's plan of the bag
        plan = plan_cameras(src, camera_topics(Settings.from_profile(two_cameras).cameras))
    assert plan.warnings == []
    assert {cam for cams in plan.routes.values() for cam in cams} == set(CAMERAS)
    wrong = run_command(["spatial-mllm-bag-from-rgbd", str(tmp_path / "bag2"), "--config",
                         str(two_cameras), "--camera", f"rear={tmp_path / 'front'}"])
    assert_refused(wrong, ExitCode.USAGE, "--camera", "front, left")
