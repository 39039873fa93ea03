"""Offline and on-robot agree: the evaluator and the live node pick the same frames.

``spatial-mllm-bag-from-rgbd`` converts the real ``real_rgbd_shelf`` recording (15 posed RGB-D
frames) into a bag. The offline evaluator answers one question on it with each sampling
strategy; the node, started with the same profile, receives the bag over DDS from
``spatial-mllm-replay`` (a separate process, reliable QoS) and answers the same question with
the same type, budget and strategy through ``/spatial_mllm/ask``. Both must select the same
frames (the bag's header stamps) and report the same coverage.

The profile is written once to a YAML file (``--config`` of the evaluator) and the node gets
every value of it that differs from the schema default (the node's own starting point), so
both sides build their buffer, pairing and sampling from identical parameters. The voxel size
is finer than the room-scale default so that coverage and uniform sampling choose differently
among the shelf scene's 15 frames.  Both buffers hold all 15 (issue 16: a replayed shelf
left the node 3 frames at 0.1 m, 10 at 5 cm, as frames that showed no new space were
turned away while the buffer had room).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from testkit.paths import SHELF
from testkit.processes import REPO, counter, node_status, stamps_ns, wait_node_state

from spatial_mllm_ros.answering.types import AnswerStatus
from spatial_mllm_ros.params import NODE_NAME, defaults, load_profile

DATA = SHELF
N_FRAMES = 15
BUDGET = 4
STRATEGIES = ("coverage", "uniform")
QUESTION = {
    "id": "shelf-count",
    "question": "How many boxes are in the shelf bin?",
    "question_type": "object_counting",
    "ground_truth": 1,
}

#: Changes to the default profile (cpu_tiny), used by both sides.
PROFILE_OVERRIDES: dict[str, Any] = {
    # a table-top scene: at 5 cm the coverage and uniform picks of 4 of the 15 frames differ
    "buffer.voxel_size_m": 0.05,
    "sampling.frame_budget": BUDGET,
    # the evaluator runs without the grounding pass; so does the node here
    "answer.grounding": False,
    "model.max_pixels": 112 * 140,
    # The node times a colour image's wait for its partners on the wall clock from its
    # arrival, the evaluator on the bag's log times, where an image and its partners share
    # one log time (so offline the wait never expires). Live, a partner delivered later than
    # the wait (a scheduling stall on a loaded machine) would leave a frame without depth or
    # pose and change the buffer; 1 s absorbs such stalls without changing any offline result.
    "pairing.wait_s": 1.0,
}

#: Node-only settings that do not change which frames are selected: delivery of every
#: message (reliable, deep history) and fast diagnostics for the test's waits.
NODE_TRANSPORT: dict[str, Any] = {
    "qos.reliability": "reliable",
    "qos.depth": 100,
    "diagnostics.period_s": 0.2,
}


def bag_colour_stamps(bag: Path, profile: dict[str, Any]) -> list[int]:
    """Header stamps of the bag's colour images (what both sides must report)."""
    from spatial_mllm_ros.bags import BagSource, topics_from_params
    from spatial_mllm_ros.core.convert import stamp_to_ns

    topic = topics_from_params(profile).names["colour"]
    with BagSource(bag) as src:
        return [stamp_to_ns(m.msg.header) for m in src.messages({topic: "colour"})]


def write_profile(path: Path, values: dict[str, Any]) -> None:
    """A ROS params file the evaluator's ``--config`` (``params.load_yaml``) reads."""
    doc = {NODE_NAME: {"ros__parameters": dict(values)}}
    path.write_text(yaml.safe_dump(doc, sort_keys=True), encoding="utf-8")


@pytest.fixture
def shelf_bag(tmp_path: Path) -> Path:
    if not (DATA / "camera_intrinsics.txt").is_file():
        pytest.skip(f"real RGB-D data not found at {DATA} (CI clones shared/ beside the repo)")
    from spatial_mllm_ros.evaluation.cli import bag_from_rgbd_main

    bag = tmp_path / "shelf_bag"
    assert bag_from_rgbd_main([str(DATA), str(bag)]) == 0
    return bag


def test_evaluator_and_replayed_node_select_the_same_frames(
    shelf_bag: Path, tmp_path: Path, start_node: Any, monitor: Any, answer_client: Any,
) -> None:
    from spatial_mllm_ros.evaluation.cli import eval_main
    from spatial_mllm_ros.evaluation.results import RESULTS_FILE, load_results
    from spatial_mllm_ros.model.spec import default_checkpoint_dir
    from spatial_mllm_ros.model.tiny import ensure_checkpoint

    checkpoint = ensure_checkpoint(default_checkpoint_dir())
    profile = {**load_profile("cpu_tiny"), **PROFILE_OVERRIDES,
               "model.checkpoint": str(checkpoint)}
    profile_file = tmp_path / "crosscheck.yaml"
    write_profile(profile_file, profile)
    assert load_profile(str(profile_file)) == profile  # the evaluator reads exactly this

    # the node first: it loads its model while the evaluator runs
    base = defaults()
    node_params = {k: v for k, v in profile.items() if v != base[k]}
    node = start_node({**node_params, **NODE_TRANSPORT})

    # ---- offline
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps(QUESTION) + "\n", encoding="utf-8")
    out = tmp_path / "eval"
    code = eval_main([
        str(shelf_bag), "--questions", str(questions), "--out", str(out),
        "--config", str(profile_file), "--strategies", ",".join(STRATEGIES),
        "--frame-budget", str(BUDGET), "--max-new-tokens", str(profile["answer.max_new_tokens"]),
        "--no-progress", "--no-thumbnails",
    ])
    assert code == 0
    results = load_results(out / RESULTS_FILE)
    offline = {r["strategy"]: r["record"] for r in results}  # AnswerRecord.to_json()
    buffer_frames = {r["strategy"]: r["buffer_frames"] for r in results}
    assert set(offline) == set(STRATEGIES)
    for r in offline.values():
        assert r["status"] == "OK", r["error"]
        assert len(r["frame_stamps_ns"]) == BUDGET
    # the comparison means something: the strategies choose differently on this buffer
    assert offline["coverage"]["frame_stamps_ns"] != offline["uniform"]["frame_stamps_ns"]
    assert buffer_frames["coverage"] == N_FRAMES  # every frame is held: the buffer had room
    header_stamps = bag_colour_stamps(shelf_bag, profile)
    assert len(header_stamps) == N_FRAMES
    for r in offline.values():  # capture stamps from the images' headers, not receive times
        assert set(r["frame_stamps_ns"]) <= set(header_stamps)

    # ---- on the robot: the same bag over DDS
    wait_node_state(monitor, node, "active", timeout=120)
    replay = subprocess.run(
        [sys.executable, "-m", "spatial_mllm_ros.ros.replay", str(shelf_bag), "--rate", "0.5",
         "--wait-subscribers", "10"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert replay.returncode == 0, replay.stderr
    assert "warning" not in replay.stderr  # every topic matched, every message acknowledged
    try:
        ingested = node_status(
            monitor, node, lambda v: counter(v, "frames.emitted") == N_FRAMES
            and counter(v, "pair.colour.pending") == 0)
    except AssertionError as err:
        raise AssertionError(f"replay: {replay.stderr}\n{err}") from err
    assert counter(ingested, "frames.complete") == N_FRAMES  # every frame paired with depth + pose
    assert counter(ingested, "buffer.frames") == buffer_frames["coverage"]

    for strategy in STRATEGIES:
        ans = answer_client.ask(QUESTION["question"], question_type=QUESTION["question_type"],
                                frame_budget=BUDGET, sampling_strategy=strategy)
        assert ans.status == AnswerStatus.OK, ans.error
        assert ans.sampling_strategy == strategy
        ref = offline[strategy]
        assert stamps_ns(ans) == ref["frame_stamps_ns"], strategy
        assert ans.coverage == pytest.approx(ref["coverage"], rel=1e-6)
        assert ans.uniform_coverage == pytest.approx(ref["uniform_coverage"], rel=1e-6)
    assert node.alive()
