"""The vision backend's parameters reach the engine spec; its status reads as diagnostics."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from spatial_mllm_ros.model.backends.config import VisionSpec, parse_sizes
from spatial_mllm_ros.model.backends.status import SizeStatus, VisionStatus
from spatial_mllm_ros.params import ParamError
from spatial_mllm_ros.settings import Settings, parse_overrides


def test_default_is_torch_and_overrides_select_a_backend() -> None:
    assert Settings.defaults().engine.vision.backend == "torch"
    assert not Settings.defaults().engine.vision.accelerated
    overrides = parse_overrides(["model.vision_backend:=onnxruntime",
                                 "model.vision_sizes:=168x252,476x644"])
    vision = Settings.from_profile("cpu_tiny", overrides).engine.vision
    assert vision.backend == "onnxruntime" and vision.accelerated
    assert vision.sizes == ((168, 252), (476, 644))


@pytest.mark.parametrize("profile", ["desktop_gpu", "jetson_orin"])
def test_gpu_profiles_choose_tensorrt_fp16_over_the_sampled_clips(profile: str) -> None:
    settings = Settings.from_profile(profile)
    vision = settings.engine.vision
    assert (vision.backend, vision.precision) == ("tensorrt", "fp16")
    assert len(vision.sizes) == 1
    budget = int(settings.values["sampling.frame_budget"])
    top = int(settings.values["sampling.max_frame_budget"])
    assert (vision.min_frames, vision.opt_frames, vision.max_frames) == (2, budget, top)


def test_odd_frame_budgets_round_up_to_whole_frame_pairs() -> None:
    vision = Settings.from_values({"sampling.frame_budget": 7,
                                   "sampling.max_frame_budget": 9}).engine.vision
    assert (vision.opt_frames, vision.max_frames) == (8, 10)


@pytest.mark.parametrize(
    ("name", "value"),
    [("model.vision_backend", "openvino"), ("model.vision_precision", "int8"),
     ("model.vision_sizes", "476"), ("model.vision_sizes", "470x644"),
     ("model.vision_parity_tolerance", -1.0)],
)
def test_invalid_values_are_parameter_errors(name: str, value: object) -> None:
    with pytest.raises(ParamError, match=name):
        Settings.from_values({name: value})


def test_parse_sizes() -> None:
    assert parse_sizes("") == ()
    assert parse_sizes(" 28x56 , 56X28") == ((28, 56), (56, 28))
    with pytest.raises(ValueError, match="multiples of 28"):
        parse_sizes("0x28")


def test_tolerance_follows_precision_and_model_dtype() -> None:
    spec = VisionSpec("tensorrt", "fp16", "", (), 2, 8, 16, 0.0, 0.0)
    assert spec.tolerance("float32") == 2e-2
    assert spec.tolerance("bfloat16") == 5e-2  # a bf16 reference is itself that far off
    ort = VisionSpec("onnxruntime", "fp16", "", (), 2, 8, 16, 0.0, 0.0)
    assert ort.tolerance("float32") == 1e-3  # onnxruntime runs float32 whatever is asked
    assert VisionSpec("tensorrt", "fp16", "", (), 2, 8, 16, 0.3, 0.0).tolerance("float32") == 0.3


def test_status_reads_as_diagnostics_and_pickles_without_torch() -> None:
    ok = VisionStatus("onnxruntime", "fp32", (
        SizeStatus("168x252", "active", parity={"vision_2d": 1e-6, "spatial": 2e-6},
                   tolerance=1e-3, accelerated_calls=4, torch_calls=2),))
    assert ok.level == "ok" and "168x252 active" in ok.message
    values = ok.to_values()
    assert values["vision.168x252.calls"] == "4/2"
    assert values["vision.168x252.parity.spatial"] == "2e-06"
    bad = VisionStatus("tensorrt", "fp16", (SizeStatus("476x644", "fallback", "parity"),))
    assert bad.level == "warn" and "fallback (parity)" in bad.message
    missing = VisionStatus("tensorrt", "fp16", note="tensorrt is not installed")
    assert missing.level == "warn" and "not installed" in missing.message
    assert pickle.loads(pickle.dumps(ok)) == ok
    assert VisionStatus("torch", "fp32").message == "vision encoders: torch"
    # the node unpickles what the model process sends: that must not import torch
    code = ("import pickle, sys; s = pickle.loads(sys.stdin.buffer.read()); "
            "import spatial_mllm_ros.model.spec; print(s.level, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(bad),
                         capture_output=True, check=True)
    assert out.stdout.decode().split() == ["warn", "False"]
