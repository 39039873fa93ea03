"""The model in a child process, behind the :class:`~spatial_mllm_ros.answering.types.Answerer`
interface.

Why: the node's camera callbacks and the model share one Python interpreter otherwise, and the
model's Python work (pre-processing, the generation loop, frame sampling) holds the GIL for
long stretches; on a small machine ingestion then falls behind while questions are answered
(measured by ``benchmarks/bench_answering.py``). In a child process the model has its own
interpreter; the node hands it the selected frames' colour images through shared memory
(:mod:`.shared_frames`: one copy into a segment the model process reads; the pipe carries
only metadata) and receives the result.

The child is started with the ``spawn`` method (no fork of a process holding DDS threads),
loads the engine of an :class:`~spatial_mllm_ros.model.spec.EngineSpec` with
:func:`spatial_mllm_ros.model.spec.load_engine`, reports success or the load error, then
serves requests until told to stop or its pipe closes. A child that dies
turns every later request into :class:`ModelProcessError`, which the pipeline answers as
MODEL_ERROR with the cause.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from spatial_mllm_ros.answering.errors import ModelProcessError
from spatial_mllm_ros.answering.shared_frames import FrameReceiver, FrameSender, PackedFrames
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.model.spec import EngineSpec
from spatial_mllm_ros.sampling.predicted import PredictedGeometry

__all__ = ["ProcessAnswerer"]

_STOP = "stop"


def _plain(method: str, result: Any) -> Any:
    """The engine's result in types the node can unpickle without importing torch or
    transformers (otherwise the first answer would pay for those imports in the node)."""
    if method == "answer":
        assert isinstance(result, GenerationResult)  # plain Python already
        return result
    return [PredictedGeometry(np.asarray(g.world_points, dtype=np.float32),
                              np.asarray(g.confidence, dtype=np.float32)) for g in result]


def _warm_up(engine: Any) -> None:
    """One tiny generation, so that one-off first-call costs (kernel selection, lazy
    initialisation in the processor and the model) are paid while loading, not by the first
    question. A failure here is left for the first real request to report."""
    import numpy as np

    try:
        engine.answer_images([np.zeros((56, 56, 3), dtype=np.uint8)] * 2, "warm-up", 1)
    except Exception:  # reported by the first request instead, with its context
        return


def _serve(conn: Connection, spec: EngineSpec) -> None:
    """Child process: load the engine, then answer requests until stopped."""
    from spatial_mllm_ros.model.spec import load_engine

    engine, error = load_engine(spec)
    if engine is not None:
        _warm_up(engine)
    layout = str(engine.checkpoint_layout) if engine is not None else ""
    conn.send((engine is not None, error, layout))
    if engine is None:
        conn.close()
        return
    receiver = FrameReceiver()
    try:
        _serve_requests(conn, engine, receiver)
    finally:
        receiver.close()


def _serve_requests(conn: Connection, engine: Any, receiver: FrameReceiver) -> None:
    """Child process: answer requests until stopped; a request's first argument is its
    frames as :class:`PackedFrames` (pixels in shared memory)."""
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the node went away
            return
        if request[0] == _STOP:
            return
        method, (packed, *rest) = request
        try:
            frames = receiver.unpack(packed)
            result = _plain(method, getattr(engine, method)(frames, *rest))
        except Exception as err:  # reported to the node, which answers MODEL_ERROR
            conn.send(("error", f"{type(err).__name__}: {err}"))
        else:
            conn.send(("ok", result))


class ProcessAnswerer:
    """An :class:`Answerer` (and geometry predictor) whose engine lives in a child process.

    Args:
        spec: the model to load (the node's ``Settings.engine``).
        start_timeout_s: longest wait for the model to load.

    Raises:
        ModelProcessError: the child could not start or the model failed to load (the message
            carries the child's reason).
    """

    def __init__(self, spec: EngineSpec, start_timeout_s: float = 900.0) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child, spec), name="spatial-mllm-model", daemon=True
        )
        self._lock = threading.Lock()
        self._frames = FrameSender()  # used under _lock: one request in the segment at a time
        self._proc.start()
        child.close()
        if not self._conn.poll(start_timeout_s):
            self.close()
            raise ModelProcessError(f"the model process did not load within {start_timeout_s} s")
        try:
            loaded, error, layout = self._conn.recv()
        except EOFError as err:
            self.close()
            raise ModelProcessError(
                f"the model process exited while loading (exit code {self._proc.exitcode})"
            ) from err
        if not loaded:
            self.close()
            raise ModelProcessError(error)
        self.checkpoint_layout: str = layout
        """``v1.0`` or ``v1.1``: the loaded checkpoint's layout (selects the prompt family)."""

    @property
    def pid(self) -> int | None:
        """Process id of the model process."""
        return self._proc.pid

    def _call(self, method: str, frames: Sequence[Frame], *args: Any) -> Any:
        with self._lock:  # one request at a time on the pipe and in the shared segment
            if not self._proc.is_alive():
                raise ModelProcessError(
                    f"the model process is not running (exit code {self._proc.exitcode})"
                )
            try:
                packed: PackedFrames = self._frames.pack(frames)
            except (OSError, ValueError) as err:  # /dev/shm full, a frame without colour
                raise ModelProcessError(
                    f"could not hand the frames to the model process: {err}") from err
            try:
                self._conn.send((method, (packed, *args)))
                status, payload = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError) as err:
                raise ModelProcessError(
                    f"the model process died (exit code {self._proc.exitcode})"
                ) from err
        if status == "error":
            raise ModelProcessError(payload)
        return payload

    def answer(
        self, frames: Sequence[Frame], prompt: str, max_new_tokens: int = 64
    ) -> GenerationResult:
        """The engine's answer, computed in the model process."""
        result: GenerationResult = self._call("answer", frames, prompt, max_new_tokens)
        return result

    def predict_geometry(self, frames: Sequence[Frame]) -> list[PredictedGeometry]:
        """The engine's per-frame predicted geometry (points and confidence only), computed in
        the model process."""
        result: list[PredictedGeometry] = self._call("predict_geometry", frames)
        return result

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the model process and return its memory (and the shared frame segment)."""
        try:
            with self._lock:
                self._conn.send((_STOP,))
        except (OSError, BrokenPipeError, ValueError):
            pass  # already gone
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout_s)
        self._conn.close()
        with self._lock:
            self._frames.close()
