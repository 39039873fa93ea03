"""Benchmark the VGGT geometry model on CPU (tiny and small configurations).

Run from the repository root: ``python benchmarks/bench_vggt.py [--quick]``.
Prints the time of the meta-device layout build, the tiny full forward (all heads), the
aggregator alone (all layers vs. only the last layer kept) and peak memory held by kept layers.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from spatial_mllm_ros.model.vggt import VGGT, VGGTConfig, vggt_layout


def timeit(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bench_size(name: str, cfg: VGGTConfig, frames: int, hw: tuple[int, int], repeats: int) -> None:
    model = VGGT(cfg).eval()
    images = torch.rand(frames, 3, *hw)
    clip = images[None]
    with torch.inference_mode():
        full = timeit(lambda: model(images), repeats)
        agg_all = timeit(lambda: model.aggregator(clip), repeats)
        agg_last = timeit(lambda: model.aggregator.forward_layers(clip, [-1]), repeats)
        layers, _ = model.aggregator(clip)
    kept_all = sum(x.numel() * x.element_size() for x in layers) / 2**20
    kept_last = layers[-1].numel() * layers[-1].element_size() / 2**20
    print(
        f"{name}: {frames} frames {hw[0]}x{hw[1]}: full forward {full * 1e3:.1f} ms, "
        f"aggregator {agg_all * 1e3:.1f} ms (all layers kept, {kept_all:.1f} MiB) vs "
        f"{agg_last * 1e3:.1f} ms (last layer only, {kept_last:.1f} MiB): "
        f"{kept_all / kept_last:.0f}x less token memory"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    torch.set_num_threads(max(1, torch.get_num_threads()))

    t = timeit(lambda: vggt_layout(VGGTConfig.vggt_1b()), 1)
    print(f"vggt_layout(VGGT-1B) on meta device: {t * 1e3:.0f} ms")

    torch.manual_seed(0)
    sizes = [("tiny", VGGTConfig.tiny(), 3, (56, 84))]
    if not args.quick:
        small = VGGTConfig.tiny(
            embed_dim=128,
            depth=8,
            num_heads=4,
            patch_embed_num_heads=4,
            intermediate_layer_idx=[1, 3, 5, 7],
        )
        sizes.append(("small(128x8)", small, 8, (224, 308)))
    for name, cfg, frames, hw in sizes:
        bench_size(name, cfg, frames, hw, repeats)


if __name__ == "__main__":
    main()
