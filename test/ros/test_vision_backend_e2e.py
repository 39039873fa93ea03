"""The node with ``model.vision_backend: onnxruntime`` answers over the service as torch does.

The shelf recording (15 real RGB-D frames) goes to a bag; the offline evaluator answers one
question on it with the torch encoders; the node, started from the same profile but with
onnxruntime encoders (prepared at load for the clip's input size, and waited for, so the
answer really uses them), receives the bag over DDS from ``spatial-mllm-replay`` and answers
the same question through ``/spatial_mllm/ask``: same frames, same answer text. The tiny
checkpoint's repetition penalty is raised to 5.0, so that its text depends on the frames.
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

QUESTION = "How many boxes are in the shelf bin?"
BUDGET = 4
PROFILE_OVERRIDES: dict[str, Any] = {
    "buffer.voxel_size_m": 0.05,  # a table-top scene: several frames admitted
    "sampling.frame_budget": BUDGET,
    "answer.grounding": False,
    "answer.max_new_tokens": 8,
    "answer.repetition_penalty": 5.0,
    "model.max_pixels": 112 * 140,  # 640x480 -> 84x140 model input
    "pairing.wait_s": 1.0,
}
#: What only the node gets: its encoders, and transport/diagnostics for the test's waits.
NODE_ONLY: dict[str, Any] = {
    "model.vision_backend": "onnxruntime",
    "model.vision_sizes": "84x140",
    "model.vision_build_wait_s": 600.0,
    "qos.reliability": "reliable",
    "qos.depth": 100,
    "diagnostics.period_s": 0.2,
}


def test_node_with_onnxruntime_answers_as_the_torch_evaluator(
    tmp_path: Path, start_node: Any, monitor: Any, answer_client: Any,
) -> None:
    if not (SHELF / "camera_intrinsics.txt").is_file():
        pytest.skip(f"real RGB-D data not found at {SHELF} (CI clones shared/ beside the repo)")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from spatial_mllm_ros.evaluation.cli import bag_from_rgbd_main, eval_main
    from spatial_mllm_ros.evaluation.results import RESULTS_FILE, load_results
    from spatial_mllm_ros.model.spec import default_checkpoint_dir
    from spatial_mllm_ros.model.tiny import ensure_checkpoint

    bag = tmp_path / "shelf_bag"
    assert bag_from_rgbd_main([str(SHELF), str(bag)]) == 0
    checkpoint = ensure_checkpoint(default_checkpoint_dir())
    profile = {**load_profile("cpu_tiny"), **PROFILE_OVERRIDES,
               "model.checkpoint": str(checkpoint),
               "model.vision_cache_dir": str(tmp_path / "engines")}
    profile_file = tmp_path / "profile.yaml"
    profile_file.write_text(yaml.safe_dump({NODE_NAME: {"ros__parameters": profile}}),
                            encoding="utf-8")
    base = defaults()
    node = start_node({**{k: v for k, v in profile.items() if v != base[k]}, **NODE_ONLY})

    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"id": "q", "question": QUESTION,
                                     "question_type": "object_counting", "ground_truth": 1})
                         + "\n", encoding="utf-8")
    assert eval_main([str(bag), "--questions", str(questions), "--out", str(tmp_path / "eval"),
                      "--config", str(profile_file), "--strategies", "coverage",
                      "--vision-backend", "torch", "--no-progress", "--no-thumbnails"]) == 0
    (result,) = load_results(tmp_path / "eval" / RESULTS_FILE)
    want = result["record"]
    assert want["status"] == "OK" and len(want["answer"]) > 1

    wait_node_state(monitor, node, "active", timeout=180)
    replay = subprocess.run(
        [sys.executable, "-m", "spatial_mllm_ros.ros.replay", str(bag), "--rate", "0.5",
         "--wait-subscribers", "10"],
        cwd=REPO, capture_output=True, text=True, timeout=90,
    )
    assert replay.returncode == 0, replay.stderr
    node_status(monitor, node, lambda v: counter(v, "frames.emitted") == 15
                and counter(v, "pair.colour.pending") == 0)
    ans = answer_client.ask(QUESTION, question_type="object_counting", frame_budget=BUDGET,
                            sampling_strategy="coverage")
    assert ans.status == AnswerStatus.OK, ans.error
    assert stamps_ns(ans) == want["frame_stamps_ns"]
    assert ans.answer == want["answer"]
    # the node's model process prepared (and, waiting for them, used) onnxruntime graphs
    assert list((tmp_path / "engines").glob("onnx/*/84x140/export.json"))
    assert node.alive()
