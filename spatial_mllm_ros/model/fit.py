"""Will the configured model fit its device?  The check the node runs at ``configure`` and
``spatial-mllm-infer`` / ``spatial-mllm-eval`` run at start, before anything loads.

It plans (:mod:`spatial_mllm_ros.model.plan`) the checkpoint's tensors (its safetensors
headers; the embedded tiny checkpoint's too, generated first if absent) at ``model.dtype`` and
``model.quantization``, for the largest question the node may ask --
``sampling.max_frame_budget`` frames at ``model.max_pixels`` -- with the VGGT heads where
``model.geometry_heads`` loads them, against ``model.memory_budget_gb`` (0 = on cuda the
device's total memory, on cpu no check).  A configuration that does not fit is refused with
one line naming what to lower (the plan's advice); so is a ``model.quantization`` the device
or dtype cannot run (:func:`spatial_mllm_ros.model.quantization.quantization_problem`).

Torch is imported only to read a cuda device's memory (budget 0 on cuda) or to generate the
embedded tiny checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from spatial_mllm_ros import params as P
from spatial_mllm_ros.model.errors import CheckpointError
from spatial_mllm_ros.model.plan import (
    GB,
    MemoryPlan,
    ModelSizes,
    safetensors_shapes,
    sizes_for_checkpoint,
    weight_groups,
)
from spatial_mllm_ros.model.plan_command import plan_from_values
from spatial_mllm_ros.model.quantization import quantization_problem
from spatial_mllm_ros.model.spec import EngineSpec, resolve_checkpoint

__all__ = ["FitCheck", "FitLimits", "check_configuration", "check_fit", "cuda_total_memory_gb"]


@dataclass(frozen=True)
class FitLimits:
    """The memory budget of the check (its parameter bound by field metadata).

    Attributes:
        memory_budget_gb: memory the model may use, GB; 0 = on cuda the device's total memory,
            on cpu no check.
    """

    memory_budget_gb: float = P.bound("model.memory_budget_gb")


@dataclass(frozen=True)
class FitCheck:
    """The outcome: ``problem`` "" = the configuration fits (or no budget applies).

    memory_gb: the budget checked, GB (0 = none: cpu without model.memory_budget_gb).
    budget_source: where the budget came from ("model.memory_budget_gb" or the cuda device).
    plan: the memory plan (None when nothing was planned).
    """

    problem: str
    memory_gb: float = 0.0
    budget_source: str = ""
    plan: MemoryPlan | None = None


def cuda_total_memory_gb(device: str) -> float:
    """Total memory of cuda ``device``, GB (``torch.cuda.mem_get_info``); 0 when no cuda
    device is available (the load then reports that)."""
    import torch

    if not torch.cuda.is_available():
        return 0.0
    _, total = torch.cuda.mem_get_info(torch.device(device))
    return float(total) / GB


def _budget(spec: EngineSpec, memory_budget_gb: float,
            device_memory_gb: Callable[[str], float]) -> tuple[float, str]:
    if memory_budget_gb > 0:
        return memory_budget_gb, "model.memory_budget_gb"
    if spec.device.startswith("cuda"):
        return device_memory_gb(spec.device), f"{spec.device}'s total memory"
    return 0.0, ""


def _shapes_and_sizes(spec: EngineSpec
                      ) -> tuple[list[tuple[str, tuple[int, ...]]], ModelSizes]:
    shapes, sizes = sizes_for_checkpoint(resolve_checkpoint(spec))
    if spec.vggt_checkpoint and spec.geometry_heads:  # heads the main checkpoint lacks
        vggt = Path(spec.vggt_checkpoint)
        extra = safetensors_shapes(vggt)
        have = {name for name, _ in shapes}
        shapes += [(n, s) for n, s in extra
                   if n not in have and n.split(".", 1)[0].endswith("_head")]
    return shapes, sizes


def check_fit(spec: EngineSpec, max_frame_budget: int, memory_budget_gb: float,
              monocular_candidates: int,
              device_memory_gb: Callable[[str], float] = cuda_total_memory_gb) -> FitCheck:
    """Check ``spec`` for questions of up to ``max_frame_budget`` frames at
    ``spec.max_pixels`` within ``memory_budget_gb`` (0 = see the module docstring)."""
    problem = quantization_problem(spec.quantization, spec.device, spec.dtype)
    if problem:
        return FitCheck(problem)
    memory_gb, source = _budget(spec, memory_budget_gb, device_memory_gb)
    if memory_gb <= 0:
        return FitCheck("")
    try:
        shapes, sizes = _shapes_and_sizes(spec)
    except (CheckpointError, OSError, ValueError):
        return FitCheck("", memory_gb, source)  # the load reports an unreadable checkpoint
    heads = spec.geometry_heads and weight_groups(shapes).heads > 0
    values = {"model.dtype": spec.dtype, "model.quantization": spec.quantization,
              "model.max_pixels": spec.max_pixels, "sampling.max_frame_budget": max_frame_budget,
              "sampling.monocular_candidates": monocular_candidates}
    plan = plan_from_values((shapes, sizes), values, memory_gb, heads=heads,
                            frames_param="sampling.max_frame_budget")
    if plan.fits:
        return FitCheck("", memory_gb, source, plan)
    problem = (f"the model does not fit in {memory_gb:.1f} GB ({source}): "
               f"{spec.description} at {spec.dtype}, quantization {spec.quantization}, "
               f"needs {plan.peak_gb:.1f} GB ({plan.weights_gb:.2f} GB of weights) for "
               f"{max_frame_budget} frames (sampling.max_frame_budget) at model.max_pixels "
               f"{plan.max_pixels}: {plan.advice}")
    return FitCheck(problem, memory_gb, source, plan)


def check_configuration(spec: EngineSpec, values: Mapping[str, object],
                        device_memory_gb: Callable[[str], float] = cuda_total_memory_gb
                        ) -> FitCheck:
    """:func:`check_fit` with the limits of a full parameter set ``values``
    (``sampling.max_frame_budget``, ``model.memory_budget_gb``,
    ``sampling.monocular_candidates``): what the node and the commands call."""
    limits = FitLimits(**P.bound_values(FitLimits, values))
    # the two frame counts are bound to PipelineConfig's fields; the check reads them too
    return check_fit(spec, int(str(values["sampling.max_frame_budget"])),
                     limits.memory_budget_gb,
                     int(str(values["sampling.monocular_candidates"])), device_memory_gb)
