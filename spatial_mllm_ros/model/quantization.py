"""Weight-only quantization of the language model's decoder (``model.quantization``), with
torchao.

What is quantized: every ``nn.Linear`` weight of the decoder layers
(``model.language_model.layers.N.self_attn.{q,k,v,o}_proj`` and ``.mlp.{gate,up,down}_proj``):
about 2.8 of Qwen2.5-VL-3B's 3.1 B language-model parameters.  What is not: the embeddings
and the tied ``lm_head`` (one tensor: quantizing it would quantize the embeddings too), the
norms and biases, the vision tower, VGGT and the connector -- they stay at ``model.dtype``.
:mod:`spatial_mllm_ros.model.plan` counts the same split.

How: torchao's ``quantize_`` on each decoder ``Linear`` as soon as the loader has assigned its
weight (:func:`spatial_mllm_ros.model.loading.load_weights`' ``on_assign``), on the target
device, so at most one full-precision weight exists besides the quantized model: the load's
peak is the quantized model plus one tensor, not the full-precision model.  (transformers'
``TorchAoConfig`` quantizes inside ``from_pretrained``; this project loads tensor by tensor
from the meta device itself, so it calls ``quantize_`` with the same configs.)

Configs (torchao 0.18):

``int8_weight``
    ``Int8WeightOnlyConfig``: int8 per output channel (symmetric), one float32 scale per row;
    any device and dtype.
``int4_weight``
    CUDA: ``Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d")``,
    the tinygemm kernel, which takes bfloat16 only (:func:`quantization_problem` refuses
    another dtype).  CPU: torchao's ``PrototypeInt4WeightOnlyConfig`` (``Int4OpaqueTensor``,
    PyTorch's ``_weight_int4pack_mm_for_cpu``): 0.5 B per weight plus a scale and a zero
    point at ``model.dtype`` per group.  Groups of 128 weights along the input, or 64 / 32
    where the input width is not a multiple of 128 (tiny models); a layer whose width none
    divides stays unquantized (counted in :class:`QuantizationReport`).

This module imports torch only inside the functions that quantize:
:func:`quantization_problem` is torch-free (the node calls it at ``configure``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spatial_mllm_ros.core.memory import release_heap
from spatial_mllm_ros.model.plan import INT4_GROUP, Quantization

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "DECODER_LINEAR",
    "LinearQuantizer",
    "QuantizationReport",
    "quantization_problem",
]

DECODER_LINEAR = re.compile(
    r"^model\.language_model\.layers\.\d+\.(self_attn|mlp)\.[a-z]+_proj\.weight$")
"""Internal names of the decoder ``Linear`` weights that quantization replaces."""

INT4_GROUPS = (INT4_GROUP, 64, 32)
"""int4 group sizes tried in order: the first that divides a layer's input width."""
TRIM_EVERY = 7
"""Quantized weights (one decoder layer's) between heap trims: the float temporaries of
quantizing stay in glibc's arenas until trimmed (``benchmarks/bench_memory.py``: 1.35 GB above
the quantized model at the end of an untrimmed int8 load of the real-size model)."""


def quantization_problem(quantization: str, device: str, dtype: str) -> str:
    """Why ``model.quantization`` cannot run with this device and dtype ("" = it can).
    Torch-free: the node calls it at ``configure``."""
    try:
        q = Quantization(quantization)
    except ValueError:
        return (f"model.quantization {quantization!r} is unknown; one of "
                f"{', '.join(v.value for v in Quantization)}")
    if q is Quantization.NONE:
        return ""
    kind = device.split(":", 1)[0]
    if kind not in ("cpu", "cuda"):
        return (f"model.quantization {q.value} runs on cpu or cuda only, not on "
                f"model.device {device!r}: set model.quantization to none")
    if q is Quantization.INT4_WEIGHT and kind == "cuda" and dtype != "bfloat16":
        return (f"model.quantization int4_weight on cuda needs model.dtype bfloat16 (torchao's "
                f"int4 CUDA kernel takes bfloat16 only), not {dtype}: set model.dtype to "
                "bfloat16 or model.quantization to int8_weight")
    return ""


@dataclass
class QuantizationReport:
    """What :class:`LinearQuantizer` did: ``quantized`` weight names, ``skipped`` ones (no
    group size divides their input width)."""

    quantization: str = Quantization.NONE.value
    quantized: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class LinearQuantizer:
    """The loader's ``on_assign`` hook: quantizes a decoder ``Linear`` once its weight is
    loaded (on ``device``), leaves every other tensor alone.

    Raises (on the first weight): ImportError when torchao is not installed.
    """

    def __init__(self, model: nn.Module, quantization: Quantization, device: str) -> None:
        self.model = model
        self.quantization = quantization
        self.device = device
        self.report = QuantizationReport(quantization.value)

    def __call__(self, name: str) -> None:
        if self.quantization is Quantization.NONE or not DECODER_LINEAR.match(name):
            return
        import torch
        from torch import nn
        from torchao.quantization import quantize_

        module = self.model.get_submodule(name.rpartition(".")[0])
        assert isinstance(module, nn.Linear)
        config = self._config(module.in_features)
        if config is None:
            self.report.skipped.append(name)
            return
        weight = module.weight.to(self.device)
        module._parameters["weight"] = nn.Parameter(weight, requires_grad=False)
        with torch.no_grad():
            # the bias (if any) may still be on meta: quantize_ replaces the weight only
            quantize_(module, config)
        self.report.quantized.append(name)
        if len(self.report.quantized) % TRIM_EVERY == 0:
            release_heap()  # the temporaries of quantizing stay in glibc's arenas otherwise

    def _config(self, in_features: int) -> Any:
        if self.quantization is Quantization.INT8_WEIGHT:
            from torchao.quantization import Int8WeightOnlyConfig

            return Int8WeightOnlyConfig(set_inductor_config=False)
        group = next((g for g in INT4_GROUPS if in_features % g == 0), 0)
        if not group:
            return None
        if self.device.startswith("cuda"):
            from torchao.quantization import Int4WeightOnlyConfig
            from torchao.quantization.quantize_.workflows import Int4PackingFormat

            return Int4WeightOnlyConfig(group_size=group, set_inductor_config=False,
                                        int4_packing_format=Int4PackingFormat.TILE_PACKED_TO_4D)
        from torchao.prototype.quantization.int4.inference_workflow import (
            PrototypeInt4WeightOnlyConfig,
        )

        return PrototypeInt4WeightOnlyConfig(group_size=group, set_inductor_config=False)
