"""End to end over DDS: the node answers questions about a live RGB-D stream.

Separate processes: the node (tiny model, embedded default checkpoint), the stream publisher
(30 Hz 640x480 colour + depth + camera info + pose), the ``spatial-mllm-ask`` CLI; the test
process is a plain rclpy client of the service and the topic pair.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from testkit.processes import ANSWER_NODE_PARAMS, REPO, feed, stamps_ns, wait_node_state

from spatial_mllm_ros.answering.types import AnswerStatus

PUB_ARGS = ("--reliability", "reliable", "--qos-depth", "100", "--rate", "30")


@pytest.fixture
def streamed_node(fed_node) -> tuple[Any, set[int]]:
    """A node that has ingested 45 frames of a 30 Hz 640x480 stream; the published stamps."""
    fed = fed_node(ANSWER_NODE_PARAMS, PUB_ARGS, count=45)
    assert fed.summary["good_frames"] == 45
    return fed.node, set(fed.summary["good_stamps_ns"])


def test_service_topic_and_cli_answer_ok_from_published_frames(
    streamed_node: tuple[Any, set[int]], answer_client: Any,
) -> None:
    proc, published = streamed_node

    # 1. the service (what `ros2 service call /spatial_mllm/ask ...` uses)
    ans = answer_client.ask("How many chairs are in this room?")
    assert ans.status == AnswerStatus.OK, ans.error
    assert ans.question_type == "object_counting"
    got = stamps_ns(ans)
    assert 0 < len(got) <= ANSWER_NODE_PARAMS["sampling.frame_budget"]
    assert set(got) <= published
    assert got == sorted(got)
    assert 0.0 < ans.coverage <= 1.0 and not math.isnan(ans.uniform_coverage)
    assert ans.coverage >= ans.uniform_coverage
    assert ans.timings.total > 0 and ans.timings.spatial > 0 and ans.timings.decode > 0

    # 2. the topic pair (what a navigation stack uses), with a caller-chosen id
    answer_client.wait_question_subscriber()
    answer_client.publish_question(4242, "How far is the sofa from the stove?",
                                   sampling_strategy="uniform")
    (topic_ans,) = answer_client.wait_answers([4242], wait_s=120, settle_s=1.0)[4242]
    assert topic_ans.status == AnswerStatus.OK, topic_ans.error
    assert topic_ans.question_type == "object_abs_distance"
    assert topic_ans.sampling_strategy == "uniform"
    assert set(stamps_ns(topic_ans)) <= published

    # 3. the command-line client, as a separate process
    res = subprocess.run(
        [sys.executable, "-m", "spatial_mllm_ros.ros.ask_cli", "--json",
         "If I stand by the door facing the TV, is the table to my left?"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    cli = json.loads(res.stdout)
    assert cli["status"] == "OK"
    assert cli["question_type"] == "object_rel_direction"
    assert set(cli["frame_stamps_ns"]) <= published
    assert cli["coverage"] is not None
    assert proc.alive()


def test_burst_of_50_with_queue_4_answers_every_id_once(fed_node, monitor,
                                                         answer_client) -> None:
    fed_node({**ANSWER_NODE_PARAMS, "queue.size": 4}, PUB_ARGS, count=20)
    answer_client.wait_question_subscriber()
    ids = list(range(1000, 1050))
    for i in ids:
        answer_client.publish_question(i, "How many chairs are in this room?")
    answers = answer_client.wait_answers(ids, wait_s=300, settle_s=1.0)
    assert all(len(a) == 1 for a in answers.values()), "an id was answered more than once"
    statuses = [a[0].status for a in answers.values()]
    ok = statuses.count(AnswerStatus.OK)
    busy = statuses.count(AnswerStatus.BUSY)
    assert ok + busy == 50  # nothing but OK or BUSY, nothing lost
    # the 4 queued are always accepted; a few more when answers finish during the burst
    assert 4 <= ok <= 15
    assert all(a[0].error for a in answers.values() if a[0].status == AnswerStatus.BUSY)


def test_deadline_empty_buffer_and_invalid_questions(start_node, monitor,
                                                     answer_client) -> None:
    proc = start_node(ANSWER_NODE_PARAMS)
    wait_node_state(monitor, proc, "active", timeout=120)

    empty = answer_client.ask("How many chairs are in this room?")
    assert empty.status == AnswerStatus.NO_FRAMES, empty.error

    invalid = answer_client.ask("   ")
    assert invalid.status == AnswerStatus.INVALID_QUESTION
    too_long = answer_client.ask("x" * 5000)
    assert too_long.status == AnswerStatus.INVALID_QUESTION
    bad_strategy = answer_client.ask("How many chairs?", sampling_strategy="random")
    assert bad_strategy.status == AnswerStatus.INVALID_QUESTION
    assert "coverage" in bad_strategy.error  # the error names the known strategies

    feed(monitor, proc, PUB_ARGS, count=10)
    late = answer_client.ask("How many chairs are in this room?", timeout_s=0.001)
    assert late.status == AnswerStatus.TIMEOUT, late.error
    ok = answer_client.ask("How many chairs are in this room?")
    assert ok.status == AnswerStatus.OK, ok.error
    assert proc.alive()


def test_bad_checkpoint_gives_model_error_and_node_keeps_working(
    fed_node, monitor, answer_client, tmp_path,
) -> None:
    missing = tmp_path / "no_such_checkpoint"
    fed = fed_node({**ANSWER_NODE_PARAMS, "model.checkpoint": str(missing)}, PUB_ARGS,
                   count=10)
    proc = fed.node
    assert int(fed.status["frames.emitted"]) == 10  # ingestion is unaffected
    for _ in range(2):  # the node keeps answering, every time with the cause
        ans = answer_client.ask("How many chairs are in this room?")
        assert ans.status == AnswerStatus.MODEL_ERROR
        assert str(missing) in ans.error
    assert proc.alive()
