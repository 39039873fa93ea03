"""Spatial-MLLM model benchmark (CPU).

1. Per-stage time on the tiny checkpoint: 2D encoder, spatial encoder, connector, prefill, decode
   (tokens/s), on real_rgbd_shelf frames (synthetic frames if the data is absent).
2. The vision encoders in PyTorch vs onnxruntime (CPU provider), on the same clip and threads:
   median times and their ratio (``model.vision_backend: onnxruntime``).
3. Peak memory while loading a generated "medium" checkpoint (~330 MB float32 safetensors),
   measured in a fresh subprocess as the peak RSS increase (VmHWM) over the RSS before loading,
   compared with the checkpoint's size on disk (target < 1.3x).

Run: ``python benchmarks/bench_model.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "real_rgbd_shelf"

_CHILD = r"""
import sys, resource
from pathlib import Path
def status(key):
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0
import torch, transformers, safetensors  # imports are not part of the load
from spatial_mllm_ros.model.engine import load_model
from spatial_mllm_ros.model.configuration import load_config
config = load_config(sys.argv[1])
before = status('VmRSS:')
model, report = load_model(sys.argv[1], dtype=sys.argv[2], config=config)
peak_load = status('VmHWM:')
# Touch every parameter so that lazily paged (memory-mapped) tensors count as resident.
with torch.no_grad():
    for p in model.parameters():
        p.float().sum()
peak = status('VmHWM:')
after = status('VmRSS:')
params = sum(p.numel() * p.element_size() for p in model.parameters())
print(before, peak_load, peak, after, params, len(report.loaded))
"""


def bench_stages(runs: int, frames: int, max_new_tokens: int) -> None:
    from spatial_mllm_ros.model.engine import SpatialMLLMEngine
    from spatial_mllm_ros.model.tiny import write_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_checkpoint(Path(tmp) / "tiny", "v1.1")
        engine = SpatialMLLMEngine.from_pretrained(ckpt)
        images, source = _images(frames)
        prompt = (
            "These are frames of a video.\nHow many boxes?\n"
            "Please answer the question using a single word or phrase."
        )
        engine.answer_images(images, prompt, max_new_tokens=2)  # warm-up
        results = [
            engine.answer_images(images, prompt, max_new_tokens=max_new_tokens) for _ in range(runs)
        ]
    r0 = results[0]
    print(
        f"tiny checkpoint, {frames} {source} frames 640x480 -> "
        f"{r0.resized_size[0]}x{r0.resized_size[1]}, "
        f"{r0.num_video_tokens} video tokens, {runs} runs (median):"
    )
    for stage in ("vision_2d", "spatial", "connector", "prefill"):
        ms = statistics.median(r.timings_s[stage] for r in results) * 1e3
        print(f"  {stage:<10} {ms:8.1f} ms")
    decode = statistics.median(r.timings_s["decode"] for r in results)
    steps = statistics.median(max(r.num_new_tokens - 1, 0) for r in results)
    rate = steps / decode if decode > 0 else float("nan")
    print(f"  decode     {decode * 1e3:8.1f} ms for {steps:.0f} tokens = {rate:.1f} tokens/s")


def bench_encoders(runs: int, frames: int) -> None:
    """torch-CPU vs onnxruntime-CPU times of both vision encoders on one clip, as a ratio."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("encoders: onnxruntime is not installed; torch vs onnxruntime not measured")
        return
    import torch

    from spatial_mllm_ros.model.backends.config import VisionSpec
    from spatial_mllm_ros.model.engine import SpatialMLLMEngine
    from spatial_mllm_ros.model.processing import build_inputs
    from spatial_mllm_ros.model.tiny import write_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_checkpoint(Path(tmp) / "tiny", "v1.1")
        spec = VisionSpec("onnxruntime", "fp32", str(Path(tmp) / "engines"), (), 2, frames,
                          frames, 0.0, 0.0)
        engine = SpatialMLLMEngine.from_pretrained(ckpt, vision=spec)
        images = _images(frames)[0]
        clip = engine.prepare(images)
        width, height = clip.resized_size
        t0 = time.perf_counter()
        status = engine.prepare_vision(height, width, wait_s=None)
        prep_s = time.perf_counter() - t0
        assert status is not None
        if status.state != "active":
            print(f"encoders: onnxruntime {status.state} ({status.message}); not measured")
            return
        inputs = build_inputs(engine.processor, clip, "warm-up")
        pixels, grid, video = (inputs[k] for k in ("pixel_values_videos", "video_grid_thw",
                                                   "video_tchw"))
        model, backend = engine.model, engine.model.vision_backend
        assert backend is not None
        calls = {
            "vision_2d": (lambda: model.torch_vision_2d(pixels, grid),
                          lambda: backend.run_2d(pixels, grid)),
            "spatial": (lambda: model.torch_spatial_tokens(video),
                        lambda: backend.run_spatial(video)),
        }
        print(f"encoders: torch vs onnxruntime (CPU provider), {frames} frames "
              f"{height}x{width}, {torch.get_num_threads()} threads, median of {runs} runs "
              f"(onnxruntime prepared in {prep_s:.1f} s: export + session + parity "
              f"{', '.join(f'{k} {v:.1e}' for k, v in status.parity.items())})")
        with torch.no_grad():
            for stage, (torch_call, ort_call) in calls.items():
                t_torch, t_ort = _median_s(torch_call, runs), _median_s(ort_call, runs)
                print(f"  {stage:<10} torch {t_torch * 1e3:8.1f} ms   onnxruntime "
                      f"{t_ort * 1e3:8.1f} ms   torch/onnxruntime {t_torch / t_ort:5.2f}x")
        engine.close()


def _median_s(call: Callable[[], object], runs: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _images(frames: int) -> tuple[list[np.ndarray], str]:
    if (DATA / "frame-000000.color.png").is_file():
        from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir

        return [f.rgb for f in load_rgbd_dir(DATA, max_frames=frames)], "real_rgbd_shelf"
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(frames)], (
        "synthetic")


def bench_load_memory(dtype: str) -> None:
    from spatial_mllm_ros.model.tiny import write_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ckpt = write_checkpoint(Path(tmp) / "medium", "v1.1", size="medium")
        gen_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in ckpt.glob("*.safetensors"))
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(ckpt), dtype],
            capture_output=True,
            text=True,
            cwd=str(ROOT),
            check=True,
        )
        load_s = time.perf_counter() - t0
    before, peak_load, peak, after, params, n = (int(v) for v in out.stdout.split()[-6:])
    mb = 1024 * 1024
    print(
        f"load memory: medium checkpoint {size / mb:.0f} MB on disk ({n} tensors, "
        f"generated in {gen_s:.1f} s), "
        f"loaded as {dtype} in {load_s:.1f} s (subprocess)"
    )
    print(
        f"  RSS before load {before / mb:.0f} MB, peak during load {peak_load / mb:.0f} MB, "
        f"peak after touching "
        f"every parameter {peak / mb:.0f} MB, final {after / mb:.0f} MB, "
        f"parameters {params / mb:.0f} MB"
    )
    print(f"  peak load memory / checkpoint size: {(peak - before) / size:.2f}x (target < 1.3x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    bench_stages(
        runs=2 if args.quick else 5,
        frames=4 if args.quick else 8,
        max_new_tokens=8 if args.quick else 16,
    )
    bench_encoders(runs=3 if args.quick else 7, frames=4 if args.quick else 8)
    bench_load_memory("float32")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
