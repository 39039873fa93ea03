"""The model server (``spatial-mllm-serve``) against the model on the robot: what crosses the
network, how much slower an answer is, and how the server scales.

    python benchmarks/bench_serve.py [--questions N] [--port P]

Three parts, printed as tables (figures are printed, never asserted):

1. **Bytes per question** (no server): the request body of one question over the shelf frames
   (``../shared/data/real_rgbd_shelf``, 640x480) at the model input size of each profile
   (``desktop_gpu`` 476x644 x 16 frames, ``jetson_orin`` 364x504 x 8, ``cpu_tiny`` 224x224-ish
   x 8), per encoding (png, raw, jpeg q90), against the raw camera stream's bytes per second
   (640x480 rgb8 + 16UC1 depth at 30 Hz); and JPEG's effect on the model's input pixels
   (PSNR, mean absolute difference).
2. **Latency remote / local** (same machine, tiny checkpoint, ``cpu_tiny``): the same question
   over the same 8 frames, answered by the local model process
   (:class:`~spatial_mllm_ros.answering.process.ProcessAnswerer`, what the node uses) and by
   the server (:class:`~spatial_mllm_ros.answering.remote.RemoteAnswerer`), N times each,
   medians.
3. **Questions per second** with 1 and 2 replicas, 3 robots asking back to back (3 threads,
   one client name each), N questions each.

Needs Ray Serve (``ray[serve]``) and ``SPATIAL_MLLM_TINY_CHECKPOINT`` as ``make`` sets it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from spatial_mllm_ros.answering.process import ProcessAnswerer  # noqa: E402
from spatial_mllm_ros.answering.remote import RemoteAnswerer, RemoteConfig  # noqa: E402
from spatial_mllm_ros.answering.wire import (  # noqa: E402
    WireLimits,
    decode_frames,
    decode_request,
    encode_request,
    model_images,
)
from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir  # noqa: E402
from spatial_mllm_ros.settings import Settings  # noqa: E402

SHELF = REPO.parent / "shared" / "data" / "real_rgbd_shelf"
PROMPT = "How many boxes are there?"
TOKEN = "bench-token"
#: the raw stream a robot would send instead: 640x480 rgb8 + 16UC1 depth, 30 Hz
STREAM_BYTES_PER_S = (640 * 480 * 3 + 640 * 480 * 2) * 30


def bytes_per_question(frames: list) -> None:
    print("\n== 1. bytes per question (request body) vs the raw stream "
          f"({STREAM_BYTES_PER_S / 1e6:.1f} MB/s)")
    print(f"{'profile':<12} {'size':>8} {'frames':>6} {'encoding':>8} {'bytes':>11} "
          f"{'s of stream':>11} {'encode ms':>9}")
    for profile in ("desktop_gpu", "jetson_orin", "cpu_tiny"):
        settings = Settings.from_profile(profile)
        k = settings.pipeline.frame_budget
        clip = [f.rgb for f in frames[:k]]
        images = model_images(clip, settings.engine.min_pixels, settings.engine.max_pixels)
        size = f"{images[0].shape[1]}x{images[0].shape[0]}"
        for encoding in ("png", "raw", "jpeg"):
            t0 = time.perf_counter()
            body = encode_request("answer", images, prompt=PROMPT, max_new_tokens=16,
                                  encoding=encoding)
            ms = (time.perf_counter() - t0) * 1e3
            print(f"{profile:<12} {size:>8} {len(images):>6} {encoding:>8} {len(body):>11,} "
                  f"{len(body) / STREAM_BYTES_PER_S:>11.3f} {ms:>9.1f}")
            if encoding == "jpeg":
                request, blobs = decode_request(body, WireLimits(max_bytes=1 << 30))
                back = decode_frames(request, blobs)
                diff = np.concatenate([(a.astype(np.float64) - b).ravel()
                                       for a, b in zip(images, back, strict=True)])
                psnr = 10 * np.log10(255.0 ** 2 / max(float(np.mean(diff ** 2)), 1e-12))
                print(f"{'':<12} jpeg q90 inputs: PSNR {psnr:.1f} dB, mean |diff| "
                      f"{float(np.mean(np.abs(diff))):.2f} levels, max {np.abs(diff).max():.0f}")


def start_server(port: int, replicas: int) -> subprocess.Popen[str]:
    env = {**os.environ, "SPATIAL_MLLM_TOKEN": TOKEN}
    proc = subprocess.Popen(
        ["spatial-mllm-serve", "--config", "cpu_tiny", "--port", str(port), "--replicas",
         str(replicas), "--num-cpus", "0.5", "--client-cap", "4"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        start_new_session=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "serving" in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc
        if "did not start" in line:
            break
    raise SystemExit(f"the server did not start (port {port})")


def stop_server(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, 2)
    proc.wait(120)


def latency(frames: list, port: int, n: int) -> None:
    settings = Settings.from_profile("cpu_tiny")
    clip = frames[:8]
    os.environ["SPATIAL_MLLM_TOKEN"] = TOKEN
    local = ProcessAnswerer(settings.engine)
    server = start_server(port, 1)
    try:
        remote = RemoteAnswerer(RemoteConfig(endpoint=f"http://127.0.0.1:{port}",
                                             client="bench"))
        times: dict[str, list[float]] = {"local": [], "remote": []}
        for _ in range(n):
            for name, answerer in (("local", local), ("remote", remote)):
                t0 = time.perf_counter()
                answerer.answer(clip, PROMPT, 16)
                times[name].append(time.perf_counter() - t0)
    finally:
        local.close()
        stop_server(server)
    lo, re_ = statistics.median(times["local"]), statistics.median(times["remote"])
    print(f"\n== 2. answer latency, 8 frames, 16 tokens, tiny model, {n} runs each (median)")
    print(f"local model process {lo * 1e3:.0f} ms, server {re_ * 1e3:.0f} ms, "
          f"remote/local {re_ / lo:.2f}")


def throughput(frames: list, port: int, n: int) -> None:
    print(f"\n== 3. questions per second, 3 robots asking back to back, {n} each")
    clip = frames[:8]
    for replicas in (1, 2):
        server = start_server(port, replicas)
        try:
            errors: list[str] = []

            def robot(name: str, errors: list[str] = errors) -> None:
                answerer = RemoteAnswerer(RemoteConfig(
                    endpoint=f"http://127.0.0.1:{port}", client=name))
                for _ in range(n):
                    try:
                        answerer.answer(clip, PROMPT, 16)
                    except Exception as err:  # BUSY or lost: counted, not raised
                        errors.append(f"{type(err).__name__}: {err}")

            threads = [threading.Thread(target=robot, args=(f"robot{i}",)) for i in (1, 2, 3)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            stop_server(server)
        done = 3 * n - len(errors)
        print(f"{replicas} replica(s): {done} answered in {wall:.1f} s = {done / wall:.2f} "
              f"questions/s ({len(errors)} not answered{': ' + errors[0] if errors else ''})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=5, help="per robot / per latency run")
    parser.add_argument("--port", type=int, default=8011)
    args = parser.parse_args()
    frames = load_rgbd_dir(SHELF)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    bytes_per_question(frames)
    latency(frames, args.port, args.questions)
    throughput(frames, args.port, args.questions)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
