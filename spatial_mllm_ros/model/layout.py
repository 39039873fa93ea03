"""Checkpoint layouts: released tensor names <-> this project's parameter names, meta-device builds.

Layouts (see ``shared/reference/checkpoint_layouts/README.md``):

=========  =====================================================================================
``v1.0``   ``visual.*``, ``model.*``, ``lm_head.weight``, ``vggt.*``, ``vggt_embedding_merger.*``
``v1.1``   ``visual.*``, ``model.*``, ``lm_head.weight``, ``spatial_encoder.vggt_model.*``,
           ``connector.*``
``vggt``   VGGT-1B: ``aggregator.*``, ``camera_head.*``, ``depth_head.*``, ``point_head.*``,
           ``track_head.*``
``qwen``   Qwen2.5-VL as transformers 4 saved it (``visual.*``, ``model.*``, ``lm_head.weight``);
           transformers 5 names (``model.visual.*``, ``model.language_model.*``) are accepted too.
=========  =====================================================================================

``spatial-mllm-checkpoint layout --layout qwen2.5-vl`` prints the ``qwen`` key names of a plain
Qwen2.5-VL-3B checkpoint (VST-3B, SpatialLadder-3B, SenseNova-SI-1.1-Qwen2.5-VL-3B).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

LAYOUTS = ("v1.0", "v1.1", "vggt", "qwen2.5-vl")
HEAD_NAMES = ("camera_head", "depth_head", "point_head", "track_head")
_VGGT_TOP = ("aggregator.", *(f"{h}." for h in HEAD_NAMES))

# Internal spatial/connector prefixes -> released, per layout.
_SPATIAL_PREFIX = {"v1.0": "vggt.", "v1.1": "spatial_encoder.vggt_model.", "vggt": ""}
_CONNECTOR_PREFIX = {"v1.0": "vggt_embedding_merger.", "v1.1": "connector."}


def to_released(name: str, layout: str) -> str:
    """Released tensor name of internal parameter ``name`` in ``layout`` (v1.0, v1.1, vggt or
    qwen2.5-vl, which has no spatial or connector names)."""
    if name.startswith("model.visual."):
        return "visual." + name[len("model.visual.") :]
    if name.startswith("model.language_model."):
        return "model." + name[len("model.language_model.") :]
    if name.startswith("spatial_encoder."):
        return _SPATIAL_PREFIX[layout] + name[len("spatial_encoder.") :]
    if name.startswith("connector."):
        return _CONNECTOR_PREFIX[layout] + name[len("connector.") :]
    return name


def to_internal(name: str) -> tuple[str, str] | None:
    """(internal name, source layout) of a tensor name in any accepted layout; None if unknown."""
    rules: tuple[tuple[str, str, str], ...] = (
        ("model.visual.", "model.visual.", "qwen-t5"),
        ("model.language_model.", "model.language_model.", "qwen-t5"),
        ("visual.", "model.visual.", "qwen"),
        ("model.", "model.language_model.", "qwen"),
        ("vggt_embedding_merger.", "connector.", "v1.0"),
        ("vggt.", "spatial_encoder.", "v1.0"),
        ("spatial_encoder.vggt_model.", "spatial_encoder.", "v1.1"),
        ("connector.", "connector.", "v1.1"),
    )
    if name == "lm_head.weight":
        return name, "qwen"
    for prefix, target, layout in rules:
        if name.startswith(prefix):
            return target + name[len(prefix) :], layout
    if name.startswith(_VGGT_TOP):
        return "spatial_encoder." + name, "vggt"
    return None


def is_optional(internal_name: str) -> bool:
    """VGGT heads are optional in Spatial-MLLM checkpoints (loaded from VGGT-1B when absent)."""
    return any(internal_name.startswith(f"spatial_encoder.{h}.") for h in HEAD_NAMES)


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Create every ``nn.Parameter`` on the meta device (buffers stay real, they are small).

    Inside this context a module's parameters cost no memory; :mod:`loading` then assigns the
    checkpoint tensors one by one, so the weights never exist twice.
    """
    original = nn.Module.register_parameter

    def register(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and not param.is_meta:
            param = nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def state_shapes(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every state_dict entry, tied duplicates included."""
    return [(k, tuple(v.shape)) for k, v in module.state_dict(keep_vars=True).items()]


def format_layout(rows: Iterable[tuple[str, tuple[int, ...]]]) -> str:
    """``name<TAB>shape`` lines (dimensions joined by ``x``)."""
    return "".join(f"{n}\t{'x'.join(str(d) for d in s)}\n" for n, s in rows)


def real_layout(layout: str) -> list[tuple[str, tuple[int, ...]]]:
    """Released (name, shape) list of the REAL-size model, built on meta from this code."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    if layout == "vggt":
        from spatial_mllm_ros.model.vggt import VGGT, VGGTConfig

        with parameters_on_meta():
            vggt = VGGT(VGGTConfig.vggt_1b())
        return state_shapes(vggt)
    from spatial_mllm_ros.model.configuration import real_config
    from spatial_mllm_ros.model.modeling import SpatialMLLMForConditionalGeneration

    with parameters_on_meta():
        model = SpatialMLLMForConditionalGeneration(real_config(layout))
    return [(to_released(n, layout), s) for n, s in state_shapes(model) if _is_weight(model, n)]


def _is_weight(model: nn.Module, name: str) -> bool:
    """True for parameters (buffers, even persistent ones, are rebuilt, not loaded)."""
    try:
        model.get_parameter(name)
    except AttributeError:
        return False
    return True


def detect_layout(names: Iterable[str]) -> str:
    """Layout of a checkpoint from its tensor names: v1.0, v1.1, vggt, qwen or unknown."""
    kinds: set[str] = set()
    for n in names:
        hit = to_internal(n)
        kinds.add(hit[1] if hit else "unknown")
    for layout in ("v1.0", "v1.1"):
        if layout in kinds:
            return layout
    if kinds == {"vggt"}:
        return "vggt"
    if kinds and kinds <= {"qwen", "qwen-t5"}:
        return "qwen"
    return "unknown"


def describe(rows: Iterable[tuple[str, Any]]) -> dict[str, int]:
    """Tensor count per top-level released prefix."""
    counts: dict[str, int] = {}
    for n, _ in rows:
        top = n.split(".")[0]
        counts[top] = counts.get(top, 0) + 1
    return counts


def materialize_parameters(module: nn.Module, device: str = "cpu") -> None:
    """Give every meta parameter uninitialised storage on ``device`` (buffers are left alone)."""
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is not None and param.is_meta:
                sub._parameters[name] = nn.Parameter(
                    torch.empty(param.shape, dtype=param.dtype, device=device),
                    requires_grad=param.requires_grad,
                )
