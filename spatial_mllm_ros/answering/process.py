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
serves requests until told to stop or its pipe closes (:mod:`.child`: its side, and the
protocol on the pipe).

Supervision (:class:`ProcessAnswerer`): a model process that dies, or that stays silent (no
token, no heartbeat) for ``grace_s`` after its question's deadline or cancel (a hung or stopped
process; a busy one keeps its heartbeat), or that has not returned ``stop_limit_s`` after it
(hung in native code, its heartbeat going on), fails that question (MODEL_ERROR, once) and is
killed if needed and started again in the background with backoff (1, 2, 4, ... s) -- the
node's camera buffer is untouched. While it restarts,
questions are answered MODEL_ERROR "restarting"; after ``max_restarts`` failed starts in a row
the state is ``failed``. :meth:`ProcessAnswerer.status` reports state, restarts and the
last error for ``/diagnostics`` (ERROR while the model is down).

Streaming: the child reports every generated token (a :class:`~.protocol.Token` on the pipe)
and checks for a :class:`~.protocol.Cancel` from the node between tokens, so a deadline or a
cancel stops generation within one token. When to give up on a child is
:class:`~.protocol.KillPolicy`'s decision.

The vision backend status (what runs the encoders, for ``/diagnostics``) comes with the load
report and with every reply: the node never asks an idle child anything, so a stopped idle
child costs nothing until a question needs it (its deadline + ``grace_s`` then applies); a
child found dead while idle is restarted at once (:meth:`ProcessAnswerer.status`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from spatial_mllm_ros.answering.child import serve
from spatial_mllm_ros.answering.errors import ModelProcessError
from spatial_mllm_ros.answering.handle import ModelState, ModelStatus
from spatial_mllm_ros.answering.protocol import (
    Alive,
    AnswerRequest,
    Cancel,
    Failed,
    GeometryRequest,
    Kill,
    KillPolicy,
    Loaded,
    LoadFailed,
    Reply,
    Request,
    Stop,
    Token,
)
from spatial_mllm_ros.answering.shared_frames import FrameSender, PackedFrames
from spatial_mllm_ros.answering.types import OnToken
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.model.backends.status import VisionStatus
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.model.spec import EngineSpec
from spatial_mllm_ros.sampling.predicted import PredictedGeometry

__all__ = ["ProcessAnswerer"]

#: How often a load in progress checks whether it is to stop (seconds).
LOAD_POLL_S = 0.1
#: The load error of a model process stopped while it loaded (shutdown, not a failure).
LOAD_STOPPED = "model loading stopped: the node is shutting down"


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in the calling thread: a child started here inherits the mask across
    exec, so a Ctrl-C (SIGINT to the terminal's whole process group) before the child runs
    :func:`.child.serve`, which ignores it, never reaches it either. The node (the parent)
    handles Ctrl-C and stops the child itself."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


#: Backoff between restarts of a dead model process, seconds (then the last, repeated).
RESTART_BACKOFF_S: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)


class ProcessAnswerer:
    """A :class:`~.handle.ModelHandle` whose engine lives in a supervised child process (see
    the module docstring).

    Args:
        spec: the model to load (the node's ``Settings.engine``).
        start_timeout_s: longest wait for the model to load.
        grace_s: how long a model process may stay silent (no token, no heartbeat) after its
            question's ``should_stop()`` turned true (deadline or cancel) before it is killed.
        max_restarts: failed starts in a row before the supervisor gives up (``failed``).
        hang_timeout_s: longest wait for a request without ``should_stop`` (geometry).
        stop_limit_s: longest wait after ``should_stop()`` turned true even for a child that
            keeps its heartbeat (its request thread hung in native code, say): longer than
            any stage no stopping criterion interrupts (an encoder pass, a prefill).
        abort: ends a start still loading when set (default: :meth:`close`).
        nice: niceness the child adds to its own at each start, before its threads start
            (0-19, parameter ``model.nice``): ingestion in this process gets the CPU first.

    Raises:
        ModelProcessError: the first start failed or the model failed to load (the message
            carries the child's reason).
    """

    def __init__(
        self,
        spec: EngineSpec,
        start_timeout_s: float = 900.0,
        grace_s: float = 0.5,
        max_restarts: int = 5,
        hang_timeout_s: float = 600.0,
        stop_limit_s: float = 30.0,
        abort: threading.Event | None = None,
        nice: int = 0,
    ) -> None:
        self._spec = spec
        self._nice = nice
        self._start_timeout_s = start_timeout_s
        self.policy = KillPolicy(grace_s=grace_s, stop_limit_s=stop_limit_s,
                                 hang_timeout_s=hang_timeout_s)
        self.max_restarts = max_restarts
        self._lock = threading.Lock()  # one request at a time on the pipe and the segment
        self._state_lock = threading.Lock()
        self._frames = FrameSender()  # used under _lock
        self.state = ModelState.STARTING
        self.restarts = 0
        self.last_error = ""
        self._closed = threading.Event()
        self._restarter: threading.Thread | None = None
        self._vision: VisionStatus | None = None
        self._abort = abort if abort is not None else self._closed
        error = self._start()
        if error:
            self._frames.close()
            raise ModelProcessError(error)
        self.state = ModelState.READY

    # ------------------------------------------------------------------ process
    def _start(self) -> str:
        """Start a child and wait for its model; "" or the reason it failed."""
        ctx = multiprocessing.get_context("spawn")
        conn, child = ctx.Pipe()
        proc = ctx.Process(
            target=serve, args=(child, self._spec, self._nice), name="spatial-mllm-model",
            daemon=True
        )
        with _sigint_blocked():  # the child starts with SIGINT blocked, then ignores it
            proc.start()
        child.close()
        self._conn, self._proc = conn, proc
        end = time.monotonic() + self._start_timeout_s
        while not conn.poll(LOAD_POLL_S):
            if self._abort.is_set() or self._closed.is_set():
                self._kill()
                return LOAD_STOPPED
            if time.monotonic() > end:
                self._kill()
                return f"the model process did not load within {self._start_timeout_s} s"
        try:
            report = conn.recv()
        except (EOFError, OSError):
            self._kill()
            return f"the model process exited while loading (exit code {proc.exitcode})"
        match report:
            case Loaded(layout=layout, vision=vision):
                self._vision = vision
                self.checkpoint_layout: str = layout
                """``v1.0`` or ``v1.1``: the loaded checkpoint's layout (selects the prompt
                family)."""
                return ""
            case LoadFailed(error=error):
                self._kill()
                return error
        self._kill()
        return f"the model process sent {type(report).__name__} instead of its load report"

    def _kill(self) -> None:
        proc = self._proc
        if proc.is_alive():
            proc.kill()
        proc.join(5.0)
        self._conn.close()

    def _failed(self, reason: str) -> ModelProcessError:
        """Record that the model process is lost (lock held), kill it, restart it in the
        background; the error for the question it was answering."""
        self.last_error = reason
        self._kill()
        with self._state_lock:
            if self.state is ModelState.READY and not self._closed.is_set():
                self.state = ModelState.RESTARTING
                self._restarter = threading.Thread(
                    target=self._restart, name="spatial-mllm-model-restart", daemon=True)
                self._restarter.start()
        return ModelProcessError(f"{reason}; the model process is being restarted")

    def _restart(self) -> None:
        """Start the model again with backoff, up to ``max_restarts`` failures in a row."""
        for attempt in range(self.max_restarts):
            delay = RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)]
            if self._closed.wait(delay):
                return
            with self._lock:
                if self._closed.is_set():
                    return
                error = self._start()
            if not error:
                with self._state_lock:
                    self.restarts += 1
                    self.state = ModelState.READY
                return
            self.last_error = f"restart {attempt + 1} failed: {error}"
        with self._state_lock:
            self.state = ModelState.FAILED

    @property
    def pid(self) -> int | None:
        """Process id of the (current) model process."""
        return self._proc.pid

    def status(self) -> ModelStatus:
        """For diagnostics: state (ready, restarting, failed, closed), restarts, the last
        error, the pid, the vision backend status as of the load or the last reply. A model
        process found dead while no question uses it is restarted now (never waits: a busy
        one is left to its question)."""
        if self.state is ModelState.READY and not self._closed.is_set() \
                and self._lock.acquire(blocking=False):
            try:
                if self.state is ModelState.READY and not self._proc.is_alive():
                    self._failed(
                        f"the model process is not running (exit code {self._proc.exitcode})")
            finally:
                self._lock.release()
        return ModelStatus(self.state, restarts=self.restarts, last_error=self.last_error,
                           pid=self.pid or 0, vision=self._vision)

    # ------------------------------------------------------------------ requests
    def _call(
        self,
        frames: Sequence[Frame],
        request: Callable[[PackedFrames], Request],
        on_token: OnToken | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationResult | list[PredictedGeometry]:
        """Send ``request`` of ``frames`` (packed into the shared segment) and wait for its
        result; ModelProcessError when the model is not ready, fails or is lost."""
        if self.state is not ModelState.READY:
            raise ModelProcessError(
                f"the model process is {self.state}"
                + (f" (last error: {self.last_error})" if self.last_error else ""))
        with self._lock:  # one request at a time on the pipe and in the shared segment
            if not self._proc.is_alive():
                raise self._failed(
                    f"the model process is not running (exit code {self._proc.exitcode})")
            packed = self._pack(frames)
            try:
                self._conn.send(request(packed))
                reply = self._wait(on_token, should_stop)
            except (EOFError, OSError, BrokenPipeError):
                raise self._failed(
                    f"the model process died (exit code {self._proc.exitcode})") from None
        if reply.vision is not None:
            self._vision = reply.vision
        if isinstance(reply, Failed):
            raise ModelProcessError(reply.error)
        return reply.result

    def _pack(self, frames: Sequence[Frame]) -> PackedFrames:
        """``frames`` in the shared segment (lock held); ModelProcessError when they cannot be
        handed over."""
        try:
            return self._frames.pack(frames)
        except (OSError, ValueError) as err:  # /dev/shm full, a frame without colour
            raise ModelProcessError(
                f"could not hand the frames to the model process: {err}") from err

    def _wait(
        self, on_token: OnToken | None, should_stop: Callable[[], bool] | None
    ) -> Reply | Failed:
        """The child's reply (lock held), forwarding tokens; past ``should_stop`` the child is
        told to cancel, and killed when :attr:`policy` says so (silent since: stopped or
        hung; or past the stop limit). A busy child -- a long encoder pass or prefill, which no
        stopping criterion interrupts -- keeps its heartbeat and is left to finish.

        A token message carries all the tokens so far, so when the child is ahead of
        ``on_token`` the waiting ones are merged into the newest: the node never lags the
        child by more than one message, and ``should_stop`` is looked at after each one."""
        stop_since: float | None = None
        started = heard = time.monotonic()
        while True:
            newest: Token | None = None
            reply: Reply | Failed | None = None
            while reply is None and self._conn.poll(0.02 if newest is None else 0):
                heard = time.monotonic()
                match self._conn.recv():
                    case Token() as token:
                        newest = token
                    case Reply() | Failed() as done:
                        reply = done
                    case Alive():
                        pass
            silent_s = time.monotonic() - heard  # before the feedback's time
            if newest is not None and on_token is not None:
                on_token(newest.ids, newest.text)
            if reply is not None:
                return reply
            if newest is None and not self._proc.is_alive():
                raise EOFError
            now = time.monotonic()
            if stop_since is None and should_stop is not None and should_stop():
                stop_since = now
                self._conn.send(Cancel())
            verdict = self.policy.decide(
                waited_s=now - started, silent_s=silent_s,
                stopping_s=None if stop_since is None else now - stop_since,
                stoppable=should_stop is not None)
            if verdict is not Kill.WAIT:
                raise self._failed(self.policy.reason(verdict))

    def answer(
        self,
        frames: Sequence[Frame],
        prompt: str,
        max_new_tokens: int = 64,
        *,
        on_token: OnToken | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """The engine's answer, computed in the model process (tokens streamed to
        ``on_token``; stopped between tokens once ``should_stop()`` is true)."""
        result = self._call(
            frames, lambda packed: AnswerRequest(packed, prompt, max_new_tokens),
            on_token, should_stop)
        assert isinstance(result, GenerationResult)
        return result

    def predict_geometry(self, frames: Sequence[Frame]) -> list[PredictedGeometry]:
        """The engine's per-frame predicted geometry (points and confidence only), computed in
        the model process."""
        result = self._call(frames, GeometryRequest)
        assert isinstance(result, list)
        return result

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the model process (and any restart) and return its memory and the shared
        frame segment."""
        self._closed.set()
        with self._state_lock:
            self.state = ModelState.CLOSED
        restarter = self._restarter
        if restarter is not None:
            restarter.join(timeout_s)
        try:
            self._conn.send(Stop())
        except (OSError, BrokenPipeError, ValueError):
            pass  # already gone
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout_s)
        self._conn.close()
        with self._lock:
            self._frames.close()
