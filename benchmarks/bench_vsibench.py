"""VSI-Bench runner throughput on the tiny model: questions per second with 1 worker (in this
process) and 2 Ray workers (a local cluster, one CPU each), in one run, and geometry passes per
question for ``space_aware``.

The dataset is generated (rendered rooms as mp4, parquet, card; ``test/testkit/
vsibench_data.py``). Rates count the answering phase, from "workers ready" (models loaded,
Ray started) to the last result; the start-up is printed beside them. Figures are printed,
never asserted.

    python benchmarks/bench_vsibench.py [--scenes N] [--nframes N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "test"))

from testkit.vsibench_data import SCENES, SceneSpec, write_dataset  # noqa: E402

from spatial_mllm_ros.benchmark.dataset import load_questions, parquet_files  # noqa: E402
from spatial_mllm_ros.benchmark.pool import PoolOptions  # noqa: E402
from spatial_mllm_ros.benchmark.runner import RunSummary, run_benchmark  # noqa: E402
from spatial_mllm_ros.benchmark.worker import RunConfig  # noqa: E402


def _run(dataset: Path, out: Path, workers: int, sampling: str, nframes: int,
         checkpoint: str) -> tuple[RunSummary, float, float]:
    """One run: (summary, start-up seconds, answering seconds)."""
    overrides = {"model.max_pixels": 15680, "answer.max_new_tokens": 8,
                 "answer.grounding": False, "model.checkpoint": checkpoint}
    config = RunConfig("cpu_tiny", overrides, str(dataset), str(out), nframes, sampling, 16)
    questions = load_questions(parquet_files(dataset))
    t0 = time.monotonic()
    ready: list[float] = []
    summary = run_benchmark(config, questions, PoolOptions("", workers),
                            {"sampling": sampling, "nframes": nframes}, progress=False,
                            on_ready=lambda _n: ready.append(time.monotonic()))
    end = time.monotonic()
    return summary, ready[0] - t0, end - ready[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--nframes", type=int, default=8)
    args = ap.parse_args()
    checkpoint = os.environ.get("SPATIAL_MLLM_TINY_CHECKPOINT",
                                str(ROOT / "artifacts" / "tiny-v1.1"))
    scenes = tuple(SceneSpec(s.dataset, f"{s.name}_{i}", 10 + i)
                   for i, s in zip(range(args.scenes), SCENES * args.scenes, strict=False))
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        write_dataset(t / "data", frames=24, width=160, height=120, scenes=scenes)
        rates = {}
        for workers in (1, 2):
            summary, startup, answering = _run(t / "data", t / f"uniform{workers}", workers,
                                               "uniform", args.nframes, checkpoint)
            rates[workers] = summary.answered / answering
            print(f"uniform, {workers} worker(s): {summary.answered} questions in "
                  f"{answering:.1f} s = {rates[workers]:.2f} questions/s "
                  f"(start-up {startup:.1f} s)")
        print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}x questions/s "
              f"({os.cpu_count()} CPUs)")
        summary, startup, answering = _run(t / "data", t / "space_aware", 1, "space_aware",
                                           args.nframes, checkpoint)
        print(f"space_aware, 1 worker: {summary.answered} questions, {summary.geometry_passes} "
              f"geometry passes = {summary.geometry_passes / max(summary.answered, 1):.2f} per "
              f"question ({args.scenes} scenes); {summary.answered / answering:.2f} questions/s")
        (t / "space_aware" / "results.jsonl").unlink()  # answer again, geometry cache kept
        again, _, answering = _run(t / "data", t / "space_aware", 1, "space_aware",
                                   args.nframes, checkpoint)
        print(f"space_aware again with the cache: {again.answered} questions, "
              f"{again.geometry_passes} geometry passes; {again.answered / answering:.2f} "
              f"questions/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
