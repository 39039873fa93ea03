"""Accelerated vision encoders behind the model's ``run_2d``/``run_spatial`` hooks.

Per model input size ``HxW`` the encoders are *prepared* once, in one background worker thread
of the process that holds the model (the node's model process, the evaluator, the CLI):

1. exporting -- both ONNX graphs (dynamic frame axis) are exported from the loaded model, or
   found in the cache (``<cache>/onnx/<checkpoint fingerprint>/<HxW>/``); the export holds the
   engine's lock (the model is briefly cast to float32), so an answer waits for an export but
   never for a build;
2. building -- onnxruntime sessions, or TensorRT engines from the engine cache
   (:class:`~spatial_mllm_ros.model.backends.cache.EngineCache`, built on a miss);
3. checking -- the parity check: both accelerated encoders against the model's torch encoders
   on a probe clip (random frames at that size, seed 0); the relative RMS error of each must
   be within the tolerance (:meth:`VisionSpec.tolerance`);
4. ``active`` (the accelerated encoders run), ``fallback`` (parity failed: torch runs, with a
   warning in the status) or ``failed`` (an error: torch runs, with the error in the status).

Until a size is active its clips run the torch encoders, so preparing never delays an answer
beyond an export (``model.vision_build_wait_s`` lets an offline caller wait instead). Sizes in
``model.vision_sizes`` are queued at load; any other size is queued when first seen. A clip
whose frame count lies outside the profile (TensorRT) also runs torch. Every state change is
logged once.

Ending: :meth:`AcceleratedVision.close` stops the worker between steps and joins it, and is
called at interpreter exit for any instance still open.  The worker must never outlive the
interpreter: it spends its time in native code (torch's ONNX exporter, onnxruntime, TensorRT),
and a daemon thread that re-enters Python during finalisation is ended by a forced unwind
that C++ frames turn into ``std::terminate`` -- ``terminate called without an active
exception``, exit 134, after an answer that was already printed.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import queue
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from spatial_mllm_ros.model import export as onnx_export
from spatial_mllm_ros.model.backends.cache import (
    EngineCache,
    EngineKey,
    default_cache_dir,
    file_digest,
    file_lock,
)
from spatial_mllm_ros.model.backends.config import VisionSpec
from spatial_mllm_ros.model.backends.errors import BackendError
from spatial_mllm_ros.model.backends.status import SizeStatus, VisionStatus
from spatial_mllm_ros.model.export import SPATIAL, VISION, ExportedGraph, GraphSize
from spatial_mllm_ros.model.modeling import SpatialMLLMForConditionalGeneration

__all__ = ["AcceleratedVision", "relative_error"]

LOG = logging.getLogger(__name__)
#: Encoder names in statuses and parity reports, per graph.
ENCODER = {VISION: "vision_2d", SPATIAL: "spatial"}
#: Instances not yet closed: :func:`_close_open` closes them at interpreter exit.
_OPEN: weakref.WeakSet[AcceleratedVision] = weakref.WeakSet()


class _Closed(Exception):
    """The instance was closed while its worker prepared a size: the worker stops there."""


@atexit.register
def _close_open() -> None:
    """At exit (after the main thread ended, before daemon threads are cut off), join the
    workers of instances their owner did not close; see the module docstring."""
    for vision in list(_OPEN):
        vision.close()


class Runner(Protocol):
    """One prepared graph: input on the model's device -> its output (float)."""

    backend: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """``||got - want|| / ||want||`` (float64 RMS ratio; shapes must match)."""
    if tuple(got.shape) != tuple(want.shape):
        raise BackendError(f"output {tuple(got.shape)} != torch {tuple(want.shape)}")
    a = got.detach().to(want.device, torch.float64)
    b = want.detach().to(torch.float64)
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@dataclass
class _Slot:
    """One input size's preparation and use."""

    size: GraphSize
    state: str = "queued"
    message: str = ""
    parity: dict[str, float] = field(default_factory=dict)
    runners: dict[str, Runner] | None = None
    accelerated_calls: int = 0
    torch_calls: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def snapshot(self, tolerance: float) -> SizeStatus:
        return SizeStatus(self.size.label, self.state, self.message, dict(self.parity),
                          tolerance, self.accelerated_calls, self.torch_calls)


class AcceleratedVision:
    """The model's encoders on ``spec.backend``, per input size, with torch meanwhile.

    Args:
        model: the loaded model (its ``torch_*`` encoders are the reference and the fallback).
        spec: backend, precision, cache, sizes, frame profile, tolerance.
        lock: held by every user of the model (the engine's); taken to export and to check.
        fingerprint: names the checkpoint's cached ONNX graphs; None = export into a
            temporary directory (a model not loaded from files, e.g. random weights).
    """

    def __init__(
        self,
        model: SpatialMLLMForConditionalGeneration,
        spec: VisionSpec,
        lock: threading.RLock,
        fingerprint: str | None = None,
    ) -> None:
        self.model = model
        self.spec = spec
        self.lock = lock
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.tolerance = spec.tolerance(str(self.dtype).removeprefix("torch."))
        self.root = Path(spec.cache_dir) if spec.cache_dir else default_cache_dir()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if fingerprint is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="spatial_mllm_onnx_")
            self.onnx_root = Path(self._tmp.name)
        else:
            self.onnx_root = self.root / "onnx" / fingerprint
        self.engines = EngineCache(self.root)
        self.note = self._availability()
        if self.note:
            LOG.warning("vision backend %s unavailable: %s; the torch encoders run",
                        spec.backend, self.note)
        self._slots: dict[tuple[int, int], _Slot] = {}
        self._state_lock = threading.Lock()
        self._queue: queue.Queue[_Slot | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._closed = threading.Event()
        self._paused = False
        self._outside: set[tuple[str, int]] = set()
        _OPEN.add(self)
        for height, width in spec.sizes:
            self.prepare(height, width)

    # -- public ---------------------------------------------------------------------------------
    def prepare(self, height: int, width: int) -> SizeStatus:
        """Queue ``height x width`` for preparation (no-op when already known); its status."""
        slot = self._slot(height, width, create=True, explicit=True)
        assert slot is not None
        return slot.snapshot(self.tolerance)

    def wait(self, height: int, width: int, timeout_s: float | None) -> SizeStatus:
        """Queue ``height x width`` if needed and wait up to ``timeout_s`` (None = no limit)
        for its preparation to end; its status."""
        slot = self._slot(height, width, create=True, explicit=True)
        assert slot is not None
        slot.done.wait(timeout_s)
        return slot.snapshot(self.tolerance)

    def before_clip(self, height: int, width: int) -> None:
        """Called before a clip of ``height x width`` is encoded (outside the engine's lock):
        waits up to ``build_wait_s`` for a size being prepared, queueing a new one."""
        if self.spec.build_wait_s > 0:
            slot = self._slot(height, width, create=True)
            if slot is not None:
                slot.done.wait(self.spec.build_wait_s)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """While inside, clips of sizes not yet seen run torch and queue nothing (a warm-up)."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def status(self) -> VisionStatus:
        """Backend, precision and every seen size's state (plain data)."""
        with self._state_lock:
            sizes = tuple(s.snapshot(self.tolerance) for s in self._slots.values())
        return VisionStatus(self.spec.backend, self.spec.precision, sizes, self.note)

    def close(self) -> None:
        """Stop the worker and wait until it has ended; drop temporary graphs.  Idempotent.

        Sizes still queued are not prepared.  A step in progress (an export, a session or
        engine build, the parity check: native code that cannot be interrupted) ends first,
        then the worker stops before the next one; until then this waits -- seconds for an
        export of the real encoders -- rather than leave a thread inside native code while
        the interpreter finalises (see the module docstring).  Afterwards every clip runs the
        torch encoders.  Not to be called while holding the engine's lock (the export takes
        it).
        """
        self._closed.set()
        _OPEN.discard(self)
        self._queue.put(None)
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- the hooks (VisionEncoders) -------------------------------------------------------------
    def run_2d(self, pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor
               ) -> torch.Tensor:
        """As :meth:`SpatialMLLMForConditionalGeneration.torch_vision_2d` (one grid)."""
        rows = video_grid_thw.tolist()
        vision: Any = self.model.config.vision_config
        patch, tps = int(vision.patch_size), int(vision.temporal_patch_size)
        frames = sum(int(r[0]) for r in rows) * tps
        slot = self._slot(int(rows[0][1]) * patch, int(rows[0][2]) * patch, create=True)
        runner = self._runner(slot, VISION, frames)
        if runner is not None and slot is not None:
            try:
                out = runner(pixel_values_videos)
            except Exception as err:
                self._failed(slot, f"{runner.backend} failed at run time: {err}")
            else:
                slot.accelerated_calls += 1
                self.model.encoder_calls.add(ENCODER[VISION], runner.backend)
                return out.to(self.device, self.dtype)
        if slot is not None:
            slot.torch_calls += 1
        self.model.encoder_calls.add(ENCODER[VISION], "torch")
        return self.model.torch_vision_2d(pixel_values_videos, video_grid_thw)

    def run_spatial(self, video_tchw: torch.Tensor) -> torch.Tensor:
        """As :meth:`SpatialMLLMForConditionalGeneration.torch_spatial_tokens`."""
        _, frames, _, height, width = video_tchw.shape
        slot = self._slot(int(height), int(width), create=True)
        runner = self._runner(slot, SPATIAL, int(frames))
        if runner is not None and slot is not None:
            try:
                out = torch.stack([runner(clip) for clip in video_tchw])
            except Exception as err:
                self._failed(slot, f"{runner.backend} failed at run time: {err}")
            else:
                slot.accelerated_calls += 1
                self.model.encoder_calls.add(ENCODER[SPATIAL], runner.backend)
                aggregator = self.model.spatial_parts()[0].aggregator
                return out.to(self.device, aggregator.camera_token.dtype)
        if slot is not None:
            slot.torch_calls += 1
        self.model.encoder_calls.add(ENCODER[SPATIAL], "torch")
        return self.model.torch_spatial_tokens(video_tchw)

    # -- slots ----------------------------------------------------------------------------------
    def _slot(
        self, height: int, width: int, create: bool, explicit: bool = False
    ) -> _Slot | None:
        """The size's slot; a new one is queued when ``create`` (unless paused and not
        ``explicit``, or closed)."""
        with self._state_lock:
            slot = self._slots.get((height, width))
            if slot is not None or not create or (self._paused and not explicit):
                return slot
            if self._closed.is_set():
                return None
            slot = _Slot(onnx_export.graph_size(self.model, height, width))
            self._slots[(height, width)] = slot
        if self.note:
            self._set(slot, "failed", self.note)
            slot.done.set()
            return slot
        self._queue.put(slot)
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="vision-engines",
                                            daemon=True)
            self._worker.start()
        return slot

    def _runner(self, slot: _Slot | None, graph: str, frames: int) -> Runner | None:
        if slot is None or slot.state != "active" or slot.runners is None:
            return None
        if self.spec.backend == "tensorrt" and not (
            self.spec.min_frames <= frames <= self.spec.max_frames
        ):
            if (slot.size.label, frames) not in self._outside:
                self._outside.add((slot.size.label, frames))
                LOG.info("%s: %d frames lie outside the engines' profile %d..%d; torch runs",
                         slot.size.label, frames, self.spec.min_frames, self.spec.max_frames)
            return None
        return slot.runners[graph]

    def _set(self, slot: _Slot, state: str, message: str = "") -> None:
        with self._state_lock:
            slot.state, slot.message = state, message
        if state in ("fallback", "failed"):
            LOG.warning("vision %s %s: %s; the torch encoders run", self.spec.backend,
                        slot.size.label, message)
        elif state == "active":
            LOG.info("vision %s %s active (parity %s)", self.spec.backend, slot.size.label,
                     {k: f"{v:.2g}" for k, v in slot.parity.items()})

    def _failed(self, slot: _Slot, message: str) -> None:
        slot.runners = None
        self._set(slot, "failed", message)

    def _work(self) -> None:
        while (slot := self._queue.get()) is not None:
            try:
                self._prepare(slot)
            except _Closed:
                pass  # closing: the size stays where it was, torch runs it
            except Exception as err:  # reported in the status; torch keeps answering
                self._failed(slot, f"{type(err).__name__}: {err}")
            finally:
                slot.done.set()

    def _step(self, slot: _Slot, state: str) -> None:
        """Enter ``state`` unless the instance was closed (then :class:`_Closed`)."""
        if self._closed.is_set():
            raise _Closed
        self._set(slot, state)

    # -- preparation ----------------------------------------------------------------------------
    def _prepare(self, slot: _Slot) -> None:
        if self._closed.is_set():
            raise _Closed
        graphs, cached = self._graphs(slot)
        self._step(slot, "building")
        try:
            runners = self._load(graphs, slot.size)
        except BackendError:
            if not cached:
                raise
            LOG.warning("cached ONNX graphs of %s do not load; exporting them again",
                        slot.size.label)
            shutil.rmtree(Path(graphs[VISION].path).parent, ignore_errors=True)
            graphs, _ = self._graphs(slot)
            runners = self._load(graphs, slot.size)
        self._step(slot, "checking")
        slot.parity = self._check(slot.size, runners)
        worst = {k: v for k, v in slot.parity.items() if not v <= self.tolerance}
        if worst:
            figures = ", ".join(f"{k} {v:.3g}" for k, v in worst.items())
            self._set(slot, "fallback", f"parity {figures} > tolerance {self.tolerance:g}")
            return
        slot.runners = runners
        self._set(slot, "active")

    def _graphs(self, slot: _Slot) -> tuple[dict[str, ExportedGraph], bool]:
        """The size's ONNX graphs: (graphs, whether they came from the cache)."""
        folder = self.onnx_root / slot.size.label
        manifest = folder / "export.json"
        with file_lock(folder / ".lock"):
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                saved = json.loads(manifest.read_text(encoding="utf-8"))
                graphs = {name: ExportedGraph(**entry) for name, entry in saved.items()}
                if set(graphs) == {VISION, SPATIAL} and all(
                    f.is_file() for g in graphs.values() for f in g.files
                ):
                    return graphs, True
            self._step(slot, "exporting")
            with self.lock:
                graphs = onnx_export.export_encoders(
                    self.model, folder, slot.size.height, slot.size.width
                )
            text = json.dumps({k: g.to_dict() for k, g in graphs.items()}, indent=2)
            manifest.write_text(text + "\n", encoding="utf-8")
        return graphs, False

    def _availability(self) -> str:
        if self.spec.backend == "onnxruntime":
            from spatial_mllm_ros.model.backends import onnxrt

            return onnxrt.availability(self.device)
        from spatial_mllm_ros.model.backends import tensorrt

        return tensorrt.availability(self.device)

    def _profile(self, graph: str, size: GraphSize) -> tuple[tuple[int, ...], ...]:
        frames = (self.spec.min_frames, self.spec.opt_frames, self.spec.max_frames)
        return tuple(size.input_shape(graph, f) for f in frames)

    def _load(self, graphs: dict[str, ExportedGraph], size: GraphSize) -> dict[str, Runner]:
        if self.spec.backend == "onnxruntime":
            from spatial_mllm_ros.model.backends.onnxrt import OnnxRuntimeRunner

            def shape_of(graph: str) -> Any:
                return lambda shape: size.output_shape(graph, size.frames_of(graph, shape[0]))

            return {name: OnnxRuntimeRunner(g.path, shape_of(name), self.device)
                    for name, g in graphs.items()}
        return {name: self._engine(g, size) for name, g in graphs.items()}

    def _engine(self, graph: ExportedGraph, size: GraphSize) -> Runner:
        from spatial_mllm_ros.model.backends import tensorrt

        version, capability = tensorrt.environment(self.device)
        low, opt, high = self._profile(graph.name, size)
        key = EngineKey(
            graph=f"{graph.name}-{size.label}",
            onnx_sha256=file_digest(graph.files),
            precision=self.spec.precision,
            trt_version=version,
            compute_capability=capability,
            profile=(low, opt, high),
        )
        input_name = next(iter(graph.inputs))
        runner: Runner = self.engines.get_or_build(
            key,
            build=lambda: tensorrt.build_plan(graph.path, input_name, (low, opt, high),
                                              self.spec.precision),
            load=lambda plan: tensorrt.TensorRTRunner(plan, self.device, (low[0], high[0])),
        )
        return runner

    def probe_frames(self) -> int:
        """Frames of the parity probe clip: 4, within the profile."""
        return max(self.spec.min_frames, min(self.spec.opt_frames, 4))

    def _check(self, size: GraphSize, runners: dict[str, Runner]) -> dict[str, float]:
        frames = self.probe_frames()
        inputs = onnx_export.example_inputs(size, frames, seed=0, device=self.device)
        pixels = inputs["pixel_values"].to(self.dtype)
        video = inputs["video_tchw"]
        grid = torch.tensor([[frames // size.temporal, size.grid_h, size.grid_w]],
                            device=self.device)
        with self.lock, torch.no_grad():
            want_2d = self.model.torch_vision_2d(pixels, grid)
            want_spatial = self.model.torch_spatial_tokens(video.unsqueeze(0))[0]
            return {
                ENCODER[VISION]: relative_error(runners[VISION](pixels), want_2d),
                ENCODER[SPATIAL]: relative_error(runners[SPATIAL](video), want_spatial),
            }

