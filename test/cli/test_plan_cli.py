"""``spatial-mllm-checkpoint plan`` as a user runs it: a released layout without a download,
a checkpoint directory, and the refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from testkit.cli import assert_clean, assert_refused, run_command
from testkit.paths import LAYOUTS

from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.model.plan import weight_groups


def test_plan_of_the_released_layout_matches_its_tensors() -> None:
    res = run_command("spatial-mllm-checkpoint plan --layout v1.1 --memory-gb 16 "
                      "--dtype bfloat16 --frame-budget 16")
    assert_clean(res)
    out = res.json()
    assert out["fits"] is True and out["peak_gb"] <= 16
    assert {"weights_gb", "peak_gb", "frame_budget", "max_pixels", "fits"} <= out.keys()
    tsv = LAYOUTS / "spatial_mllm_v1_1_instruct.tsv"
    if tsv.is_file():  # the meta-device build has exactly the released tensors
        rows = [(n, tuple(int(x) for x in s.split("x")))
                for n, s in (ln.split("\t") for ln in tsv.read_text().splitlines())]
        g = weight_groups(rows)
        bf16 = (g.vision + g.lm_linear + g.lm_other + g.aggregator + g.connector) * 2 / 1e9
        assert out["weights_gb"] == pytest.approx(bf16, abs=2e-3)


def test_plan_that_does_not_fit_exits_not_ok_and_says_what_to_lower() -> None:
    res = run_command("spatial-mllm-checkpoint plan --layout v1.1 --memory-gb 8 "
                      "--dtype bfloat16")
    assert res.returncode == ExitCode.NOT_OK, res.describe()
    out = res.json()
    assert out["fits"] is False and "model.quantization" in out["advice"]
    res = run_command("spatial-mllm-checkpoint plan --layout v1.1 --memory-gb 8 "
                      "--dtype bfloat16 --quantization int4_weight")
    assert_clean(res)
    assert res.json()["fits"] is True


def test_plan_of_a_checkpoint_directory(tmp_path: Path) -> None:
    tiny = os.environ.get("SPATIAL_MLLM_TINY_CHECKPOINT", "")
    if not Path(tiny, "config.json").is_file():
        pytest.skip("the tiny checkpoint is made by make setup")
    res = run_command(["spatial-mllm-checkpoint", "plan", tiny, "--memory-gb", "2",
                       "--config", "cpu_tiny"])
    assert_clean(res)
    assert res.json()["weights_gb"] < 0.01
    res = run_command(["spatial-mllm-checkpoint", "plan", str(tmp_path / "absent"),
                       "--memory-gb", "1"])
    assert_refused(res, ExitCode.INPUT, "does not exist")
    res = run_command(["spatial-mllm-checkpoint", "plan", "--layout", "v1.1",
                       "--memory-gb", "-3"])
    assert_refused(res, ExitCode.USAGE, "memory-gb")
