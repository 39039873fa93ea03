"""The node fits its device (issue 21): with a weight-only quantized language model it answers
end to end over DDS, and it refuses at configure a configuration that cannot fit its
``model.memory_budget_gb``, naming what to lower, instead of failing at the first question.

Separate processes: the node (the embedded tiny checkpoint), the stream publisher; the test
process is a plain rclpy client.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from testkit.processes import ANSWER_NODE_PARAMS, stamps_ns, wait_node_state

from spatial_mllm_ros.answering.types import AnswerStatus

PUB_ARGS = ("--reliability", "reliable", "--qos-depth", "100", "--rate", "30")


# int4_weight runs on the CPU through torchao's Int4OpaqueTensor (README "Fit the device")
@pytest.mark.parametrize("quantization", ["int8_weight", "int4_weight"])
def test_the_node_answers_with_a_quantized_language_model(
        quantization: str, fed_node: Any, answer_client: Any) -> None:
    fed = fed_node({**ANSWER_NODE_PARAMS, "model.quantization": quantization}, PUB_ARGS,
                   count=20)
    proc, summary = fed.node, fed.summary
    ans = answer_client.ask("How many chairs are in this room?")
    assert ans.status == AnswerStatus.OK, ans.error
    got = stamps_ns(ans)
    assert 0 < len(got) <= ANSWER_NODE_PARAMS["sampling.frame_budget"]
    assert set(got) <= set(summary["good_stamps_ns"])
    assert f"quantization {quantization}" in proc.output()  # the load line says what loaded


def test_a_configuration_that_cannot_fit_is_refused_at_configure(
        start_node: Any, monitor: Any) -> None:
    """1.5 GB for the tiny model: the runtime overhead (1 GB) leaves room for 206 frames at the
    default input size, not for the 256 a question may ask (sampling.max_frame_budget)."""
    proc = start_node({**ANSWER_NODE_PARAMS, "model.memory_budget_gb": 1.5,
                       "model.geometry_heads": False, "model.max_pixels": 0,
                       "sampling.max_frame_budget": 256})
    line = _wait_for_line(proc, "configure failed", timeout_s=120)
    assert "does not fit in 1.5 GB (model.memory_budget_gb)" in line
    assert "lower sampling.max_frame_budget to 206 or less" in line
    # up, unconfigured, and saying so on /diagnostics: a robot keeps its node
    wait_node_state(monitor, proc, "unconfigured", timeout=30)
    assert proc.alive()
    assert "loading the model" not in proc.output()  # refused before anything loads


def _wait_for_line(proc: Any, needle: str, timeout_s: float) -> str:
    """The first line of the node's log that holds ``needle``, waiting for it (polling the
    log while the process runs); AssertionError with the log after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = [ln for ln in proc.output().splitlines() if needle in ln]
        if lines:
            return lines[0]
        assert proc.alive() and time.monotonic() < deadline, proc.output()
        time.sleep(0.2)
