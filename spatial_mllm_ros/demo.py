"""``python -m spatial_mllm_ros.demo`` (``make demo``): the main job on the embedded default.

1. renders a synthetic room walkthrough (colour, depth, intrinsics, poses, ground truth);
2. starts the ``spatial_mllm`` node as a real process (profile ``config/cpu_tiny.yaml``: the
   tiny generated checkpoint on the CPU) on the user's ROS_DOMAIN_ID when set, else on one of
   its own (:func:`choose_domain_id`; the first line of output says which);
3. plays the walkthrough over real topics at 30 Hz from a second process (then a few
   malformed messages of each kind, which the node rejects and counts);
4. asks VSI-style questions through the ``~/ask`` service and prints each answer, its boxes,
   the frames used, and the coverage of the selected frames against uniform sampling of the
   same number of frames from the same buffer, next to the scene's ground truth.

The tiny model's words are meaningless (random weights); the sampling figures are real.

``--realistic-timing`` (off by default) plays the stream as a real rig delivers it
(:data:`REALISTIC_TIMING`): poses at 100 Hz on their own clock, 200..300 ms late; camera
info at 1 Hz from 0.5 s; depth 50 ms after its image.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spatial_mllm_ros.core.counters import admissions
from spatial_mllm_ros.exitcodes import ExitCode

REPO = Path(__file__).resolve().parents[1]

#: rgbd_stream_publisher flags of ``--realistic-timing`` (the walkthrough lasts about 1.3 s, so
#: camera info starts at 0.5 s rather than seconds late)
REALISTIC_TIMING = ("--pose-rate", "100", "--pose-delay-ms", "200", "--pose-jitter-ms", "100",
                    "--info-rate", "1", "--info-start-s", "0.5", "--depth-lag-ms", "50")


#: The Fast DDS profile for large images within one host (README, "Camera transport").
DDS_PROFILE = REPO / "config" / "fastdds_large_data.xml"


@dataclass(frozen=True)
class DomainChoice:
    """The ROS_DOMAIN_ID the demo runs on, and whether it is the user's own."""

    domain_id: int
    yours: bool

    def describe(self) -> str:
        """E.g. ``ROS_DOMAIN_ID=42 (yours)``."""
        why = ("yours" if self.yours else
               "picked from the process id; set ROS_DOMAIN_ID to choose it")
        return f"ROS_DOMAIN_ID={self.domain_id} ({why})"


#: The ROS_DOMAIN_IDs Fast DDS can map to ports (above 232 the ports overflow).
MAX_DOMAIN_ID = 232


def choose_domain_id(environ: Mapping[str, str], pid: int) -> DomainChoice:
    """The user's ``ROS_DOMAIN_ID`` when set (non-empty), else a private one, ``102 + pid %
    100`` (102..201: away from the default 0 and the tests' 1..101).  ValueError (with the
    message for the user) when the user's is not an integer in 0..232."""
    value = environ.get("ROS_DOMAIN_ID", "").strip()
    if not value:
        return DomainChoice(102 + pid % 100, yours=False)
    if not value.isdigit() or int(value) > MAX_DOMAIN_ID:
        raise ValueError(f"ROS_DOMAIN_ID={value!r} is not an integer in 0..{MAX_DOMAIN_ID}; "
                         "set one, or unset it and the demo picks its own")
    return DomainChoice(int(value), yours=True)


def ros_env(domain_id: int | None = None) -> dict[str, str]:
    """Environment for the demo's processes: ROS_DOMAIN_ID ``domain_id`` (default: the
    user's, else a private one, :func:`choose_domain_id`), localhost discovery, the shipped
    Fast DDS profile (when ``FASTDDS_DEFAULT_PROFILES_FILE`` is not set already)."""
    env = dict(os.environ)
    if domain_id is None:
        domain_id = choose_domain_id(os.environ, os.getpid()).domain_id
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    # the shipped large-image transport, unless the user brings their own DDS profile
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(DDS_PROFILE))
    keys = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE")
    os.environ.update({k: env[k] for k in keys})
    return env


def run_stream(env: dict[str, str], *args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "spatial_mllm_ros.ros.stream_publisher", *args]
    res = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"stream publisher failed:\n{res.stderr}")
    summary: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return summary


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def print_ingest(values: dict[str, str], summary: dict[str, Any]) -> None:
    """Human-readable ingest report from a diagnostics values dict."""
    def n(k: str) -> int:
        return int(values.get(k, "0"))

    print("\n=== ingested (from /diagnostics) ===")
    print(f"published by the stream process: {summary['published']}")
    for t in ("colour", "colour_compressed", "depth", "camera_info", "pose"):
        rec = n(f"in.{t}.received")
        if not rec:
            continue
        rej = {k.rsplit(".", 1)[1]: v for k, v in values.items()
               if k.startswith(f"in.{t}.rejected.")}
        print(f"  {t:18s} received {rec:4d}  accepted {n(f'in.{t}.accepted'):4d}  "
              f"rejected {rej or 0}")
    print(f"frames: {n('frames.emitted')} emitted, {n('frames.complete')} with depth+pose+"
          f"intrinsics ({n('frames.with_depth')} with depth, {n('frames.with_pose')} with "
          f"pose), {n('frames.colour_only')} colour-only, "
          f"{n('pair.colour.dropped')} dropped by pairing")
    print(f"buffer: {n('buffer.frames')} frames, {n('buffer.bytes') / 2**20:.1f} MiB, "
          f"{n('buffer.evicted')} evicted; node callback errors: {n('callback_errors')}")


def print_answer(q: Any, ans: Any) -> None:
    """One question, its ground truth and the node's answer."""
    from spatial_mllm_ros.ros.ask_cli import answer_to_dict

    d = answer_to_dict(ans)
    print(f"\nQ [{q.question_type}] {q.question}")
    if q.options:
        print("   options: " + " | ".join(q.options))
    print(f"   ground truth: {q.ground_truth}")
    shown = repr(d["answer"]) if d["answer"] else "'' (the tiny model generated only whitespace)"
    print(f"   answer: [{d['status']}] {shown}  value={d['numeric_value']} "
          f"option={d['option']!r}" + (f"  error: {d['error']}" if d["error"] else ""))
    if d["status"] != "OK":
        return
    stamps = d["frame_stamps_ns"]
    t0 = stamps[0] if stamps else 0
    print(f"   frames used: {len(stamps)} at t = "
          + ", ".join(f"{(s - t0) / 1e9:.2f}" for s in stamps) + " s (from the first)")
    cov, uni = d["coverage"], d["uniform_coverage"]
    if cov is not None and uni is not None:
        print(f"   coverage of the buffer's voxels: {d['strategy']} {cov:.3f} vs "
              f"uniform {uni:.3f} ({(cov - uni) * 100:+.1f} points)")
    for b in d["boxes"]:
        pos = "no depth" if b["position"] is None else (
            "(" + ", ".join(f"{x:.2f}" for x in b["position"]) + f") m in "
            f"{b['position_frame_id']}")
        print(f"   box {b['label']!r} px {[round(x) for x in b['xyxy']]} -> {pos}")
    if not d["boxes"]:
        print("   boxes: none (the tiny model emits no grounding JSON)")
    t = d["timings_s"]
    print("   timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in t.items() if v))


def pick_questions(questions: list[Any]) -> list[Any]:
    """One question of each of a few types, in a fixed order."""
    wanted = ("object_counting", "object_abs_distance", "object_rel_direction_hard",
              "object_rel_direction_medium", "room_size_estimation", "object_size_estimation",
              "obj_appearance_order")
    out = []
    for qtype in wanted:
        q = next((q for q in questions if q.question_type == qtype), None)
        if q is not None:
            out.append(q)
    return out[:5]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=7, help="synthetic room seed")
    p.add_argument("--views", type=int, default=40, help="frames of the walkthrough")
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--profile", default=str(REPO / "config" / "cpu_tiny.yaml"))
    p.add_argument("--realistic-timing", action=argparse.BooleanOptionalAction, default=False,
                   help="stream with realistic sensor timing: " + " ".join(REALISTIC_TIMING))
    a = p.parse_args(argv)
    timing = (*REALISTIC_TIMING, "--seed", str(a.seed)) if a.realistic_timing else ()
    try:
        domain = choose_domain_id(os.environ, os.getpid())
    except ValueError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return int(ExitCode.USAGE)
    print(f"demo: {domain.describe()}", flush=True)

    from spatial_mllm_ros.evaluation.scene_questions import generate_scene_questions
    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor
    from spatial_mllm_ros.synthetic import make_walkthrough, write_scene_dir

    print(f"demo: rendering a synthetic room walkthrough ({a.views} views, 640x480, "
          f"seed {a.seed})")
    scene = make_walkthrough(a.seed, n_frames=a.views, fps=a.rate)
    layout = scene.layout
    print(f"demo: room {layout.room.to_dict()}; objects: "
          + ", ".join(sorted(o.label for o in layout.objects)))
    questions = pick_questions(generate_scene_questions(layout, scene.first_seen_ns()))

    env = ros_env(domain.domain_id)
    print(f"demo: starting the spatial_mllm node on {domain.describe()} "
          f"(profile {Path(a.profile).name})")
    code = 0
    with tempfile.TemporaryDirectory(prefix="spatial_mllm_demo_") as tmp:
        write_scene_dir(scene, Path(tmp) / "scene")
        node = start_node_with_profile(env, a.profile, {
            "qos.reliability": "reliable", "qos.depth": 100, "diagnostics.period_s": 0.5,
            # a loaded 2-core machine can deliver depth/pose late: wait longer for partners
            "pairing.wait_s": 0.5})
        with IngestMonitor("demo_monitor") as mon:
            try:
                mon.wait_for(lambda v: v.get("state") == "active", timeout_s=180)
                print(f"demo: streaming the walkthrough at {a.rate:g} Hz over real topics"
                      + (" with realistic sensor timing" if timing else "")
                      + ", then malformed messages of each kind")
                summary = run_stream(
                    env, "--source", "folder", "--folder", str(Path(tmp) / "scene"),
                    "--count", str(a.views), "--rate", str(a.rate),
                    "--reliability", "reliable", "--qos-depth", "100",
                    "--inject", "wrong_step,unknown_encoding,empty_image,oversized_image,"
                    "nan_depth,negative_depth,missing_intrinsics,stamp_backwards,bad_pose",
                    "--inject-count", "1", *timing)
                published = summary["published"]["colour"]
                values = mon.wait_for(
                    lambda v: int(v.get("in.colour.received", "0")) >= published
                    and v.get("pair.colour.pending") == "0", timeout_s=60)
                print_ingest(values, summary)
                admitted = admissions(values)
                print(f"space-aware buffer decisions: {admitted}")
                ask_questions(questions)
                print("\nNote: the answers come from the embedded tiny checkpoint (random "
                      "weights): its words are meaningless. The frame selection, coverage "
                      "figures, stamps and timings are real.")
                print(f"(node alive: {node.poll() is None})")
            except Exception as err:
                print(f"demo failed: {type(err).__name__}: {err}", file=sys.stderr)
                code = 1
            finally:
                rc = stop(node)
                print(f"demo: node stopped (exit code {rc})")
    return code


def start_node_with_profile(env: dict[str, str], profile: str,
                            overrides: dict[str, Any]) -> subprocess.Popen[bytes]:
    """The node with a ROS params file, then individual overrides."""
    args = [sys.executable, "-m", "spatial_mllm_ros.ros.node_main", "--ros-args",
            "--params-file", profile]
    for k, v in overrides.items():
        args += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
    return subprocess.Popen(args, env=env, cwd=REPO)


def ask_questions(questions: list[Any]) -> None:
    """Ask each question through the ~/ask service (an rclpy client in this process)."""
    from spatial_mllm_ros.ros.client import AskClient

    with AskClient("demo_asker") as client:
        print(f"\n=== {len(questions)} questions through the ~/ask service ===")
        for q in questions:
            answer = client.ask(q.question, wait_s=300, question_type=q.question_type,
                                options=list(q.options or ()))
            print_answer(q, answer)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: the node (same process group) stopped itself cleanly
        print("demo: interrupted", file=sys.stderr)
        sys.exit(ExitCode.INTERRUPTED)
