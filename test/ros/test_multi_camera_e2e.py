"""End to end over DDS (issue 22): the node with three cameras (front, left, right, each on
its own topics, ``cameras`` + ``camera.<name>.*``) and a three-camera rig publisher at 30 Hz
each, reliable QoS. Each camera is paired on its own into one buffer: every frame is
accounted for per camera (``camera.<name>.*`` counters on /diagnostics and a
``spatial_mllm: camera <name>`` status each), and a camera that stops mid-stream or sends bad
camera info leaves the other two answering."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from testkit.cli import signal_group, start_command
from testkit.processes import (
    ANSWER_NODE_PARAMS,
    REPO,
    counter,
    node_status,
    run_publisher,
    wait_node_state,
)

from spatial_mllm_ros.answering.types import AnswerStatus
from spatial_mllm_ros.params import NODE_NAME
from spatial_mllm_ros.ros.rig_stream import rig_topics

CAMERAS = ("front", "left", "right")
PREFIX = "spatial_mllm: camera "
KINDS = ("colour", "depth", "camera_info", "pose")
PUB_ARGS = ("--rig", ",".join(CAMERAS), "--reliability", "reliable", "--qos-depth", "100",
            "--rate", "30")


def rig_params() -> dict[str, Any]:
    params: dict[str, Any] = {**ANSWER_NODE_PARAMS, "cameras": "[" + ", ".join(CAMERAS) + "]"}
    for cam in CAMERAS:
        topics = rig_topics(cam)
        params |= {f"camera.{cam}.{kind}": topics[kind] for kind in KINDS}
    return params


@pytest.fixture
def node(start_node: Any, monitor: Any) -> Any:
    proc = start_node(rig_params())
    wait_node_state(monitor, proc, "active", timeout=120)
    return proc


def camera_statuses(timeout_s: float = 20.0) -> dict[str, dict[str, str]]:
    """The values of each ``spatial_mllm: camera <name>`` status on /diagnostics (the first
    array that has all three)."""
    found = camera_status_until(lambda _found: True, timeout_s)
    return {cam: status_values(s) for cam, s in found.items()}


def status_values(status: Any) -> dict[str, str]:
    """A DiagnosticStatus's key-values."""
    return {kv.key: kv.value for kv in status.values}


def drained(summary: dict[str, Any]) -> Any:
    """Every message each camera published is received, and no frame waits for partners."""
    def pred(v: dict[str, str]) -> bool:
        return all(
            counter(v, f"camera.{cam}.in.{kind}.received") >= s["published"].get(kind, 0)
            and counter(v, f"camera.{cam}.pair.colour.pending") == 0
            for cam, s in summary["cameras"].items() for kind in KINDS)
    return pred


def accounted(v: dict[str, str], cam: str, published: dict[str, int]) -> None:
    """Camera ``cam``'s exact accounting: published == received == accepted + rejected per
    topic, accepted colour == emitted + dropped + pending."""
    for kind in KINDS:
        rec = counter(v, f"camera.{cam}.in.{kind}.received")
        acc = counter(v, f"camera.{cam}.in.{kind}.accepted")
        rej = sum(int(x) for k, x in v.items()
                  if k.startswith(f"camera.{cam}.in.{kind}.rejected."))
        assert rec == published.get(kind, 0) == acc + rej, (cam, kind, rec, acc, rej)
    colour = counter(v, f"camera.{cam}.in.colour.accepted")
    assert colour == (counter(v, f"camera.{cam}.frames.emitted")
                      + counter(v, f"camera.{cam}.pair.colour.dropped")
                      + counter(v, f"camera.{cam}.pair.colour.pending")), cam


def test_three_cameras_at_30_hz_every_frame_accounted_per_camera(
        node: Any, monitor: Any, answer_client: Any) -> None:
    summary = run_publisher(*PUB_ARGS, "--count", "60")
    v = node_status(monitor, node, drained(summary), timeout=60)
    for cam in CAMERAS:
        published = summary["cameras"][cam]["published"]
        assert published["colour"] == 60
        accounted(v, cam, published)
        assert counter(v, f"camera.{cam}.frames.complete") == 60  # depth, pose and info each
    assert counter(v, "in.colour.received") == 180
    statuses = camera_statuses()
    for cam in CAMERAS:  # one status per camera, with its own counters
        assert statuses[cam]["in.colour.received"] == "60", statuses[cam]
    ans = answer_client.ask("How many chairs are in this room?")
    assert ans.status == AnswerStatus.OK, ans.error
    assert len(ans.frame_cameras) == len(ans.frame_stamps) > 0
    assert set(ans.frame_cameras) <= set(CAMERAS)
    res = subprocess.run(  # spatial-mllm-ask --json, as a separate process
        [sys.executable, "-m", "spatial_mllm_ros.ros.ask_cli", "--json", "--strategy",
         "uniform", "--frames", "8", "How many chairs are in this room?"],
        cwd=REPO, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    cli = json.loads(res.stdout)
    assert cli["status"] == "OK"
    assert len(cli["frame_cameras"]) == len(cli["frame_stamps_ns"]) == 8
    assert len(set(cli["frame_cameras"])) >= 2 and set(cli["frame_cameras"]) <= set(CAMERAS)


def test_a_camera_that_stops_or_sends_bad_info_leaves_the_others_answering(
        node: Any, monitor: Any, answer_client: Any) -> None:
    summary = run_publisher(*PUB_ARGS, "--count", "45", "--camera-count", "left=10",
                            "--inject", "missing_intrinsics", "--inject-count", "5",
                            "--inject-camera", "right")
    v = node_status(monitor, node, drained(summary), timeout=60)
    per = summary["cameras"]
    assert per["left"]["good_frames"] == 10 and per["front"]["good_frames"] == 45
    for cam in CAMERAS:
        accounted(v, cam, per[cam]["published"])
    bad_info = sum(int(x) for k, x in v.items()
                   if k.startswith("camera.right.in.camera_info.rejected."))
    assert bad_info == 5
    assert not any(k.startswith(("camera.front.in.camera_info.rejected.",
                                 "camera.left.in.camera_info.rejected."))
                   for k in v)
    assert counter(v, "camera.front.frames.complete") == 45
    ans = answer_client.ask("How many chairs are in this room?")
    assert ans.status == AnswerStatus.OK, ans.error
    assert set(ans.frame_cameras) <= set(CAMERAS)
    spread = answer_client.ask("How many chairs are in this room?",
                               sampling_strategy="uniform", frame_budget=8)
    assert spread.status == AnswerStatus.OK, spread.error
    assert len(set(spread.frame_cameras)) >= 2  # the buffer holds every live camera's frames


def camera_status_until(pred: Callable[[dict[str, Any]], bool], timeout_s: float = 60.0,
                        cameras: tuple[str, ...] = CAMERAS) -> dict[str, Any]:
    """The first ``spatial_mllm: camera <name>`` statuses on /diagnostics (name -> the
    DiagnosticStatus) that have all ``cameras`` and satisfy ``pred``."""
    from diagnostic_msgs.msg import DiagnosticArray

    from spatial_mllm_ros.ros.client import BackgroundNode
    from spatial_mllm_ros.ros.qos import reliable_qos

    got: dict[str, Any] = {}
    done = threading.Event()

    def on_diag(msg: Any) -> None:
        found = {s.name.removeprefix(PREFIX): s for s in msg.status if s.name.startswith(PREFIX)}
        if set(found) == set(cameras) and pred(found) and not done.is_set():
            got.update(found)
            done.set()

    listener = BackgroundNode(f"camera_status_until_{os.getpid()}")
    listener.node.create_subscription(DiagnosticArray, "/diagnostics", on_diag,
                                      reliable_qos(10))
    try:
        assert done.wait(timeout_s), "no /diagnostics array with the awaited camera statuses"
    finally:
        listener.close()
    return got


def test_a_silent_camera_warns_in_its_own_status_and_the_others_stay_ok(
        start_node: Any, monitor: Any) -> None:
    """left stops after 10 frames while front and right keep streaming (``--loop``): left's
    status goes WARN naming it and its silent colour topic; front's and right's stay OK.
    (Silent = 2 s without a message, so a loaded machine's stall of a streaming camera does
    not read as silence.)"""
    from diagnostic_msgs.msg import DiagnosticStatus

    node = start_node(rig_params() | {"diagnostics.silent_periods": 10})
    wait_node_state(monitor, node, "active", timeout=120)

    pub = start_command([sys.executable, "-m", "spatial_mllm_ros.ros.stream_publisher",
                         "--wait-for-node", NODE_NAME, *PUB_ARGS, "--count", "10", "--loop",
                         "--camera-count", "left=10"])
    try:
        def left_alone_warns(found: dict[str, Any]) -> bool:
            return (found["left"].level == DiagnosticStatus.WARN
                    and all(found[c].level == DiagnosticStatus.OK for c in ("front", "right"))
                    and all(int(status_values(found[c]).get("in.colour.received", 0)) > 10
                            for c in ("front", "right")))

        found = camera_status_until(left_alone_warns)
    finally:
        signal_group(pub, signal.SIGINT)
        out, err = pub.communicate(timeout=30)
    left = found["left"]
    assert left.message.startswith("camera left: "), left.message
    assert "colour: silent" in left.message, left.message
    values = status_values(left)
    assert values["stream.colour.state"] == "silent"
    assert values["in.colour.received"] == "10"
    for cam in ("front", "right"):
        assert found[cam].message.startswith(f"camera {cam}: "), found[cam].message
        assert "silent" not in found[cam].message
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["cameras"]["left"]["good_frames"] == 10, err


def test_cameras_on_the_base_odometry_are_posed_base_times_extrinsic(
        start_node: Any, monitor: Any) -> None:
    """front and left configured with the rig's one base odometry topic and their extrinsics
    (no pose topic of their own); the rig publisher sends the synthetic base's odometry
    (``--rig-odometry``). Each camera's latest frame (its /diagnostics ``pose.*``) is at the
    base pose x that camera's extrinsic. One view: the base stands still, so the odometry the
    node interpolates at an image's stamp is exactly that view's base pose (the publishers'
    stamps are not shared)."""
    from spatial_mllm_ros.core.poses import quaternion_to_matrix, rigid_transform
    from spatial_mllm_ros.synthetic.rig import make_rig_walkthrough, rig_extrinsic

    cams = ("front", "left")
    params: dict[str, Any] = {**ANSWER_NODE_PARAMS, "cameras": "[front, left]"}
    for cam in cams:
        topics = rig_topics(cam)
        e = rig_extrinsic(cam)
        params |= {f"camera.{cam}.{kind}": topics[kind]
                   for kind in ("colour", "depth", "camera_info")}
        params |= {f"camera.{cam}.odometry": "/rig/odom",
                   f"camera.{cam}.extrinsic": str([*e.translation, *e.rotation_xyzw])}
    node = start_node(params)
    wait_node_state(monitor, node, "active", timeout=120)
    summary = run_publisher("--rig", ",".join(cams), "--source", "synthetic", "--views", "1",
                            "--width", "160", "--height", "120", "--pose-topic", "",
                            "--rig-odometry", "/rig/odom", "--reliability", "reliable",
                            "--qos-depth", "100", "--count", "20")
    assert summary["base"]["published"] == {"odometry": 20}, summary["base"]
    node_status(monitor, node, lambda v: all(
        counter(v, f"camera.{cam}.frames.complete") == 20 for cam in cams), timeout=60)
    got = camera_status_until(lambda found: all("pose.position" in status_values(found[c])
                                                for c in cams), cameras=cams)
    base = make_rig_walkthrough(0, n_steps=1, width=160, height=120, cameras=cams).base[0]
    poses = {}
    for cam in cams:
        v = status_values(got[cam])
        e = rig_extrinsic(cam)
        expected = base @ rigid_transform(e.translation, e.rotation_xyzw)
        position = np.array([float(x) for x in v["pose.position"].split()])
        rotation = quaternion_to_matrix(np.array(
            [float(x) for x in v["pose.orientation_xyzw"].split()]))
        np.testing.assert_allclose(position, expected[:3, 3], atol=1e-5)
        np.testing.assert_allclose(rotation, expected[:3, :3], atol=1e-5)
        assert v["pose.world_frame"] == "map"
        poses[cam] = position
    assert np.linalg.norm(poses["front"] - poses["left"]) > 0.05  # each its own mount


def test_a_new_time_base_on_one_camera_leaves_the_others_frames(
        start_node: Any, monitor: Any, answer_client: Any) -> None:
    """left's clock jumps back (the publisher's ``stamp_backwards`` fault goes 0.5 s back, past
    this node's ``clock.jump_back_s`` of 0.2 s: a new time base on left alone) after front and
    right have stopped (10 frames each, left's jump after its 20th): left starts over, front's
    and right's frames stay in the buffer and answer (clearing the whole buffer would leave
    left's frame alone)."""
    node = start_node(rig_params() | {"clock.jump_back_s": 0.2})
    wait_node_state(monitor, node, "active", timeout=120)
    summary = run_publisher(*PUB_ARGS, "--count", "20", "--camera-count", "front=10",
                            "--camera-count", "right=10", "--inject", "stamp_backwards",
                            "--inject-count", "1", "--inject-camera", "left")
    assert summary["cameras"]["left"]["injected"] == {"stamp_backwards": 1}
    node_status(monitor, node, drained(summary), timeout=60)
    resets = {cam: counter(v, "clock.time_resets") for cam, v in camera_statuses().items()}
    assert resets == {"front": 0, "left": 1, "right": 0}
    spread = answer_client.ask("How many chairs are in this room?",
                               sampling_strategy="uniform", frame_budget=8)
    assert spread.status == AnswerStatus.OK, spread.error
    assert {"front", "right"} <= set(spread.frame_cameras), spread.frame_cameras
