"""README 'Fit the device' as a user runs it: the planner's line for a device profile, and
``spatial-mllm-infer`` with a quantized language model; the commands refuse, before loading,
a configuration that cannot fit its memory budget or a quantization the device cannot run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from testkit.cli import assert_clean, assert_refused, run_command
from testkit.readme import readme_command_lines, words

from spatial_mllm_ros.exitcodes import ExitCode

README_PLAN = ("spatial-mllm-checkpoint plan --layout v1.1 --config jetson_orin_nx_16gb "
               "--memory-gb 10 --frame-budget 16")
README_INFER = ("spatial-mllm-infer --checkpoint DIR --frames ../shared/data/real_rgbd_shelf "
                "--question 'How many boxes are there?' -p model.quantization:=int8_weight")
#: small settings that keep a tiny-model answer fast
FAST = ("--max-pixels", "15680", "--max-new-tokens", "4", "--no-grounding")


def _checkpoint() -> str:
    checkpoint = os.environ.get("SPATIAL_MLLM_TINY_CHECKPOINT", "")
    if not checkpoint:
        pytest.skip("SPATIAL_MLLM_TINY_CHECKPOINT is not set (make test sets it)")
    return checkpoint


def _readme(line: str) -> list[str]:
    argv = words(line)
    assert argv in readme_command_lines(), f"the README no longer shows {line!r}"
    return [_checkpoint() if w == "DIR" else w for w in argv]


def test_readme_plan_line() -> None:
    res = run_command(_readme(README_PLAN))
    assert_clean(res)
    plan = res.json()
    assert plan["fits"] is True and plan["quantization"] == "int4_weight"
    assert plan["dtype"] == "bfloat16" and plan["frame_budget"] == 16
    assert plan["weights_by_part_gb"]["vggt_heads"] == 0.0  # the profile's geometry_heads
    assert plan["peak_gb"] <= 10.0


def test_readme_infer_quantized_line(shelf: Path) -> None:
    res = run_command(_readme(README_INFER))
    assert_clean(res)
    answer = res.json()
    assert answer["status"] == "OK", res.describe()


def test_infer_refuses_a_configuration_that_cannot_fit_before_loading(shelf: Path) -> None:
    res = run_command(["spatial-mllm-infer", "--checkpoint", _checkpoint(), "--frames",
                       str(shelf), "--question", "How many boxes are there?", *FAST,
                       "-p", "model.memory_budget_gb:=0.5"])
    assert_refused(res, ExitCode.USAGE, "does not fit in 0.5 GB (model.memory_budget_gb)",
                   "use a device with more memory")
    assert "loading the model" not in res.stderr


def test_infer_refuses_int4_on_cuda_without_bfloat16(shelf: Path) -> None:
    res = run_command(["spatial-mllm-infer", "--checkpoint", _checkpoint(), "--frames",
                       str(shelf), "--question", "How many boxes are there?", *FAST,
                       "--device", "cuda", "-p", "model.quantization:=int4_weight"])
    assert_refused(res, ExitCode.USAGE, "int4_weight on cuda needs model.dtype bfloat16")
