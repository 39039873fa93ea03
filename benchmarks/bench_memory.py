"""Memory of the real-size Spatial-MLLM (v1.1 layout, random bfloat16 weights) on this CPU, per
``model.quantization``, beside the memory planner's prediction (README, "Fit the device").

What it builds (once, into ``--dir``; no download): the real-size v1.1 checkpoint --
Qwen2.5-VL-3B, VGGT-1B's aggregator, the v1.1 connector; no VGGT heads (an RGB-D robot's
``model.geometry_heads: false``) and no ``lm_head.weight`` (tied to the embeddings, as in
Qwen2.5-VL-3B's files) -- as safetensors shards of random bfloat16 weights (normal,
std 0.02), with the tiny checkpoint's tokenizer and its special-token ids (the vocabulary
stays 151,936: generated ids past the tiny tokenizer decode to nothing).  ~9.9 GB on disk.

What it measures, for each of ``none``, ``int8_weight`` and ``int4_weight``, in a fresh
subprocess (so each peak is its own): the engine's load (``SpatialMLLMEngine.from_pretrained``
exactly as the node loads it: tensor by tensor, the decoder's Linear weights quantized as they
are assigned) and one answer to an 8-frame question (``--frames``) at ``--max-pixels`` (small,
so that the 2-core CPU answers in minutes; default 12544 = 112x112: 16 video tokens per frame
pair) with ``--new-tokens`` greedy tokens.  Columns:

* ``w_live``: the bytes of the loaded model's tensors (every storage once; a torchao weight
  counts its int8/uint8 data, scales and zero points), GB; ``w_plan`` the planner's weights.
* ``act``: the growth of the anonymous resident memory (``RssAnon``, sampled every 20 ms)
  from after the load to the peak of the load and answer, GB: the activations.
* ``held``: what the process holds at its peak: the base's mapped libraries, every
  anonymous byte at the peak (``anon``: the quantized weights, the activations, and what the
  quantizing load's temporaries left in the allocator), and the weights that are views of
  the mapped checkpoint; its ``ratio`` = held / planned (the conservative one).
* ``rss_base``: the resident set before the load (the interpreter with torch and
  transformers), GB: on the CPU, what stands for the planner's runtime overhead.
* ``measured`` = ``rss_base + w_live + act``; ``planned``: the planner's peak
  (:mod:`spatial_mllm_ros.model.plan`, its 1.0 GB overhead included) for the same checkpoint
  (its safetensors headers), dtype, quantization, frames and pixels; ``ratio`` =
  measured / planned.
* ``vm_hwm``: the process's peak resident set (``VmHWM``), GB.  Above ``measured`` because the
  loader reads the safetensors files through ``mmap``: an unquantized weight stays a view of
  the file's pages (file-backed, reclaimable page cache; ``anon`` stays small), and a weight
  the loader quantized leaves its bf16 file pages resident until the kernel needs them.

Run: ``python benchmarks/bench_memory.py [--dir DIR] [--only none,int8_weight,int4_weight]``.
Needs ~13 GB of available memory (else it prints one ``SKIP`` line and exits 0) and ~10 GB
of disk for the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GB = 1e9
SHARD_BYTES = 1_000_000_000
NEEDS_BYTES = 13_000_000_000
"""Memory available (``MemAvailable``) below which the benchmark skips (``make bench`` on a
busy machine): the unquantized answer peaks at ~11 GB resident."""
TOKEN_KEYS = ("bos_token_id", "eos_token_id", "image_token_id", "video_token_id",
              "vision_start_token_id", "vision_end_token_id")
PROCESSOR_FILES = ("chat_template.json", "merges.txt", "preprocessor_config.json",
                   "tokenizer.json", "tokenizer_config.json", "video_preprocessor_config.json",
                   "vocab.json", "generation_config.json")


def write_checkpoint(out: Path, tiny: Path) -> None:
    """The real-size v1.1 checkpoint with random bf16 weights and no VGGT heads, in shards."""
    import torch
    from safetensors.torch import save_file

    from spatial_mllm_ros.model.configuration import real_config, released_config_dict
    from spatial_mllm_ros.model.layout import HEAD_NAMES, real_layout

    if (out / "model.safetensors.index.json").is_file():
        return
    out.mkdir(parents=True, exist_ok=True)
    tiny_cfg = json.loads((tiny / "config.json").read_text())
    config = released_config_dict(real_config("v1.1"), tiny_cfg.get("vision_token_id", 0))
    config.update({k: tiny_cfg[k] for k in TOKEN_KEYS if k in tiny_cfg})
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name in PROCESSOR_FILES:
        if (tiny / name).is_file():
            shutil.copy(tiny / name, out / name)
    gen = torch.Generator().manual_seed(0)
    weight_map: dict[str, str] = {}
    shard: dict[str, torch.Tensor] = {}
    size, index = 0, 0

    def flush() -> None:
        nonlocal shard, size, index
        if shard:
            file = f"model-{index:05d}.safetensors"
            save_file(shard, str(out / file))
            weight_map.update({k: file for k in shard})
            shard, size, index = {}, 0, index + 1

    for name, shape in real_layout("v1.1"):
        if name == "lm_head.weight" or any(f".{head}." in name or name.startswith(f"{head}.")
                                           for head in HEAD_NAMES):
            continue  # tied to the embeddings (as Qwen2.5-VL-3B's files); no heads
        tensor = (torch.randn(shape, generator=gen) * 0.02).to(torch.bfloat16)
        shard[name] = tensor
        size += tensor.numel() * 2
        if size >= SHARD_BYTES:
            flush()
    flush()
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}, indent=1))


def _meminfo_kb(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class AnonPeak:
    """Samples this process's ``RssAnon`` every 20 ms in a thread; ``peak`` in bytes."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _status_kb("RssAnon") * 1024)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_kb("RssAnon") * 1024)
        return self.peak


def live_weight_bytes(model: Any) -> tuple[int, int]:
    """(all, quantized): bytes of the storages behind every parameter and buffer of
    ``model``, each storage once, and of those the torchao weights' (int8/uint8 data, scales,
    zero points: made by the load, anonymous memory; the others are views of the
    checkpoint's mapped files)."""
    seen: set[int] = set()
    total = quantized = 0
    for tensor in (*model.parameters(), *model.buffers()):
        names = list(getattr(tensor, "tensor_data_names", ()))
        names += list(getattr(tensor, "optional_tensor_data_names", ()))
        leaves = [getattr(tensor, n, None) for n in names] if names else [tensor]
        for leaf in leaves:
            if leaf is None:
                continue
            storage = leaf.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
                quantized += storage.nbytes() if names else 0
    return total, quantized


def child(args: argparse.Namespace) -> int:
    """One configuration: load and answer, print the measurements as one JSON line."""
    import numpy as np
    import torch

    from spatial_mllm_ros.model.engine import SpatialMLLMEngine

    torch.set_num_threads(os.cpu_count() or 1)
    base = _status_kb("VmRSS") * 1024
    anon_base = _status_kb("RssAnon") * 1024
    anon = AnonPeak()
    t0 = time.monotonic()
    engine = SpatialMLLMEngine.from_pretrained(
        args.dir, dtype="bfloat16", quantization=args.quantization, geometry_heads=False,
        max_pixels=args.max_pixels, min_pixels=min(args.max_pixels, 3136))
    load_s = time.monotonic() - t0
    rss_load = _status_kb("VmHWM") * 1024
    anon_load = anon.peak
    anon_after_load = _status_kb("RssAnon") * 1024
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(args.frames)]
    t0 = time.monotonic()
    result = engine.answer_images(frames, "How many chairs are in this room?",
                                  args.new_tokens)
    answer_s = time.monotonic() - t0
    peak = anon.stop()
    weights, quantized = live_weight_bytes(engine.model)
    print(json.dumps({
        "quantization": args.quantization, "rss_base": base, "rss_load": rss_load,
        "weights": weights, "act_peak": max(0, peak - anon_after_load),
        "measured": base + weights + max(0, peak - anon_after_load),
        # the base's mapped libraries + every anonymous byte at the peak + mapped weights
        "held": base - anon_base + peak + weights - quantized,
        "anon_base": anon_base, "anon_after_load": anon_after_load,
        "anon_load": anon_load, "rss_answer": _status_kb("VmHWM") * 1024, "anon_peak": peak,
        "load_s": load_s, "answer_s": answer_s, "video_tokens": result.num_video_tokens,
        "size": list(result.resized_size), "quantized": len(engine.report.quantization.quantized),
    }), flush=True)
    return 0


def predicted(directory: Path, quantization: str, frames: int, max_pixels: int) -> Any:
    from spatial_mllm_ros.model.plan import (
        PlanRequest,
        Quantization,
        plan,
        sizes_for_checkpoint,
        weight_groups,
    )

    shapes, sizes = sizes_for_checkpoint(directory)
    groups = weight_groups(shapes, tie_word_embeddings=not sizes.lm_head_held,
                           layers_read=sizes.spatial_layers_read)
    req = PlanRequest(memory_gb=1000.0, dtype="bfloat16",
                      quantization=Quantization(quantization), frame_budget=frames,
                      max_pixels=max_pixels)
    return plan(groups, sizes, req)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/spatial_mllm_real_random_v1.1"))
    parser.add_argument("--tiny", type=Path,
                        default=Path(os.environ.get("SPATIAL_MLLM_TINY_CHECKPOINT",
                                                    ROOT / "artifacts" / "tiny-v1.1")))
    parser.add_argument("--only", default="none,int8_weight,int4_weight")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--max-pixels", type=int, default=12544)
    parser.add_argument("--new-tokens", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quantization", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    available = _meminfo_kb("MemAvailable") * 1024
    if available < NEEDS_BYTES:
        print(f"bench_memory: SKIP -- {available / GB:.1f} GB of memory available, "
              f"{NEEDS_BYTES / GB:.0f} GB needed for the real-size model; nothing was measured")
        return 0
    t0 = time.monotonic()
    write_checkpoint(args.dir, args.tiny)
    print(f"checkpoint: {args.dir} (real-size v1.1, random bf16, no VGGT heads), "
          f"ready in {time.monotonic() - t0:.0f} s; {args.frames} frames at max_pixels "
          f"{args.max_pixels}, {args.new_tokens} new tokens, {os.cpu_count()} CPU threads",
          flush=True)
    print(f"{'quantization':<13} {'w_plan':>7} {'w_live':>7} {'planned':>8} {'measured':>8} "
          f"{'ratio':>6} {'held':>6} {'ratio':>6} {'rss_base':>8} {'act':>6} {'anon':>6} "
          f"{'vm_hwm':>7} {'load_s':>7} {'answer_s':>8}", flush=True)
    for q in args.only.split(","):
        cmd = [sys.executable, __file__, "--child", "--quantization", q, "--dir", str(args.dir),
               "--frames", str(args.frames), "--max-pixels", str(args.max_pixels),
               "--new-tokens", str(args.new_tokens)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
        if run.returncode != 0 or not lines:
            tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"{q:<13} FAILED (exit {run.returncode}): {tail}", flush=True)
            continue
        m = json.loads(lines[-1])
        p = predicted(args.dir, q, args.frames, args.max_pixels)
        print(f"{q:<13} {p.weights_gb:>7.2f} {m['weights'] / GB:>7.2f} {p.peak_gb:>8.2f} "
              f"{m['measured'] / GB:>8.2f} {m['measured'] / GB / p.peak_gb:>6.2f} "
              f"{m['held'] / GB:>6.2f} {m['held'] / GB / p.peak_gb:>6.2f} "
              f"{m['rss_base'] / GB:>8.2f} {m['act_peak'] / GB:>6.2f} "
              f"{m['anon_peak'] / GB:>6.2f} {m['rss_answer'] / GB:>7.2f} "
              f"{m['load_s']:>7.1f} {m['answer_s']:>8.1f}", flush=True)
        print(f"  {json.dumps(m)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
