"""GPU benchmark of the real-size Spatial-MLLM (v1.1 layout) with random weights, per stage and
per vision backend.

What it builds: ``real_config("v1.1")`` (Qwen2.5-VL-3B + VGGT-1B + the v1.1 connector, ~4.4 B
parameters) with random weights in bfloat16 on the GPU -- no download. What it times, for
``torch`` and for every accelerated backend that imports here (``onnxruntime`` with its CUDA
provider, ``tensorrt``): a 16-frame clip at 476x644 (a 640x480 camera at the processor's
default size; 3128 video tokens) through the 2D encoder, VGGT's aggregator, the connector,
the language model's prefill, and a 32-token greedy decode (tokens/s), the time to first token
of a full ``generate``, the peak GPU memory; then a 128-frame space-aware pre-sampling pass
through the whole VGGT (aggregator + camera/depth/point heads, 518 px wide, torch); then, per
``model.quantization`` (none, int8_weight, int4_weight; the model rebuilt for each), the
weights and the peak GPU memory of one 8-frame answer beside the memory planner's prediction
and their ratio -- ``bench_memory.py``'s columns (README, "Fit the device"). Every
stage is timed between ``torch.cuda.synchronize()`` calls, median of ``--runs``. An
accelerated backend is first *prepared* as the node prepares it (export, engine build, parity
check against torch; the time and the parity figures are printed).

Needs only this repository, torch and transformers (plus onnx and the backend packages for the
accelerated rows); no ROS, no virtual environment. Where no GPU is visible it prints one
``SKIP`` line and exits 0. ``--smoke`` runs the same code on the CPU with the tiny model (a
check of the script, not a measurement). ``--budget-s`` (default 280) keeps the whole run
within five minutes on one data-centre GPU: a backend that cannot be prepared in the time left
is reported as such.

Run: ``python benchmarks/bench_gpu.py [--backends torch,onnxruntime,tensorrt] [--smoke]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT_TEXT_TOKENS = 48  # around the clip: the system prompt, question and answer template


def _skip(reason: str) -> int:
    print(f"bench_gpu: SKIP -- {reason}; nothing was measured")
    return 0


class Clock:
    """Wall-clock seconds of a call, synchronising the GPU around it."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch, self.cuda = torch, device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def time(self, fn: Callable[[], Any], runs: int) -> tuple[Any, float]:
        """(last result, median seconds of ``runs`` calls after one warm-up call)."""
        out = fn()
        times = []
        for _ in range(runs):
            self.sync()
            t0 = time.perf_counter()
            out = fn()
            self.sync()
            times.append(time.perf_counter() - t0)
        return out, statistics.median(times)


class TokenTimes:
    """A generate() streamer recording when each new token arrives."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate() first hands over the prompt
            self.prompt_seen = True
            return
        self.stamps.append(time.perf_counter())

    def end(self) -> None:
        pass


def build_model(smoke: bool, device: Any, dtype: Any) -> Any:
    import torch

    from spatial_mllm_ros.model.configuration import real_config
    from spatial_mllm_ros.model.modeling import SpatialMLLMForConditionalGeneration
    from spatial_mllm_ros.model.tiny import make_config

    if smoke:
        ids = {"<|video_pad|>": 900, "<|vision_start|>": 901, "<|vision_end|>": 902,
               "<|image_pad|>": 903, "<|im_end|>": 904, "<|endoftext|>": 905}
        config = make_config("v1.1", vocab_size=1000, ids=ids)
    else:
        config = real_config("v1.1")
    torch.manual_seed(0)
    with torch.device(device):
        model = SpatialMLLMForConditionalGeneration(config)
    return model.to(dtype).eval()


def clip_inputs(model: Any, frames: int, height: int, width: int, device: Any,
                dtype: Any) -> dict[str, Any]:
    """Random processor-like inputs of one clip (no tokenizer, processor or image library)."""
    import torch

    cfg = model.config
    gen = torch.Generator().manual_seed(1)
    t, gh, gw = frames // 2, height // 14, width // 14
    n_video = t * gh * gw // 4
    text = torch.randint(10, 800, (PROMPT_TEXT_TOKENS,), generator=gen)
    half = PROMPT_TEXT_TOKENS // 2
    ids = torch.cat([
        text[:half], torch.tensor([cfg.vision_start_token_id]),
        torch.full((n_video,), cfg.video_token_id), torch.tensor([cfg.vision_end_token_id]),
        text[half:],
    ]).unsqueeze(0)
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "mm_token_type_ids": (ids == cfg.video_token_id).long().mul(2).to(device),
        "pixel_values_videos": torch.randn(t * gh * gw, 1176, generator=gen).to(device, dtype),
        "video_grid_thw": torch.tensor([[t, gh, gw]], device=device),
        "second_per_grid_ts": torch.tensor([1.0], device=device),
        "video_tchw": torch.rand(1, frames, 3, height, width, generator=gen).to(device, dtype),
    }


def measure(model: Any, inputs: dict[str, Any], clock: Clock, runs: int,
            new_tokens: int) -> dict[str, float]:
    """Per-stage seconds, decode tokens/s, time to first token, peak GPU memory."""
    import torch
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    backend = model.vision_backend
    pixels, grid, video = (inputs[k] for k in ("pixel_values_videos", "video_grid_thw",
                                               "video_tchw"))
    gh, gw = int(grid[0, 1]), int(grid[0, 2])
    out: dict[str, float] = {}
    with torch.no_grad():
        if clock.cuda:
            torch.cuda.reset_peak_memory_stats()
        run_2d = backend.run_2d if backend is not None else model.torch_vision_2d
        run_sp = backend.run_spatial if backend is not None else model.torch_spatial_tokens
        embeds, out["vision_2d"] = clock.time(lambda: run_2d(pixels, grid), runs)
        tokens, out["spatial"] = clock.time(lambda: run_sp(video), runs)
        fused, out["connector"] = clock.time(
            lambda: model.connector(embeds, tokens, 0, (gh, gw)), runs)
        text = {k: inputs[k] for k in ("input_ids", "attention_mask", "mm_token_type_ids",
                                       "video_grid_thw", "second_per_grid_ts")}
        encoded = {"video": BaseModelOutputWithPooling(pooler_output=(fused,))}  # type: ignore[arg-type]
        _, out["prefill"] = clock.time(
            lambda: model(**text, mm_encoder_outputs=encoded, use_cache=True, logits_to_keep=1),
            runs)
        ttft, rate = [], []
        for _ in range(max(runs, 1)):
            stream = TokenTimes()
            clock.sync()
            t0 = time.perf_counter()
            model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, streamer=stream)
            ttft.append(stream.stamps[0] - t0)
            steps = len(stream.stamps) - 1
            rate.append(steps / (stream.stamps[-1] - stream.stamps[0]) if steps else 0.0)
        out["ttft"], out["decode_tok_s"] = statistics.median(ttft), statistics.median(rate)
        out["peak_gb"] = torch.cuda.max_memory_allocated() / 2**30 if clock.cuda else 0.0
    return out


def presample(model: Any, frames: int, height: int, width: int, clock: Clock,
              dtype: Any) -> tuple[float, float]:
    """Seconds and peak GB of one space-aware pre-sampling pass (whole VGGT, heads too)."""
    import torch

    x = torch.rand(1, frames, 3, height, width, generator=torch.Generator().manual_seed(2))
    x = x.to(next(model.parameters()).device, dtype)
    if clock.cuda:
        torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        _, seconds = clock.time(lambda: model.spatial_encoder(x), 1)
    peak = torch.cuda.max_memory_allocated() / 2**30 if clock.cuda else 0.0
    return seconds, peak


def backend_problem(name: str, device: Any) -> str:
    """"" when ``name`` can be tried here, else why not."""
    if name == "torch":
        return ""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return "onnx is not installed (pip install onnx)"
    from spatial_mllm_ros.model.backends import onnxrt, tensorrt

    return onnxrt.availability(device) if name == "onnxruntime" else tensorrt.availability(device)


def prepare(model: Any, name: str, precision: str, size: tuple[int, int], frames: int,
            cache: str, timeout_s: float) -> tuple[Any, str, float]:
    """An AcceleratedVision for ``name`` prepared at ``size``: (it or None, note, seconds)."""
    from spatial_mllm_ros.model.backends.accelerated import AcceleratedVision
    from spatial_mllm_ros.model.backends.config import VisionSpec

    spec = VisionSpec(name, precision, cache, (), 2, frames, frames, 0.0, 0.0)
    vision = AcceleratedVision(model, spec, threading.RLock(), fingerprint=None)
    t0 = time.perf_counter()
    status = vision.wait(*size, timeout_s=timeout_s)
    seconds = time.perf_counter() - t0
    if status.state != "active":
        why = status.message or f"still {status.state} after {timeout_s:.0f} s (budget)"
        return None, f"{status.state}: {why}", seconds
    parity = ", ".join(f"{k} {v:.1e}" for k, v in status.parity.items())
    return vision, f"parity {parity} (tolerance {status.tolerance:g})", seconds


QUANTIZATIONS = ("none", "int8_weight", "int4_weight")


def memory_row(smoke: bool, device: Any, dtype: Any, quantization: str, frames: int,
               height: int, width: int) -> dict[str, float]:
    """Weights and peak GPU memory (``torch.cuda`` allocated, GB) of one 8-frame answer with
    the language model quantized as the node loads it (each decoder Linear weight through
    :class:`~spatial_mllm_ros.model.quantization.LinearQuantizer`), VGGT heads dropped (an
    RGB-D robot's ``model.geometry_heads: false``), beside the planner's figures."""
    import torch

    from spatial_mllm_ros.model.layout import HEAD_NAMES
    from spatial_mllm_ros.model.plan import (
        PlanRequest,
        Quantization,
        plan,
        sizes_for_layout,
        weight_groups,
    )
    from spatial_mllm_ros.model.quantization import DECODER_LINEAR, LinearQuantizer

    model = build_model(smoke, device, dtype)
    for head in HEAD_NAMES:
        setattr(model.spatial_encoder, head, None)
    quantizer = LinearQuantizer(model, Quantization(quantization), str(device))
    for name, _ in list(model.named_parameters()):
        if DECODER_LINEAR.match(name):
            quantizer(name)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    weights = torch.cuda.memory_allocated() / 1e9 if cuda else float("nan")
    inputs = clip_inputs(model, frames, height, width, device, dtype)
    with torch.no_grad():
        model.generate(**inputs, max_new_tokens=2, do_sample=False)
    peak = torch.cuda.max_memory_allocated() / 1e9 if cuda else float("nan")
    del model, inputs
    if cuda:
        torch.cuda.empty_cache()
    row = {"weights": weights, "peak": peak, "w_plan": float("nan"), "planned": float("nan")}
    if not smoke:
        shapes, sizes = sizes_for_layout("v1.1")
        # allocated memory has no CUDA context: the plan without its runtime overhead
        p = plan(weight_groups(shapes), sizes, PlanRequest(
            memory_gb=1000.0, dtype=str(dtype)[6:], quantization=Quantization(quantization),
            frame_budget=frames, max_pixels=height * width, camera=(width, height),
            overhead_gb=0.0))
        row.update(w_plan=p.weights_gb, planned=p.peak_gb)
    return row


def memory_table(smoke: bool, device: Any, dtype: Any, height: int, width: int) -> None:
    """The bench_memory.py columns on this GPU: per quantization, planned vs measured."""
    frames = 8
    print(f"memory: {frames} frames {height}x{width}, 2 new tokens, VGGT heads not loaded; "
          "measured = torch.cuda.max_memory_allocated (no CUDA context), planned = the "
          "planner's peak without its 1.0 GB runtime overhead")
    print(f"{'quantization':<14}{'w_plan':>8}{'weights':>9}{'planned':>9}{'peak':>8}{'ratio':>7}")
    for q in QUANTIZATIONS:
        try:
            r = memory_row(smoke, device, dtype, q, frames, height, width)
        except Exception as err:  # a quantization this torch/torchao/GPU cannot run
            print(f"{q:<14} not run -- {type(err).__name__}: {err}")
            continue
        print(f"{q:<14}{r['w_plan']:8.2f}{r['weights']:9.2f}{r['planned']:9.2f}"
              f"{r['peak']:8.2f}{r['peak'] / r['planned']:7.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="torch,onnxruntime,tensorrt")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp16",
                        help="TensorRT engine precision (default fp16)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=476)
    parser.add_argument("--width", type=int, default=644)
    parser.add_argument("--presample-frames", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=280.0)
    parser.add_argument("--trt-opt-level", type=int, default=2,
                        help="TensorRT builder optimisation level (0-5; lower builds faster)")
    parser.add_argument("--smoke", action="store_true",
                        help="the tiny model on the CPU (checks the script; not a benchmark)")
    args = parser.parse_args()
    start = time.perf_counter()
    try:
        import torch
        import transformers
    except ImportError as err:
        return _skip(f"{err.name} is not installed")
    if not args.smoke and not torch.cuda.is_available():
        return _skip("no CUDA GPU is visible to torch (torch.cuda.is_available() is False)")
    if args.smoke:
        args.frames, args.height, args.width = 4, 112, 140
        args.presample_frames, args.new_tokens, args.runs = 8, 4, 1
        device, dtype = torch.device("cpu"), torch.float32
        gpu = "CPU (smoke run: tiny model, not a measurement)"
    else:
        device, dtype = torch.device("cuda"), torch.bfloat16
        gpu = f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    from spatial_mllm_ros.model.backends import tensorrt as trt_backend

    trt_backend.DEFAULT_OPTIMIZATION_LEVEL = args.trt_opt_level
    clock = Clock(device)
    t0 = time.perf_counter()
    model = build_model(args.smoke, device, dtype)
    clock.sync()
    params = sum(p.numel() for p in model.parameters()) / 1e9
    print(f"bench_gpu: {gpu}; torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"model: {'tiny' if args.smoke else 'real-size'} v1.1, random {str(dtype)[6:]} "
          f"weights, {params:.2f} B parameters, built in {time.perf_counter() - t0:.1f} s")
    inputs = clip_inputs(model, args.frames, args.height, args.width, device, dtype)
    n_video = int((inputs["mm_token_type_ids"] == 2).sum())
    print(f"clip: {args.frames} frames {args.height}x{args.width} -> {n_video} video tokens, "
          f"prompt {inputs['input_ids'].shape[1]} tokens, {args.new_tokens} new tokens, "
          f"median of {args.runs} runs")
    head = (f"{'backend':<22}{'prepare':>9}{'2D enc':>9}{'VGGT':>9}{'connect':>9}"
            f"{'prefill':>9}{'TTFT':>9}{'decode':>11}{'peak':>9}")
    print(head + "\n" + f"{'':<22}{'s':>9}{'ms':>9}{'ms':>9}{'ms':>9}{'ms':>9}{'ms':>9}"
          f"{'tok/s':>11}{'GB':>9}")
    notes = []
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as cache:
        for name in [b.strip() for b in args.backends.split(",") if b.strip()]:
            label = name if name != "tensorrt" else f"tensorrt {args.precision}"
            problem = backend_problem(name, device)
            left = args.budget_s - (time.perf_counter() - start)
            if problem or left < 30:
                notes.append(f"{label}: not run -- {problem or 'out of time budget'}")
                print(f"{label:<22}{'not run':>9}  ({problem or 'out of time budget'})")
                continue
            vision, note, prep_s = None, "", 0.0
            if name != "torch":
                vision, note, prep_s = prepare(model, name, args.precision,
                                               (args.height, args.width), args.frames,
                                               cache, left - 20)
                notes.append(f"{label}: {note}; prepared in {prep_s:.1f} s")
                if vision is None:
                    print(f"{label:<22}{prep_s:>9.1f}  ({note})")
                    continue
            model.vision_backend = vision
            r = measure(model, inputs, clock, args.runs, args.new_tokens)
            model.vision_backend = None
            ms = {k: r[k] * 1e3 for k in ("vision_2d", "spatial", "connector", "prefill",
                                          "ttft")}
            prep = f"{prep_s:9.1f}" if name != "torch" else f"{'-':>9}"
            print(f"{label:<22}{prep}{ms['vision_2d']:9.1f}{ms['spatial']:9.1f}"
                  f"{ms['connector']:9.1f}{ms['prefill']:9.1f}{ms['ttft']:9.1f}"
                  f"{r['decode_tok_s']:11.1f}{r['peak_gb']:9.1f}")
            if vision is not None:
                vision.close()
    for line in notes:
        print(f"  {line}")
    sample_h = args.height if args.smoke else 392
    sample_w = 154 if args.smoke else 518
    if args.budget_s - (time.perf_counter() - start) > 10 or args.smoke:
        seconds, peak = presample(model, args.presample_frames, sample_h, sample_w, clock, dtype)
        print(f"space-aware pre-sampling: {args.presample_frames} frames {sample_h}x{sample_w} "
              f"through VGGT (aggregator + camera/depth/point heads, torch): {seconds:.2f} s, "
              f"peak {peak:.1f} GB")
    else:
        print("space-aware pre-sampling: not run -- out of time budget")
    del model, inputs
    if args.budget_s - (time.perf_counter() - start) > 60 or args.smoke:
        memory_table(args.smoke, device, dtype, args.height, args.width)
    else:
        print("memory per quantization: not run -- out of time budget")
    print(f"bench_gpu: done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
