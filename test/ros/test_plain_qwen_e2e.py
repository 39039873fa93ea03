"""The node on a plain Qwen2.5-VL checkpoint (layout ``qwen2.5-vl``), over DDS (issue 21 point 4).

The node process loads ``model.checkpoint`` = a tiny plain-Qwen checkpoint (no spatial encoder),
the stream publisher feeds it frames, the test asks through the service.  With sensor depth the
coverage selection runs as usual and the model's ``spatial`` stage is zero; with a colour-only
stream and no ``model.vggt_checkpoint`` the ``coverage`` strategy falls back to the buffer's rule
and the answer says so in its notes; with one, the frames are chosen on VGGT's predicted geometry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from testkit.processes import ANSWER_NODE_PARAMS, stamps_ns
from testkit.tiny import tiny_checkpoint

from spatial_mllm_ros.answering.types import AnswerStatus
from spatial_mllm_ros.model.tiny import write_checkpoint
from spatial_mllm_ros.sampling.predicted import FALLBACK_STRATEGY, PREDICTED_STRATEGY

PUB_ARGS = ("--reliability", "reliable", "--qos-depth", "100", "--rate", "30")
#: colour only: no depth, no pose (pairing.wait_s 0.1 may drop a few of the 12 frames)
COLOUR_ONLY = (*PUB_ARGS, "--depth-topic", "", "--pose-topic", "")


@pytest.fixture(scope="module")
def plain_checkpoint() -> Path:
    return tiny_checkpoint("qwen2.5-vl")


def test_node_answers_ok_from_a_plain_qwen_checkpoint(
    fed_node: Any, answer_client: Any, plain_checkpoint: Path,
) -> None:
    fed = fed_node({**ANSWER_NODE_PARAMS, "model.checkpoint": str(plain_checkpoint)}, PUB_ARGS,
                   count=20)
    proc, summary = fed.node, fed.summary
    ans = answer_client.ask("How many chairs are in this room?")
    assert ans.status == AnswerStatus.OK, ans.error
    got = stamps_ns(ans)
    assert 0 < len(got) <= ANSWER_NODE_PARAMS["sampling.frame_budget"]
    assert set(got) <= set(summary["good_stamps_ns"])
    assert ans.sampling_strategy == "coverage" and 0.0 < ans.coverage <= 1.0
    assert ans.timings.vision_2d > 0 and ans.timings.decode > 0
    assert ans.timings.spatial == 0.0 and ans.timings.connector == 0.0
    assert proc.alive()


def test_colour_only_stream_without_vggt_falls_back_with_a_note(
    fed_node: Any, answer_client: Any, plain_checkpoint: Path,
) -> None:
    fed_node({**ANSWER_NODE_PARAMS, "model.checkpoint": str(plain_checkpoint),
              "pairing.wait_s": 0.1}, COLOUR_ONLY, count=12, min_emitted=6)
    ans = answer_client.ask("How many chairs are in this room?", sampling_strategy="coverage")
    assert ans.status == AnswerStatus.OK, ans.error
    assert ans.sampling_strategy == FALLBACK_STRATEGY
    assert any("geometry prediction failed" in note for note in ans.notes), list(ans.notes)


def test_colour_only_stream_with_a_vggt_checkpoint_selects_on_predicted_geometry(
    fed_node: Any, answer_client: Any, plain_checkpoint: Path, tmp_path: Path,
) -> None:
    vggt = write_checkpoint(tmp_path / "vggt", "vggt")
    fed_node({**ANSWER_NODE_PARAMS, "model.checkpoint": str(plain_checkpoint),
              "model.vggt_checkpoint": str(vggt), "pairing.wait_s": 0.1}, COLOUR_ONLY,
             count=12, min_emitted=6)
    ans = answer_client.ask("How many chairs are in this room?", sampling_strategy="coverage")
    assert ans.status == AnswerStatus.OK, ans.error
    assert ans.sampling_strategy == PREDICTED_STRATEGY, list(ans.notes)
    assert ans.timings.spatial == 0.0  # the VGGT predicted geometry; the answer stayed 2D
