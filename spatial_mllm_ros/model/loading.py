"""Safe checkpoint loading: safetensors only, meta-device model, tensor-by-tensor assignment.

A checkpoint directory holds ``model.safetensors`` or shards listed in
``model.safetensors.index.json`` (any other ``*.safetensors`` files are read when neither
exists, e.g. a VGGT-1B conversion).  Pickle files (``*.bin``, ``*.pt``, ``*.pth``, ``*.pkl``,
``*.ckpt``) are refused.  Names of every accepted layout are mapped by
:func:`spatial_mllm_ros.model.layout.to_internal`.

Memory: the model is built with its parameters on the meta device; each checkpoint tensor is read
(one at a time), converted to the target dtype and assigned in place of the meta parameter, so
the peak is the final model plus one tensor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from spatial_mllm_ros.model.errors import (
    MissingShardError,
    MissingTensorError,
    ShapeMismatchError,
    UnexpectedTensorError,
    UnsafeCheckpointError,
    require_checkpoint,
)
from spatial_mllm_ros.model.layout import HEAD_NAMES, detect_layout, is_optional, to_internal
from spatial_mllm_ros.model.quantization import QuantizationReport

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}

CONVERT_HINT = (
    "Only safetensors checkpoints are loaded (pickle files can run arbitrary code). Convert once, "
    'in a trusted environment: `python -c "import torch; from safetensors.torch import save_file; '
    "sd = torch.load('model.pt', map_location='cpu', weights_only=True); "
    "save_file({k: v.contiguous() for k, v in sd.items()}, 'model.safetensors')\"` "
    "(for transformers checkpoints: `model.save_pretrained(out_dir, safe_serialization=True)`)."
)


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32"``/``"bfloat16"``/``"float16"`` (or a torch dtype) -> torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype.lower()]
    except KeyError as err:
        raise ValueError(f"unsupported dtype {dtype!r}; use one of {sorted(DTYPES)}") from err


def weight_files(checkpoint_dir: str | Path) -> list[Path]:
    """Safetensors files of a checkpoint directory, in load order.

    Raises:
        CheckpointNotFoundError: ``checkpoint_dir`` does not exist.
        UnsafeCheckpointError: only pickle weights are present.
        MissingShardError: a shard named by the index is absent, or there are no weights.
    """
    root = require_checkpoint(checkpoint_dir)
    if root.is_file():
        if root.suffix in PICKLE_SUFFIXES:
            raise UnsafeCheckpointError(f"{root} is a pickle file. {CONVERT_HINT}")
        return [root]
    index = root / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise MissingShardError(f"{index} is not a valid safetensors index: {err}") from err
        shards = sorted(set(weight_map.values()))
        absent = [s for s in shards if not (root / s).is_file()]
        if absent:
            raise MissingShardError(f"{index} lists shard(s) absent from {root}: {absent}")
        return [root / s for s in shards]
    if (root / SINGLE_FILE).is_file():
        return [root / SINGLE_FILE]
    found = sorted(root.glob("*.safetensors"))
    if found:
        return found
    pickles = sorted(p.name for p in root.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UnsafeCheckpointError(f"{root} holds only pickle weights {pickles}. {CONVERT_HINT}")
    raise MissingShardError(f"no model.safetensors, {INDEX_FILE} or *.safetensors in {root}")


def tensor_names(checkpoint_dir: str | Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """{name: (shape, dtype)} over all weight files, read from headers only."""
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    for path in weight_files(checkpoint_dir):
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for key in f.keys():
                sl = f.get_slice(key)
                out[key] = (tuple(int(d) for d in sl.get_shape()), str(sl.get_dtype()))
    return out


@dataclass
class LoadReport:
    """What a load did with every tensor name (internal names unless noted)."""

    layouts: dict[str, str] = field(default_factory=dict)  # source dir -> detected layout
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # required and absent (load fails)
    missing_optional: list[str] = field(default_factory=list)  # VGGT heads absent
    unexpected: list[str] = field(default_factory=list)  # checkpoint names (released form)
    duplicates: list[str] = field(default_factory=list)  # already loaded from an earlier source
    tied: list[str] = field(default_factory=list)  # absent, tied to their source parameter
    dropped_heads: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not needed for answering, not read
    quantization: QuantizationReport = field(default_factory=QuantizationReport)

    def summary(self) -> str:
        return (
            f"loaded {len(self.loaded)} tensors from {self.layouts}; missing {len(self.missing)}, "
            f"optional missing {len(self.missing_optional)}, unexpected {len(self.unexpected)}, "
            f"duplicates {len(self.duplicates)}, tied {self.tied}, "
            f"heads dropped {self.dropped_heads}"
        )


def _assign(model: nn.Module, name: str, tensor: torch.Tensor) -> None:
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    if attr in module._parameters:
        param = (
            tensor
            if isinstance(tensor, nn.Parameter)
            else nn.Parameter(tensor, requires_grad=False)
        )
        module._parameters[attr] = param
    else:
        module._buffers[attr] = tensor


def _targets(model: nn.Module) -> dict[str, torch.Tensor]:
    """Loadable names -> tensor (parameters incl. tied duplicates, persistent buffers)."""
    targets: dict[str, torch.Tensor] = dict(model.named_parameters(remove_duplicate=False))
    for name, buf in model.state_dict(keep_vars=True).items():
        targets.setdefault(name, buf)
    return targets


def load_weights(
    model: nn.Module,
    sources: Sequence[str | Path],
    dtype: str | torch.dtype = "float32",
    tied: dict[str, str] | None = None,
    strict: bool = True,
    skip: Callable[[str], bool] | None = None,
    on_assign: Callable[[str], None] | None = None,
) -> LoadReport:
    """Assign the tensors of ``sources`` (checkpoint dirs or files, in priority order) to ``model``.

    Args:
        model: built under :func:`~spatial_mllm_ros.model.layout.parameters_on_meta`.
        tied: {name: source name} of tied parameters (e.g. ``lm_head.weight`` ->
            ``model.language_model.embed_tokens.weight``): as transformers 5 does, a tied
            parameter the checkpoint holds is loaded as is (untied); one it lacks is tied.
        strict: fail on checkpoint tensors that map onto nothing.
        skip: internal names answering does not need (VGGT heads, aggregator blocks past the
            connector's layer): not read, listed in ``report.skipped``.
        on_assign: called with each internal name right after its tensor is assigned (the
            language model's weight-only quantization, :mod:`.quantization`).

    Raises:
        ShapeMismatchError, MissingTensorError, UnexpectedTensorError, and the errors of
        :func:`weight_files`.
    """
    target_dtype = resolve_dtype(dtype)
    tied = tied or {}
    targets = _targets(model)
    report = LoadReport()
    done: set[str] = set()
    for source in sources:
        files = weight_files(source)
        names: list[str] = []
        for path in files:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                keys = list(f.keys())
                names.extend(keys)
                for key in keys:
                    mapped = to_internal(key)
                    internal = mapped[0] if mapped else None
                    if internal is not None and skip is not None and skip(internal):
                        report.skipped.append(internal)
                        continue
                    if internal is None or internal not in targets:
                        report.unexpected.append(key)
                        continue
                    if internal in done:
                        report.duplicates.append(key)
                        continue
                    shape = tuple(int(d) for d in f.get_slice(key).get_shape())
                    expected = tuple(targets[internal].shape)
                    if shape != expected:
                        raise ShapeMismatchError(
                            f"{path.name}: tensor {key} has shape {shape}, "
                            f"model parameter {internal} "
                            f"expects {expected}"
                        )
                    tensor = f.get_tensor(key)
                    if tensor.is_floating_point() and tensor.dtype != target_dtype:
                        tensor = tensor.to(target_dtype)
                    _assign(model, internal, tensor)
                    done.add(internal)
                    report.loaded.append(internal)
                    if on_assign is not None:
                        on_assign(internal)
        report.layouts[str(source)] = detect_layout(names)
    if report.unexpected and strict:
        raise UnexpectedTensorError(
            f"{len(report.unexpected)} checkpoint tensor(s) map onto no model parameter, e.g. "
            f"{report.unexpected[:5]}",
            report.unexpected,
        )
    for name, src in tied.items():
        if name not in done and src in done:
            _assign(model, name, model.get_parameter(src))
            done.add(name)
            report.tied.append(name)
    absent = [n for n, t in _targets(model).items() if n not in done and t.is_meta]
    report.missing = [n for n in absent if not is_optional(n)]
    report.missing_optional = [n for n in absent if is_optional(n)]
    if report.missing:
        raise MissingTensorError(
            f"{len(report.missing)} tensor(s) the configuration uses are absent from "
            f"{list(map(str, sources))}, "
            f"e.g. {report.missing[:5]}",
            report.missing,
        )
    report.dropped_heads = drop_unloaded_heads(model, report.missing_optional)
    return report


def drop_unloaded_heads(model: nn.Module, missing_optional: Sequence[str]) -> list[str]:
    """Replace VGGT heads with absent weights by ``None`` (geometry then reports unavailable)."""
    spatial = getattr(model, "spatial_encoder", model)
    dropped: list[str] = []
    for head in HEAD_NAMES:
        prefix = f"spatial_encoder.{head}."
        if any(n.startswith(prefix) for n in missing_optional):
            setattr(spatial, head, None)
            dropped.append(head)
    return dropped
