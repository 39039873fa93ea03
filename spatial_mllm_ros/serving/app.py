"""The Ray Serve application of ``spatial-mllm-serve``: one ingress and N model replicas.

* :class:`ModelReplica` (``--replicas N``, each ``--num-gpus G``): one engine per replica, loaded
  from the same :class:`~spatial_mllm_ros.model.spec.EngineSpec` (so the same checkpoint,
  vision backend, pixel bounds and decoding) as the node's model process, with
  :func:`~spatial_mllm_ros.model.spec.load_engine`. Serve restarts a replica that dies and
  limits the requests each holds (``max_ongoing_requests``); requests past every replica's
  limit wait in a queue of ``max_queued_requests``, and past that are refused: HTTP 503, which
  a robot answers BUSY at once.
* :class:`Ingress` (one replica, no GPU): HTTP. Every route needs the bearer token (401 and
  nothing runs otherwise); it checks a request's size, frame count and frame sizes before
  anything is decoded (413/400), keeps each robot (header ``X-Spatial-MLLM-Client``) to
  ``client_cap`` requests in flight (429: one robot cannot take every slot; the ingress is a
  single replica, so the cap holds across model replicas), relays an answer's events with a
  heartbeat, and on the robot's disconnect (a cancel, a deadline) cancels the replica's call,
  which stops generating between tokens.

Routes: ``POST /v1/answer`` (framed request, :mod:`spatial_mllm_ros.answering.wire`; reply:
newline-delimited JSON events), ``POST /v1/geometry`` (framed request and reply),
``GET /v1/health`` (JSON: checkpoint, layout, pixel bounds, vision backend, replicas by
state, requests in flight by client, recent outcomes).

Test hooks (environment of the server, read by the replicas): ``SPATIAL_MLLM_SERVE_EXIT_FILE``
names a file; when it exists at an answer's first token the replica deletes it and exits at
once (a replica dying mid-answer, once). ``SPATIAL_MLLM_SERVE_HOLD_FILE``: when it exists at
the first token, the replica waits there until it is deleted or the request is cancelled.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ray import serve
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from spatial_mllm_ros.answering.wire import (
    CLIENT_HEADER,
    HEARTBEAT_S,
    WireError,
    WireLimits,
    decode_frames,
    decode_request,
    encode_geometry,
    event_line,
    model_size,
    result_to_json,
    token_matches,
)
from spatial_mllm_ros.model.spec import EngineSpec, load_engine

__all__ = ["APP_NAME", "ServeOptions", "build_app"]

APP_NAME = "spatial_mllm"
EXIT_FILE_ENV = "SPATIAL_MLLM_SERVE_EXIT_FILE"
HOLD_FILE_ENV = "SPATIAL_MLLM_SERVE_HOLD_FILE"
#: How long the ingress waits for a replica to take a request before it starts the reply
#: (a refusal for a full queue comes at once, within this wait), seconds.
ACCEPT_WAIT_S = 0.5


@dataclass(frozen=True)
class ServeOptions:
    """The server's settings (``spatial-mllm-serve`` flags).

    Attributes:
        replicas: model replicas (one engine each).
        num_gpus, num_cpus: resources each model replica reserves.
        max_ongoing: requests one replica holds at once (they take the engine in turn).
        max_queued: requests that wait for a replica; past it HTTP 503.
        client_cap: requests one robot may have in flight; past it HTTP 429.
        limits: request bounds (frame size: the model's input size).
    """

    replicas: int = 1
    num_gpus: float = 0.0
    num_cpus: float = 1.0
    max_ongoing: int = 2
    max_queued: int = 8
    client_cap: int = 2
    limits: WireLimits = field(default_factory=WireLimits)


@dataclass
class _Outcome:
    """One answer as the replica ended it (for ``/v1/health``'s ``recent``)."""

    client: str
    tokens: int
    stopped: bool
    error: str
    seconds: float


# ---------------------------------------------------------------------------- replicas
class ModelReplica:
    """One engine; ``answer`` streams event lines, ``predict_geometry`` returns a framed
    reply."""

    def __init__(self, spec: EngineSpec, limits: WireLimits) -> None:
        engine, error = load_engine(spec)
        if engine is None:
            raise RuntimeError(error)
        try:
            engine.warm_up()
        except Exception:  # the first request reports it, with its context
            pass
        self._engine = engine
        self._limits = limits
        self._pool = concurrent.futures.ThreadPoolExecutor(8, "spatial-mllm-replica")

    async def answer(self, body: bytes, client: str) -> AsyncIterator[bytes]:
        """The answer's events (see :mod:`spatial_mllm_ros.answering.wire`); a cancel of the
        call (the robot went) stops generation between tokens."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        stop = threading.Event()
        request, blobs = decode_request(body, self._limits)
        size = (request.frames[0].width, request.frames[0].height)
        expected = model_size(request.camera_size, self._engine.min_pixels,
                              self._engine.max_pixels)
        if size != expected or any((f.width, f.height) != size for f in request.frames):
            yield event_line("error", error=(
                f"frames at {size[0]}x{size[1]}; this server's model takes "
                f"{expected[0]}x{expected[1]} for a {request.camera_size[0]}x"
                f"{request.camera_size[1]} camera (client and server disagree on the size)"))
            return
        images = await loop.run_in_executor(self._pool, decode_frames, request, blobs)
        started = time.monotonic()

        def on_token(ids: list[int], text: str) -> None:
            loop.call_soon_threadsafe(events.put_nowait, ("token", list(ids), text))
            if len(ids) == 1:  # after the token is on its way to the robot
                _first_token_hooks(stop)

        def work() -> Any:
            return self._engine.answer_images(images, request.prompt, request.max_new_tokens,
                                              on_token=on_token, should_stop=stop.is_set,
                                              size=size)

        future = loop.run_in_executor(self._pool, work)
        future.add_done_callback(lambda _f: events.put_nowait(("done",)))
        yield event_line("accepted")
        sent = 0
        try:
            while True:
                item = await events.get()
                while item[0] == "token" and not events.empty():
                    item = events.get_nowait()  # merge the waiting tokens into the newest
                if item[0] == "done":
                    break
                yield event_line("token", ids=item[1][sent:], text=item[2])
                sent = len(item[1])
            try:
                result = future.result()
            except Exception as err:  # the model is arbitrary code: reported, not raised
                yield event_line("error", error=f"{type(err).__name__}: {err}")
            else:
                yield event_line("result", result=result_to_json(result))
        finally:
            stop.set()  # the robot went (a cancel or deadline) or the answer is complete
            _REPORTS.add(task := asyncio.ensure_future(_report(future, client, started)))
            task.add_done_callback(_REPORTS.discard)

    async def predict_geometry(self, body: bytes) -> bytes:
        """The framed per-frame geometry of a ``predict_geometry`` request."""
        loop = asyncio.get_running_loop()
        request, blobs = decode_request(body, self._limits)

        def work() -> bytes:
            return encode_geometry(self._engine.predict_geometry(decode_frames(request, blobs)))

        return await loop.run_in_executor(self._pool, work)


def _first_token_hooks(stop: threading.Event) -> None:
    """The test hooks at an answer's first token (module docstring)."""
    exit_file = os.environ.get(EXIT_FILE_ENV, "")
    if exit_file and os.path.exists(exit_file):
        os.remove(exit_file)
        os._exit(1)
    hold_file = os.environ.get(HOLD_FILE_ENV, "")
    while hold_file and os.path.exists(hold_file) and not stop.wait(0.01):
        pass


async def _report(future: asyncio.Future[Any], client: str, started: float) -> None:
    """Tell the ingress how the answer ended, once the generation has really stopped."""
    try:
        result = await future
        outcome = _Outcome(client, result.num_new_tokens, result.stopped, "",
                           time.monotonic() - started)
    except Exception as err:
        outcome = _Outcome(client, 0, False, f"{type(err).__name__}: {err}",
                           time.monotonic() - started)
    try:
        ingress = serve.get_deployment_handle("Ingress", app_name=APP_NAME)
        await ingress.record.remote(outcome.__dict__)
    except Exception:  # the ingress is going away too: nothing to tell
        return


# ---------------------------------------------------------------------------- ingress
class Ingress:
    """HTTP: the token, the bounds, per-client caps, the event relay, health."""

    def __init__(self, model: DeploymentHandle, token: str, description: dict[str, Any],
                 options: ServeOptions) -> None:
        self._model = model
        self._token = token
        self._description = description
        self._options = options
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self._totals: collections.Counter[str] = collections.Counter()

    async def __call__(self, request: Request) -> Response:
        if not token_matches(self._token, request.headers.get("authorization")):
            self._totals["refused.token"] += 1
            return PlainTextResponse("missing or wrong bearer token", status_code=401)
        route = (request.method, request.url.path)
        if route == ("GET", "/v1/health"):
            return JSONResponse(await self._health())
        if route not in (("POST", "/v1/answer"), ("POST", "/v1/geometry")):
            return PlainTextResponse("no such route", status_code=404)
        try:
            body = await self._body(request)
            decode_request(body, self._options.limits)  # every bound, nothing decoded
        except WireError as err:
            return PlainTextResponse(str(err), status_code=413 if err.too_large else 400)
        client = request.headers.get(CLIENT_HEADER) or (
            request.client.host if request.client else "?")
        if self._in_flight[client] >= self._options.client_cap:
            self._totals["refused.client_cap"] += 1
            return PlainTextResponse(
                f"{client} has {self._in_flight[client]} requests in flight, the cap "
                f"({self._options.client_cap})", status_code=429)
        self._in_flight[client] += 1
        if route[1] == "/v1/geometry":
            try:
                return await self._geometry(body)
            finally:
                self._release(client)
        return await self._answer(body, client)

    async def record(self, outcome: dict[str, Any]) -> None:
        """A replica's report of how an answer ended."""
        self._recent.append(outcome)
        self._totals["answers"] += 1

    def _release(self, client: str) -> None:
        self._in_flight[client] -= 1
        if self._in_flight[client] <= 0:
            del self._in_flight[client]

    async def _body(self, request: Request) -> bytes:
        """The body, refused past ``limits.max_bytes`` before it is all read."""
        limit = self._options.limits.max_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise WireError(f"request of {declared} bytes, more than {limit}", True)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise WireError(f"request of more than {limit} bytes", True)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _geometry(self, body: bytes) -> Response:
        try:
            reply = await self._model.predict_geometry.remote(body)
        except BackPressureError as err:
            return PlainTextResponse(f"every model replica is busy: {err}", status_code=503)
        except Exception as err:  # the model is arbitrary code; a replica may die
            return PlainTextResponse(f"{type(err).__name__}: {err}", status_code=500)
        return Response(reply, media_type="application/octet-stream")

    async def _answer(self, body: bytes, client: str) -> Response:
        """Start the replica's stream; 503 when every replica and the queue are full,
        else the relayed events."""
        call = self._model.options(stream=True).answer.remote(body, client)
        events: asyncio.Queue[Any] = asyncio.Queue()
        pump = asyncio.create_task(_pump(call, events))
        try:
            first = await asyncio.wait_for(events.get(), ACCEPT_WAIT_S)
        except TimeoutError:
            first = None  # queued for a replica: the heartbeat keeps the robot informed
        if isinstance(first, BackPressureError):
            self._release(client)
            self._totals["refused.busy"] += 1
            return PlainTextResponse(f"every model replica is busy: {first}", status_code=503)

        async def relay() -> AsyncIterator[bytes]:
            try:
                item = first
                while True:
                    if item is not None:
                        if item is _END:
                            return
                        if isinstance(item, BaseException):
                            yield event_line("error", error=_lost_reason(item))
                            return
                        yield item
                    try:
                        item = await asyncio.wait_for(events.get(), HEARTBEAT_S)
                    except TimeoutError:
                        item = event_line("alive")
            finally:
                pump.cancel()  # the robot went: the replica's call is cancelled
                self._release(client)

        return StreamingResponse(relay(), media_type="application/x-ndjson")

    async def _health(self) -> dict[str, Any]:
        replicas = await asyncio.to_thread(_replica_states)
        return {**self._description, "ready": replicas.get("RUNNING", 0) > 0,
                "replicas": replicas, "in_flight": dict(self._in_flight),
                "client_cap": self._options.client_cap,
                "max_ongoing_requests": self._options.max_ongoing,
                "max_queued_requests": self._options.max_queued,
                "totals": dict(self._totals), "recent": list(self._recent)}


_END = object()
#: Reports still running (kept referenced until done).
_REPORTS: set[asyncio.Future[None]] = set()


async def _pump(call: Any, events: asyncio.Queue[Any]) -> None:
    """Move a replica stream's lines into ``events``, then ``_END`` or the exception; cancel
    the replica's call when this task is cancelled."""
    try:
        async for line in call:
            await events.put(line)
        await events.put(_END)
    except asyncio.CancelledError:
        call.cancel()
        raise
    except Exception as err:  # a replica that died, a refusal: the relay reports it
        await events.put(err)


def _lost_reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return (f"the model replica was lost during the answer ({type(err).__name__}"
            + (f": {text[:300]}" if text else "") + ")")


def _replica_states() -> dict[str, int]:
    """Model replicas by state (RUNNING, STARTING, ...), from Serve's status."""
    try:
        app = serve.status().applications[APP_NAME]
        states = app.deployments["ModelReplica"].replica_states
    except Exception:  # Serve is starting or stopping
        return {}
    return {str(k.value if hasattr(k, "value") else k): int(v) for k, v in states.items()}


def build_app(spec: EngineSpec, token: str, description: dict[str, Any],
              options: ServeOptions) -> Any:
    """The bound Serve application (``serve.run`` it with ``name=APP_NAME``)."""
    model = serve.deployment(
        name="ModelReplica",
        num_replicas=options.replicas,
        max_ongoing_requests=options.max_ongoing,
        max_queued_requests=options.max_queued,
        max_constructor_retry_count=3,
        ray_actor_options={"num_cpus": options.num_cpus, "num_gpus": options.num_gpus},
    )(ModelReplica).bind(spec, options.limits)
    ingress = serve.deployment(
        name="Ingress", num_replicas=1, max_ongoing_requests=1000,
        ray_actor_options={"num_cpus": 0},
    )(Ingress)
    return ingress.bind(model, token, description, options)
