"""The device profiles (config/*.yaml, README 'Fit the device'): each loads, validates, keeps
the cross-parameter rules, and -- planned by the memory planner for the released v1.1 layout,
no GPU -- fits its own model.memory_budget_gb at its largest question
(sampling.max_frame_budget frames at model.max_pixels)."""

from __future__ import annotations

import pytest

from spatial_mllm_ros import params as P
from spatial_mllm_ros.model.plan import sizes_for_layout
from spatial_mllm_ros.model.plan_command import plan_from_values
from spatial_mllm_ros.model.quantization import quantization_problem
from spatial_mllm_ros.settings import Settings

DEVICE_PROFILES = {  # profile -> (memory budget GB, dtype, quantization)
    "jetson_orin_nx_16gb": (10.0, "bfloat16", "int4_weight"),
    "jetson_agx_orin_32gb": (22.0, "float16", "int8_weight"),
    "jetson_agx_orin_64gb": (48.0, "float16", "none"),
    "desktop_24gb": (22.0, "bfloat16", "none"),
    "desktop_80gb": (76.0, "bfloat16", "none"),
}


@pytest.fixture(scope="module")
def v11() -> tuple[object, object]:
    return sizes_for_layout("v1.1")


@pytest.mark.parametrize("profile", sorted(DEVICE_PROFILES))
def test_device_profile_loads_and_fits_its_budget(profile: str, v11: tuple[object, object]
                                                  ) -> None:
    values = P.load_profile(profile)  # raises ParamError on any unknown key or bad value
    settings = Settings.from_values(values)  # the full set, with the rules checked
    assert all(rule.holds(settings.values) for rule in P.RULES)
    memory_gb, dtype, quantization = DEVICE_PROFILES[profile]
    assert values["model.memory_budget_gb"] == memory_gb
    assert (settings.engine.dtype, settings.engine.quantization) == (dtype, quantization)
    assert quantization_problem(quantization, settings.engine.device, dtype) == ""
    full = dict(settings.values)
    plan = plan_from_values(v11, full, memory_gb, heads=bool(full["model.geometry_heads"]),
                            frames_param="sampling.max_frame_budget")
    assert plan.frame_budget == full["sampling.max_frame_budget"]
    assert plan.fits, f"{profile}: peak {plan.peak_gb} GB > {memory_gb} GB ({plan.advice})"


def test_the_orin_nx_profile_without_quantization_is_refused_with_what_to_lower(
        v11: tuple[object, object]) -> None:
    full = dict(Settings.from_profile("jetson_orin_nx_16gb").values)
    plan = plan_from_values(v11, {**full, "model.quantization": "none"}, 10.0,
                            frames_param="sampling.max_frame_budget")
    assert not plan.fits and "model.quantization" in plan.advice
