"""The model process's side of :mod:`.process`: load the engine, then serve the node's
requests on the pipe until told to stop or the pipe closes.

The messages are :mod:`.protocol`'s frozen dataclasses, one pickled per message: a
:class:`~.protocol.LoadReport` once after loading; then for every request its
:class:`~.protocol.Token` messages (an answer), an :class:`~.protocol.Alive` every
:data:`HEARTBEAT_S` while it is worked on (from a thread of its own, so also during a long
encoder pass or prefill, where no token comes), and its :class:`~.protocol.Reply` or
:class:`~.protocol.Failed`. A child that is stopped or hung sends nothing: the node tells it
from a busy one by the silence.

Pixels travel through shared memory (:mod:`.shared_frames`), never through the pipe. Nothing
here imports torch or transformers before the engine loads.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from spatial_mllm_ros.answering.protocol import (
    Alive,
    AnswerRequest,
    Cancel,
    ChildMessage,
    Failed,
    GeometryRequest,
    Loaded,
    LoadFailed,
    Reply,
    Stop,
    Token,
)
from spatial_mllm_ros.answering.shared_frames import FrameReceiver
from spatial_mllm_ros.model.backends.status import VisionStatus
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.model.spec import EngineSpec
from spatial_mllm_ros.sampling.predicted import PredictedGeometry

__all__ = ["HEARTBEAT_S", "serve"]

#: Period of the child's heartbeat while it works on a request (seconds).
HEARTBEAT_S = 0.1


class _Outbox:
    """The child's sending end: one message at a time on the pipe (the request's thread and
    the heartbeat thread share it); heartbeats only between :meth:`begin` and :meth:`reply`,
    when the node is reading."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()
        self._busy = False
        self._closed = threading.Event()
        threading.Thread(target=self._beat, name="spatial-mllm-heartbeat", daemon=True).start()

    def send(self, msg: ChildMessage) -> None:
        with self._lock:
            self.conn.send(msg)

    def begin(self) -> None:
        with self._lock:
            self._busy = True

    def reply(self, msg: Reply | Failed) -> None:
        with self._lock:
            self._busy = False
            self.conn.send(msg)

    def close(self) -> None:
        self._closed.set()

    def _beat(self) -> None:
        while not self._closed.wait(HEARTBEAT_S):
            with self._lock:
                if not self._busy:
                    continue
                try:
                    self.conn.send(Alive())
                except OSError:  # the node went away
                    return


def _plain_geometry(result: Any) -> list[PredictedGeometry]:
    """The engine's predicted geometry in types the node can unpickle without importing torch
    or transformers (otherwise the first request would pay for those imports in the node)."""
    return [PredictedGeometry(np.asarray(g.world_points, dtype=np.float32),
                              np.asarray(g.confidence, dtype=np.float32)) for g in result]


def _warm_up(engine: Any) -> None:
    """One tiny generation, so that one-off first-call costs (kernel selection, lazy
    initialisation in the processor and the model) are paid while loading, not by the first
    question. A failure here is left for the first real request to report."""
    try:
        engine.warm_up()  # prepares no accelerated encoders for its meaningless input size
    except Exception:  # reported by the first request instead, with its context
        return


def serve(conn: Connection, spec: EngineSpec, nice: int = 0) -> None:
    """Child process: load the engine, then answer requests until stopped.

    SIGINT is ignored: a Ctrl-C in the node's terminal reaches the whole process group, and
    the node, which supervises this process, stops it (:class:`~.protocol.Stop`, or a kill while it
    loads). The node starts it with SIGINT blocked (:mod:`.process`), so a Ctrl-C that came
    before this point is discarded here too. ``nice`` is added to its niceness first, before
    torch starts its threads (which inherit it; parameter ``model.nice``)."""
    if nice > 0 and hasattr(os, "nice"):
        os.nice(nice)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    from spatial_mllm_ros.model.spec import load_engine

    engine, error = load_engine(spec)
    if engine is not None:
        _warm_up(engine)
    if engine is None:
        conn.send(LoadFailed(str(error)))
        conn.close()
        return
    conn.send(Loaded(str(engine.checkpoint_layout), _vision_of(engine)))
    receiver = FrameReceiver()
    outbox = _Outbox(conn)
    try:
        _serve_requests(conn, outbox, engine, receiver)
    finally:
        outbox.close()
        receiver.close()


def _vision_of(engine: Any) -> VisionStatus | None:
    """The engine's vision backend status (None without one, or when it cannot say)."""
    if engine is None:
        return None
    try:
        status: VisionStatus = engine.vision_backend_status
    except Exception:  # a status must never cost an answer
        return None
    return status


def _serve_requests(conn: Connection, outbox: _Outbox, engine: Any,
                    receiver: FrameReceiver) -> None:
    """Child process: answer requests until stopped; a request's frames are
    :class:`PackedFrames` (pixels in shared memory). An answer streams its tokens and stops at
    a :class:`~.protocol.Cancel` from the node."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the node went away
            return
        match message:
            case Stop():
                return
            case Cancel():  # a cancel that came after its answer: nothing to stop
                continue
            case AnswerRequest() | GeometryRequest():
                outbox.begin()
                try:
                    reply: Reply | Failed = Reply(_run(conn, outbox, engine, receiver, message),
                                                  None)
                except _Stop:
                    return
                except Exception as err:  # reported to the node, which answers MODEL_ERROR
                    reply = Failed(f"{type(err).__name__}: {err}", None)
                outbox.reply(dataclasses.replace(reply, vision=_vision_of(engine)))


def _run(conn: Connection, outbox: _Outbox, engine: Any, receiver: FrameReceiver,
         request: AnswerRequest | GeometryRequest) -> GenerationResult | list[PredictedGeometry]:
    """The engine's result for ``request`` (raises what the engine raises)."""
    frames = receiver.unpack(request.frames)
    match request:
        case AnswerRequest(prompt=prompt, max_new_tokens=max_new_tokens):
            result: GenerationResult = engine.answer(
                frames, prompt, max_new_tokens, on_token=_sender(outbox),
                should_stop=_cancel_check(conn))
            return result  # plain Python already
        case GeometryRequest():
            return _plain_geometry(engine.predict_geometry(frames))


class _Stop(Exception):
    """The node asked the child to stop while it was generating."""


def _sender(outbox: _Outbox) -> Callable[[list[int], str], None]:
    def on_token(ids: list[int], text: str) -> None:
        outbox.send(Token(ids, text))

    return on_token


def _cancel_check(conn: Connection) -> Callable[[], bool]:
    """``should_stop`` of the child: true once a cancel came on the pipe (a stop raises
    :class:`_Stop`)."""
    state = {"stop": False}

    def should_stop() -> bool:
        while not state["stop"] and conn.poll(0):
            match conn.recv():
                case Stop():
                    raise _Stop
                case Cancel():
                    state["stop"] = True
        return state["stop"]

    return should_stop
