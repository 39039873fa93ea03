"""Weights of the generated tiny checkpoints (see ``model.tiny``): seeded initialisation and
safetensors files (one file, or shards + index) under the released tensor names."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from spatial_mllm_ros.model.tiny_tokenizer import write_json


def save_tensors(out: Path, tensors: dict[str, torch.Tensor], shards: int = 1) -> list[Path]:
    """model.safetensors, or ``shards`` files + model.safetensors.index.json (released naming)."""
    names = list(tensors)
    if shards <= 1:
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
        return [out / "model.safetensors"]
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    budget = total / shards
    groups: list[list[str]] = [[] for _ in range(shards)]
    acc, g = 0.0, 0
    for n in names:
        size = tensors[n].numel() * tensors[n].element_size()
        if acc + size / 2 > budget * (g + 1) and g < shards - 1 and groups[g]:
            g += 1
        groups[g].append(n)
        acc += size
    groups = [grp for grp in groups if grp]
    files, weight_map = [], {}
    for i, grp in enumerate(groups, 1):
        fname = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        save_file({n: tensors[n] for n in grp}, str(out / fname), metadata={"format": "pt"})
        files.append(out / fname)
        weight_map.update(dict.fromkeys(grp, fname))
    write_json(
        out / "model.safetensors.index.json",
        {"metadata": {"total_size": total}, "weight_map": weight_map},
    )
    return files


def init_weights(module: torch.nn.Module, seed: int) -> None:
    """Deterministic N(0, 0.02) weights, unit norms, zero biases."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif p.dim() == 1 and ("norm" in name or "ln_q" in name or name.endswith(".weight")):
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
