"""The README top to bottom, as a new user runs it: every command line of its bash blocks is
run, as a process with the README's words, by a test named in ``RUN_BY`` below (or is
listed in ``NOT_HERE`` with the reason it cannot run on this machine).  A README line
without an entry fails ``test_every_readme_command_line_is_run_by_a_test``.

The walk-through itself (shell-ready line, the node with the default profile, the bag of
the shelf frames replayed into it, the three ``spatial-mllm-ask`` lines, the checkpoint
commands, ``make demo``) is in this file; the other commands' lines are run by the test
files named in the table.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.cli import assert_clean, assert_refused, run_command, start_command
from testkit.paths import REPO
from testkit.readme import readme_command_lines, words

from spatial_mllm_ros.exitcodes import ExitCode

HERE = Path(__file__).resolve().parent

#: README command line (its words, as ``testkit.readme.words`` splits it) -> the test that
#: runs it: ``file.py::test_name`` under test/cli.
RUN_BY: dict[str, str] = {
    "make demo": "test_readme_walkthrough.py::test_make_demo",
    "source .venv/bin/activate && source install/setup.bash":
        "test_readme_walkthrough.py::test_shell_ready_line",
    "spatial-mllm-ask 'How many chairs are in this room?'":
        "test_readme_walkthrough.py::test_node_replay_and_ask",
    "spatial-mllm-ask 'Which is closer to the sofa?' --type object_rel_distance "
    "--option 'A. table' --option 'B. tv' --frames 16 --strategy coverage --json":
        "test_readme_walkthrough.py::test_node_replay_and_ask",
    "spatial-mllm-ask 'How far is the sofa from the stove?' --via topic --id 17":
        "test_readme_walkthrough.py::test_node_replay_and_ask",
    "spatial_mllm_node --ros-args --params-file config/cpu_tiny.yaml":
        "test_readme_walkthrough.py::test_node_replay_and_ask",
    "spatial-mllm-bag-from-rgbd ../shared/data/real_rgbd_shelf /tmp/shelf_bag":
        "test_readme_walkthrough.py::test_node_replay_and_ask",
    "spatial-mllm-replay /tmp/shelf_bag --rate 1.0":
        "test_readme_walkthrough.py::test_node_replay_and_ask",
    "spatial-mllm-checkpoint tiny OUT_DIR --layout v1.1":
        "test_readme_walkthrough.py::test_checkpoint_commands",
    "spatial-mllm-checkpoint layout --layout v1.0":
        "test_readme_walkthrough.py::test_checkpoint_commands",
    "spatial-mllm-checkpoint inspect DIR": "test_readme_walkthrough.py::test_checkpoint_commands",
    "spatial-mllm-checkpoint export-onnx DIR OUT --height 476 --width 644":
        "test_readme_walkthrough.py::test_checkpoint_commands",
    "spatial-mllm-checkpoint build-engines --config desktop_gpu":
        "test_readme_walkthrough.py::test_build_engines_without_the_profiles_checkpoint",
    "spatial-mllm-checkpoint build-engines --config jetson_orin":
        "test_readme_walkthrough.py::test_build_engines_without_the_profiles_checkpoint",
    "spatial-mllm-checkpoint build-engines --config desktop_gpu --size 476x644 --size 364x504":
        "test_readme_walkthrough.py::test_build_engines_without_the_profiles_checkpoint",
    "spatial-mllm-infer --checkpoint DIR --frames ../shared/data/real_rgbd_shelf "
    "--question 'How many boxes are there?'": "test_infer_cli.py::test_readme_infer_line",
    "spatial-mllm-checkpoint tiny /tmp/qwen --layout qwen2.5-vl":
        "test_plain_qwen_cli.py::test_readme_infer_line_answers_without_a_spatial_encoder",
    "spatial-mllm-checkpoint layout --layout qwen2.5-vl":
        "test_plain_qwen_cli.py::test_readme_layout_line_is_qwen2_5_vl_3b_instruct",
    "spatial-mllm-infer --checkpoint /tmp/qwen --frames ../shared/data/real_rgbd_shelf "
    "--question 'How many boxes are there?'":
        "test_plain_qwen_cli.py::test_readme_infer_line_answers_without_a_spatial_encoder",
    "spatial-mllm-eval /tmp/scene/bag --questions /tmp/scene/questions.jsonl --out "
    "/tmp/eval-qwen --strategies coverage,uniform --checkpoint /tmp/qwen":
        "test_plain_qwen_cli.py::test_readme_eval_lines_compare_two_checkpoints_on_one_bag",
    "spatial-mllm-checkpoint plan --layout v1.1 --config jetson_orin_nx_16gb --memory-gb 10 "
    "--frame-budget 16": "test_fit_cli.py::test_readme_plan_line",
    "spatial-mllm-infer --checkpoint DIR --frames ../shared/data/real_rgbd_shelf "
    "--question 'How many boxes are there?' -p model.quantization:=int8_weight":
        "test_fit_cli.py::test_readme_infer_quantized_line",
    "spatial-mllm-scene /tmp/scene --seed 3": "test_eval_cli.py::test_readme_offline_lines",
    "spatial-mllm-eval /tmp/scene/bag --questions /tmp/scene/questions.jsonl --out /tmp/eval "
    "--strategies coverage,uniform": "test_eval_cli.py::test_readme_offline_lines",
    "spatial-mllm-serve --config cpu_tiny --port 8000":
        "test_serve_cli.py::test_readme_infer_endpoint_line_gives_the_local_answer",
    "spatial-mllm-infer --endpoint http://127.0.0.1:8000 --frames "
    "../shared/data/real_rgbd_shelf --question 'How many boxes are there?'":
        "test_serve_cli.py::test_readme_infer_endpoint_line_gives_the_local_answer",
    "spatial-mllm-vsibench DIR --out OUT --nframes 4 -p model.max_pixels:=15680 "
    "-p answer.max_new_tokens:=4":
        "test_vsibench_cli.py::test_readme_command_answers_and_scores_every_question",
    "spatial-mllm-vsibench /data/vsibench --out /data/runs/135k-sa --config desktop_gpu "
    "--nframes 16 --sampling space_aware --workers 4 -p model.vision_backend:=torch":
        "test_vsibench_cli.py::test_readme_gpu_lines_without_the_profiles_checkpoint",
    "spatial-mllm-vsibench /data/vsibench --out /data/runs/135k-uniform --config desktop_gpu "
    "--nframes 16 --sampling uniform --workers 4 -p model.vision_backend:=torch":
        "test_vsibench_cli.py::test_readme_gpu_lines_without_the_profiles_checkpoint",
    "rgbd_stream_publisher --rig front,left,right --source synthetic --count 300":
        "test_multi_camera_cli.py::test_readme_rig_publisher_line",
    "spatial-mllm-scene /tmp/rig --seed 3 --config multi_camera --frames 30":
        "test_multi_camera_cli.py::test_readme_rig_scene_and_eval_lines",
    "spatial-mllm-eval /tmp/rig/bag --questions /tmp/rig/questions.jsonl --out /tmp/rig_eval "
    "--config multi_camera --strategies coverage,uniform --limit 4":
        "test_multi_camera_cli.py::test_readme_rig_scene_and_eval_lines",
}

#: README command lines that cannot run on this machine, and why (their tests, where they
#: exist, run on a ROS install: test/ros/test_launch.py, test/ros/test_ros_standard_path.py).
NOT_HERE: dict[str, str] = {
    "make test": "the command that runs this test",
    "cd ~/ros2_ws/src && git clone <this repository> spatial_mllm_ros":
        "a ROS 2 install's workspace; no network here",
    "pip install -r spatial_mllm_ros/requirements/python.txt":
        "a ROS 2 install's workspace (make setup installs the same file here)",
    "cd ~/ros2_ws && colcon build && source install/setup.bash":
        "a ROS 2 install's workspace (make build runs colcon here)",
    "ros2 launch spatial_mllm_ros spatial_mllm.launch.py profile:=desktop_gpu":
        "the ros2 CLI and launch are not on PyPI",
    "ros2 run spatial_mllm_ros spatial_mllm_node --ros-args --params-file '<profile.yaml>'":
        "the ros2 CLI is not on PyPI (spatial_mllm_node is run instead)",
    "ros2 service call /spatial_mllm/ask spatial_mllm_ros/srv/AskSpatial "
    "\"{question: 'How many chairs are in this room?'}\"":
        "the ros2 CLI is not on PyPI (spatial-mllm-ask is run instead)",
    "export FASTDDS_DEFAULT_PROFILES_FILE=$(ros2 pkg prefix "
    "spatial_mllm_ros)/share/spatial_mllm_ros/config/fastdds_large_data.xml":
        "the ros2 CLI is not on PyPI (install/setup.bash sets the profile here)",
    "ros2 run spatial_mllm_ros spatial_mllm_node": "the ros2 CLI is not on PyPI",
    "python3 -c 'import tensorrt; print(tensorrt.__version__)'":
        "TensorRT needs a GPU; this machine has none",
    "export 'SPATIAL_MLLM_TOKEN=$(openssl' rand -hex '32)'":
        "sets the shell's token; test_serve_cli.py gives the server and its clients "
        "SPATIAL_MLLM_TOKEN in their environment",
    "spatial-mllm-serve --config desktop_gpu --replicas 2 --num-gpus 1 --host 0.0.0.0 "
    "--port 8000": "two GPUs; this machine has none (the cpu_tiny line is run)",
    "spatial_mllm_node --ros-args --params-file config/jetson_orin.yaml -r __ns:=/robot1 "
    "-p model.endpoint:=http://gpu-host:8000":
        "a robot and a host named gpu-host (test_fleet_cli.py runs this line with the "
        "cpu_tiny profile, a local server, the robot's own camera topics and small settings)",
    "ros2 launch spatial_mllm_ros spatial_mllm.launch.py profile:=jetson_orin "
    "namespace:=/robot1 endpoint:=http://gpu-host:8000": "the ros2 CLI and launch are not on PyPI",
    "ros2 launch spatial_mllm_ros spatial_mllm.launch.py profile:=multi_camera "
    "remap:=/front/color/image_raw=/cam_front/color/image_raw,/front/aligned_depth_to_color/"
    "image_raw=/cam_front/aligned_depth_to_color/image_raw":
        "the ros2 CLI and launch are not on PyPI (test_launch.py checks the remap argument)",
    "ros2 launch spatial_mllm_ros spatial_mllm.launch.py profile:=jetson_orin_nx_16gb":
        "the ros2 CLI and launch are not on PyPI (test_device_profiles.py loads and plans "
        "the profile)",
}


def _key(line: str) -> tuple[str, ...]:
    """A table entry as the words a shell makes of it (quoting and spacing aside)."""
    return words(line)


def readme_argv(line: str, **subs: str) -> list[str]:
    """The README command line ``line`` (which must be in the README) as an argument vector,
    with words replaced as ``subs`` says (``{"/tmp/scene": str(tmp)}``: a placeholder or a
    fixed path of the README by this test's own)."""
    w = words(line)
    assert w in readme_command_lines(), f"the README no longer shows {line!r}"
    out = []
    for word in w:
        for old, new in subs.items():
            word = word.replace(old, new)
        out.append(word)
    return out


def test_every_readme_command_line_is_run_by_a_test() -> None:
    lines = set(readme_command_lines())
    run_by = {_key(k): v for k, v in RUN_BY.items()}
    not_here = {_key(k) for k in NOT_HERE}
    missing = sorted(" ".join(w) for w in lines - run_by.keys() - not_here)
    assert not missing, f"README command lines that no test runs: {missing}"
    stale = sorted(" ".join(w) for w in (run_by.keys() | not_here) - lines)
    assert not stale, f"entries for lines the README no longer shows: {stale}"
    for line, where in RUN_BY.items():
        file, name = where.split("::")
        source = (HERE / file).read_text() if (HERE / file).exists() else ""
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), (
            f"{line!r}: {where} does not exist")


def test_shell_ready_line() -> None:
    """From a login-like environment (no venv, no ROS variables), the README's line makes a
    shell in which the interfaces import and the commands are on the PATH."""
    line = " ".join(readme_argv("source .venv/bin/activate && source install/setup.bash"))
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/local/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8"}
    script = (f"{line} && python -c 'import spatial_mllm_ros.msg, spatial_mllm_ros.srv' "
              "&& command -v spatial-mllm-ask spatial_mllm_node spatial-mllm-infer")
    res = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("\n") == 3, res.stdout
    assert not res.stderr.strip(), res.stderr


@pytest.fixture
def node() -> Iterator[subprocess.Popen[str]]:
    """The node as the README starts it on this machine."""
    proc = start_command(readme_argv_inline_node())
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def readme_argv_inline_node() -> list[str]:
    """``spatial_mllm_node --ros-args --params-file config/cpu_tiny.yaml``, which the README
    shows in a bash block as the way to start the node without the ros2 CLI."""
    return readme_argv("spatial_mllm_node --ros-args --params-file config/cpu_tiny.yaml")


def _wait_active(proc: subprocess.Popen[str]) -> None:
    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor

    with IngestMonitor(f"walkthrough_monitor_{os.getpid()}") as mon:
        try:
            mon.wait_for(lambda v: v.get("pid") == str(proc.pid) and v.get("state") == "active",
                         timeout_s=180)
        except TimeoutError as err:
            alive = proc.poll() is None
            raise AssertionError(f"the node (alive={alive}) never became active: {err}") from err


def test_node_replay_and_ask(node: subprocess.Popen[str], shelf: Path, tmp_path: Path) -> None:
    """The README's flow on this machine: the node with the default profile, the shelf frames
    as a bag replayed into it, then the three ``spatial-mllm-ask`` lines."""
    _wait_active(node)
    bag = tmp_path / "shelf_bag"
    res = run_command(readme_argv(
        "spatial-mllm-bag-from-rgbd ../shared/data/real_rgbd_shelf /tmp/shelf_bag",
        **{"../shared/data/real_rgbd_shelf": str(shelf), "/tmp/shelf_bag": str(bag)}))
    assert_clean(res)
    res = run_command(readme_argv("spatial-mllm-replay /tmp/shelf_bag --rate 1.0",
                                  **{"/tmp/shelf_bag": str(bag)}), timeout=180)
    assert_clean(res)

    res = run_command(readme_argv("spatial-mllm-ask 'How many chairs are in this room?'"),
                      timeout=300)
    assert_clean(res)
    assert "OK" in res.stdout, res.describe()

    res = run_command(readme_argv(
        "spatial-mllm-ask 'Which is closer to the sofa?' --type object_rel_distance "
        "--option 'A. table' --option 'B. tv' --frames 16 --strategy coverage --json"),
        timeout=300)
    assert_clean(res)
    answer: dict[str, Any] = res.json()
    assert answer["status"] == "OK", answer
    # 16 asked, the 15 shelf frames held: every one of them is used, and the answer says so.
    assert len(answer["frame_stamps_ns"]) == 15, answer
    assert "15" in json.dumps(answer.get("notes", answer.get("frames_note", ""))), answer

    res = run_command(readme_argv(
        "spatial-mllm-ask 'How far is the sofa from the stove?' --via topic --id 17"),
        timeout=300)
    assert_clean(res)
    assert "17" in res.stdout, res.describe()


def test_checkpoint_commands(tmp_path: Path) -> None:
    """``spatial-mllm-checkpoint`` tiny, layout, inspect and export-onnx as the README shows
    them (OUT_DIR, DIR and OUT are this test's folders)."""
    ckpt = tmp_path / "tiny"
    res = run_command(readme_argv("spatial-mllm-checkpoint tiny OUT_DIR --layout v1.1",
                                  OUT_DIR=str(ckpt)))
    assert_clean(res)
    assert (ckpt / "config.json").is_file() and (ckpt / "model.safetensors").is_file()

    res = run_command(readme_argv("spatial-mllm-checkpoint layout --layout v1.0"))
    assert_clean(res)
    rows = [ln.split("\t") for ln in res.stdout.splitlines()]
    assert len(rows) > 100 and all(len(r) == 2 for r in rows), res.stdout[:400]
    assert any(name.startswith("vggt_embedding_merger.") for name, _ in rows)

    res = run_command(readme_argv("spatial-mllm-checkpoint inspect DIR", DIR=str(ckpt)))
    assert_clean(res)
    report = res.json()
    assert report["layout"] == "v1.1", report

    out = tmp_path / "onnx"
    res = run_command(readme_argv(
        "spatial-mllm-checkpoint export-onnx DIR OUT --height 476 --width 644",
        DIR=str(ckpt), OUT=str(out)))
    assert_clean(res)
    assert (out / "vision_encoder.onnx").is_file() and (out / "spatial_encoder.onnx").is_file()


@pytest.mark.parametrize("line", [
    "spatial-mllm-checkpoint build-engines --config desktop_gpu",
    "spatial-mllm-checkpoint build-engines --config jetson_orin",
    "spatial-mllm-checkpoint build-engines --config desktop_gpu --size 476x644 --size 364x504",
])
def test_build_engines_without_the_profiles_checkpoint(line: str) -> None:
    """The GPU profiles name a released checkpoint under /opt/models, which this machine does
    not have: the command says so in one line and exits INPUT, before loading anything."""
    res = run_command(readme_argv(line))
    assert_refused(res, ExitCode.INPUT, "does not exist")


def test_make_demo() -> None:
    """``make demo`` (setup is already done: its second run takes seconds) runs the main job:
    five questions answered over the service, each beside the scene's ground truth."""
    res = run_command(readme_argv("make demo"), timeout=900)
    # make's own lines ("make[1]: ...") are not noise; the demo's output is checked below.
    assert_clean(res)
    assert res.stdout.count("\nQ [") == 5, res.describe()
    assert res.stdout.count("ground truth:") == 5, res.describe()
    assert res.stdout.count("answer: [OK]") == 5, res.describe()
    assert "demo: node stopped (exit code 0)" in res.stdout, res.describe()
