"""Parameters flow once, typed: what the node builds from a profile is what the evaluator builds,
and a writable parameter changed at run time takes effect on the next question.

The node runs as a real process; parameters are changed through its ``set_parameters``
service (what ``ros2 param set /spatial_mllm ...`` calls).
"""

from __future__ import annotations

from typing import Any

import pytest
from testkit.answering import set_parameters
from testkit.processes import ANSWER_NODE_PARAMS, stamps_ns

from spatial_mllm_ros import params as P
from spatial_mllm_ros.answering.types import AnswerStatus
from spatial_mllm_ros.evaluation.cli import eval_parser, eval_settings
from spatial_mllm_ros.settings import Settings

PROFILES = ("cpu_tiny", "desktop_gpu", "jetson_orin", "jetson_orin_nx_16gb", "jetson_agx_orin_32gb",
            "jetson_agx_orin_64gb", "desktop_24gb", "desktop_80gb")


@pytest.mark.parametrize("profile", PROFILES)
def test_node_and_evaluator_build_the_same_settings(profile: str) -> None:
    """The node builds ``Settings.from_values`` of its declared parameters, which a params file
    sets to the profile's values (``P.load_profile``); the evaluator builds its settings from
    ``--config``. Both must give the same ingestion, buffer and answering configuration."""
    node_side = Settings.from_values(P.load_profile(profile))
    evaluator = eval_settings(eval_parser().parse_args(
        ["bag", "--questions", "q.jsonl", "--out", "o", "--config", profile]))
    assert evaluator.ingest == node_side.ingest
    assert evaluator.buffer == node_side.buffer
    assert evaluator.pipeline == node_side.pipeline
    assert evaluator.engine == node_side.engine
    # and a profile value reaches the configuration (not a default)
    assert node_side.pipeline.frame_budget == P.load_profile(profile)["sampling.frame_budget"]


def test_a_writable_parameter_changed_at_run_time_takes_effect(
    fed_node: Any, answer_client: Any
) -> None:
    fed = fed_node({**ANSWER_NODE_PARAMS, "sampling.frame_budget": 4},
                   ("--reliability", "reliable", "--qos-depth", "100", "--rate", "30"),
                   count=60)
    proc, published = fed.node, set(fed.summary["good_stamps_ns"])

    before = answer_client.ask("How many chairs are in this room?", sampling_strategy="uniform")
    assert before.status == AnswerStatus.OK, before.error
    assert len(stamps_ns(before)) == 4

    results = set_parameters(answer_client.node, {"sampling.frame_budget": 6})
    assert results[0].successful, results[0].reason
    after = answer_client.ask("How many chairs are in this room?", sampling_strategy="uniform")
    assert after.status == AnswerStatus.OK, after.error
    assert len(stamps_ns(after)) == 6
    assert set(stamps_ns(after)) <= published

    # out of the schema's range, or read-only: refused, and nothing changes
    refused = set_parameters(answer_client.node, {"sampling.frame_budget": 0})
    assert not refused[0].successful and "sampling.frame_budget" in refused[0].reason
    read_only = set_parameters(answer_client.node, {"buffer.max_frames": 10})
    assert not read_only[0].successful
    again = answer_client.ask("How many chairs are in this room?", sampling_strategy="uniform")
    assert len(stamps_ns(again)) == 6
    assert proc.alive()
