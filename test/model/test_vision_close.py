"""The accelerated encoders' background worker ends with its engine, and the engine says what
ran its encoders (issue 16, point 1).

A worker still inside native code (torch's ONNX exporter, onnxruntime) when the interpreter
finalises aborts the process with ``terminate called without an active exception``.  The
fault is injected at a known point: the export waits until ``close()`` has begun.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

from testkit.tiny import SMALL_PIXELS, real_images, tiny_checkpoint

from spatial_mllm_ros.model import export as onnx_export
from spatial_mllm_ros.model.backends.config import VisionSpec
from spatial_mllm_ros.model.engine import SpatialMLLMEngine

PROMPT = "How many boxes are there?"
SIZE = (252, 364)  # the shelf's 640x480 frames at SMALL_PIXELS (H, W)


def _spec(cache: Path) -> VisionSpec:
    return VisionSpec("onnxruntime", "fp32", str(cache), (), 2, 4, 8, 0.0, 0.0)


def test_torch_engine_says_torch_ran_each_encoder() -> None:
    engine = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"), max_pixels=SMALL_PIXELS)
    engine.answer_images(real_images(2), PROMPT, max_new_tokens=2)
    usage = engine.vision_usage
    assert usage.requested == "torch"
    assert usage.calls == {"vision_2d": {"torch": 1}, "spatial": {"torch": 1}}
    assert usage.to_json()["used"] == {"vision_2d": "torch", "spatial": "torch"}


def test_close_waits_for_the_step_in_progress_and_stops_the_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"), max_pixels=SMALL_PIXELS,
                                               vision=_spec(tmp_path))
    vision: Any = engine.model.vision_backend
    exporting = threading.Event()
    exported = threading.Event()
    real_export = onnx_export.export_encoders

    def export_during_close(*args: Any, **kwargs: Any) -> Any:
        exporting.set()
        vision._closed.wait()  # the known point: close() has begun, the export is running
        graphs = real_export(*args, **kwargs)
        exported.set()
        return graphs

    monkeypatch.setattr(onnx_export, "export_encoders", export_during_close)
    engine.prepare_vision(*SIZE, wait_s=0.0)
    assert exporting.wait(120), "the worker never started the export"
    worker = vision._worker
    engine.close()
    assert exported.is_set()  # close() returned only after the export it interrupted
    assert not worker.is_alive()
    (size,) = engine.vision_backend_status.sizes
    assert size.state == "exporting"  # stopped before building
    # the engine still answers, on torch, and says so
    engine.answer_images(real_images(2), PROMPT, max_new_tokens=2)
    assert engine.vision_usage.to_json()["used"] == {"vision_2d": "torch", "spatial": "torch"}


def test_a_process_that_never_closes_its_engine_exits_cleanly(tmp_path: Path) -> None:
    """The evaluator's case: an onnxruntime engine whose size is being prepared when the
    process ends without ``close()`` (the worker is joined at interpreter exit)."""
    script = textwrap.dedent(f"""
        from testkit.tiny import SMALL_PIXELS, real_images, tiny_checkpoint
        from spatial_mllm_ros.model.backends.config import VisionSpec
        from spatial_mllm_ros.model.engine import SpatialMLLMEngine
        spec = VisionSpec("onnxruntime", "fp32", {str(tmp_path)!r}, (), 2, 4, 8, 0.0, 0.0)
        engine = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"),
                                                   max_pixels=SMALL_PIXELS, vision=spec)
        engine.answer_images(real_images(2), "How many boxes?", max_new_tokens=2)
        print(engine.vision_usage.to_json()["used"])
    """)
    test_dir = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600, cwd=test_dir, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "terminate called" not in res.stderr, res.stderr[-3000:]
    assert "'vision_2d': 'torch'" in res.stdout, res.stdout
