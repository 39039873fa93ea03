"""The model on a server (``spatial-mllm-serve``, :mod:`spatial_mllm_ros.serving`), behind the
same :class:`~spatial_mllm_ros.answering.types.Answerer` interface as the local model process
(:class:`~spatial_mllm_ros.answering.process.ProcessAnswerer`): the node, the evaluator and
``spatial-mllm-infer`` choose it with ``model.endpoint`` and nothing else changes.

Per call it sends only the frames the pipeline selected, at the model's input size (the
server's pixel bounds, read once from ``GET /v1/health``), with the prompt
(:mod:`.wire`); an answer's tokens stream back and reach ``on_token`` as they come. Pure:
the standard library's ``http.client`` and a reader thread, no Ray.

What the statuses mean is kept:

* the server cannot be reached, refuses the token, sends garbage, goes silent for
  ``silence_s`` or its stream ends before the result (a replica died mid-answer) ->
  :class:`~.errors.RemoteModelError` (MODEL_ERROR with that cause, once per question);
* the server is saturated (HTTP 503) or this robot has its per-client cap of requests in
  flight there (HTTP 429) -> :class:`~.errors.ModelBusyError` (BUSY, at once);
* ``should_stop()`` (the question's deadline or a cancel) closes the connection: the server
  stops generating between tokens, and the call returns what came so far with ``stopped``.

Nothing is kept between calls but the server's description, so the next question is answered
as soon as the server is back, without restarting anything.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from spatial_mllm_ros import params as P
from spatial_mllm_ros.answering.errors import ModelBusyError, RemoteModelError
from spatial_mllm_ros.answering.handle import ModelState, ModelStatus
from spatial_mllm_ros.answering.types import OnToken
from spatial_mllm_ros.answering.wire import (
    CLIENT_HEADER,
    HEARTBEAT_S,
    WireError,
    WireLimits,
    decode_geometry,
    encode_request,
    geometry_images,
    load_token,
    model_images,
    result_from_json,
)
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.sampling.predicted import PredictedGeometry

__all__ = ["RemoteAnswerer", "RemoteConfig", "ServerInfo"]

#: The layout assumed while the server has not said (the pipeline's own default).
DEFAULT_LAYOUT = "v1.1"


@dataclass(frozen=True)
class RemoteConfig:
    """How to reach the model server (parameters ``model.endpoint``, ``model.token_file``,
    ``model.frame_encoding``, ``model.jpeg_quality``).

    Attributes:
        endpoint: ``http://host:port`` or ``https://host:port``; "" = no server (the local
            model process).
        token_file: file whose first line is the token; "" = ``$SPATIAL_MLLM_TOKEN``.
        encoding: frames on the wire: ``png`` (lossless, default), ``raw`` or ``jpeg``.
        jpeg_quality: JPEG quality 1..100.
        connect_timeout_s: longest wait to connect and for the reply's headers, seconds.
        silence_s: longest silence of an answer stream (the server sends a heartbeat every
            second while it works), seconds.
        client: the robot's name sent with every request (its node's fully qualified name).
    """

    endpoint: str = P.bound("model.endpoint")
    token_file: str = P.bound("model.token_file")
    encoding: str = P.bound("model.frame_encoding")
    jpeg_quality: int = P.bound("model.jpeg_quality")
    connect_timeout_s: float = 5.0
    silence_s: float = 10.0 * HEARTBEAT_S
    client: str = ""


@dataclass(frozen=True)
class ServerInfo:
    """What the client needs of the server's model (from ``GET /v1/health``).

    Attributes:
        layout: the checkpoint's layout (``v1.0`` / ``v1.1``): the prompt family.
        min_pixels, max_pixels: the model's per-frame input bounds, pixels.
        health: the whole health reply, for a person to read.
    """

    layout: str
    min_pixels: int
    max_pixels: int
    health: dict[str, Any]


class RemoteAnswerer:
    """A :class:`~.handle.ModelHandle` whose model is on a server.

    Construction never fails for an absent server: it asks for the server's description once
    (``connect_timeout_s``) and otherwise at the first question.

    Raises:
        RemoteModelError: the endpoint is not an http(s) URL, or the token file cannot be
            read.
    """

    def __init__(self, config: RemoteConfig) -> None:
        url = urllib.parse.urlsplit(config.endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise RemoteModelError(
                f"model.endpoint {config.endpoint!r} is not http://HOST:PORT or https://...")
        self.config = config
        self._url = url
        try:
            self._token = load_token(config.token_file)
        except OSError as err:
            raise RemoteModelError(f"cannot read the token file: {err}") from err
        self._limits = WireLimits(max_bytes=1 << 30)
        self._info: ServerInfo | None = None
        self.state = ModelState.CONNECTING
        self.last_error = ""
        self.calls = 0
        self.bytes_sent = 0
        try:
            self.server_info()
        except (RemoteModelError, ModelBusyError) as err:
            self.last_error = str(err)

    # ------------------------------------------------------------------ the node's view
    @property
    def endpoint(self) -> str:
        return self.config.endpoint

    @property
    def checkpoint_layout(self) -> str:
        """The server's checkpoint layout (``v1.1`` until the server has said; never waits)."""
        return self._info.layout if self._info is not None else DEFAULT_LAYOUT

    @property
    def pid(self) -> int:
        """No local model process (0)."""
        return 0

    def status(self) -> ModelStatus:
        """For diagnostics, never waits: the state (``ready`` after a good reply,
        ``unreachable`` after a failed one, ``connecting`` before any), the last error, the
        endpoint. The encoders run on the server (its ``/v1/health`` says what runs them):
        no vision status here."""
        return ModelStatus(self.state, last_error=self.last_error,
                           endpoint=self.config.endpoint)

    def close(self, timeout_s: float = 0.0) -> None:
        """Nothing to release: every call has its own connection."""

    # ------------------------------------------------------------------ calls
    def server_info(self, refresh: bool = False) -> ServerInfo:
        """The server's description (cached after the first good reply).

        Raises:
            RemoteModelError, ModelBusyError: as for :meth:`answer`.
        """
        if self._info is not None and not refresh:
            return self._info
        conn, resp = self._request("GET", "/v1/health", b"")
        try:
            health = json.loads(resp.read())
            info = ServerInfo(str(health["layout"]), int(health["min_pixels"]),
                              int(health["max_pixels"]), health)
        except (KeyError, TypeError, ValueError) as err:
            raise self._lost(f"the model server's health reply is malformed: {err}") from err
        finally:
            conn.close()
        if not health.get("ready", True):
            raise self._lost(f"the model server has no model replica ready "
                             f"({health.get('replicas')})")
        self._info = info
        self.state, self.last_error = ModelState.READY, ""
        return info

    def answer(
        self,
        frames: Sequence[Frame],
        prompt: str,
        max_new_tokens: int = 64,
        *,
        on_token: OnToken | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """The server's answer (tokens streamed to ``on_token``; the connection is closed,
        and generation on the server stops, once ``should_stop()`` is true)."""
        guessed = self._info is None  # the prompt was worded for DEFAULT_LAYOUT
        info = self.server_info()
        if guessed and info.layout != DEFAULT_LAYOUT:
            raise RemoteModelError(
                f"the server's checkpoint is {info.layout}; this question was worded for "
                f"{DEFAULT_LAYOUT} before the server could say: ask again")
        images = model_images([f.rgb for f in frames], info.min_pixels, info.max_pixels)
        body = encode_request("answer", images, prompt=prompt, max_new_tokens=max_new_tokens,
                              camera_size=(frames[0].width, frames[0].height),
                              encoding=self.config.encoding,
                              jpeg_quality=self.config.jpeg_quality)
        resized = (int(images[0].shape[1]), int(images[0].shape[0]))
        original = (frames[0].width, frames[0].height)
        conn, resp = self._request("POST", "/v1/answer", body)
        try:
            stream = _Stream(conn, resp)
            return self._follow(stream, on_token, should_stop, resized, original)
        finally:
            conn.close()

    def predict_geometry(self, frames: Sequence[Frame]) -> list[PredictedGeometry]:
        """The server engine's per-frame predicted geometry (points and confidence)."""
        images = geometry_images([f.rgb for f in frames])
        body = encode_request("predict_geometry", images, encoding=self.config.encoding,
                              jpeg_quality=self.config.jpeg_quality)
        conn, resp = self._request("POST", "/v1/geometry", body)
        try:
            return decode_geometry(resp.read(), self._limits)
        except (OSError, http.client.HTTPException) as err:
            raise self._lost(f"the model server's geometry reply was cut: {err}") from err
        except WireError as err:
            raise self._lost(str(err)) from err
        finally:
            conn.close()

    # ------------------------------------------------------------------ plumbing
    def _lost(self, reason: str) -> RemoteModelError:
        self.state, self.last_error = ModelState.UNREACHABLE, reason
        return RemoteModelError(reason)

    def _request(self, method: str, path: str, body: bytes
                 ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one request; the connection and its 200 response (headers read).

        Raises:
            RemoteModelError: unreachable, refused, or an unexpected status.
            ModelBusyError: HTTP 503 or 429.
        """
        cls = http.client.HTTPSConnection if self._url.scheme == "https" else \
            http.client.HTTPConnection
        conn = cls(self._url.hostname or "", self._url.port,
                   timeout=self.config.connect_timeout_s)
        headers = {"Authorization": f"Bearer {self._token}", CLIENT_HEADER: self.config.client,
                   "Content-Type": "application/octet-stream"}
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            raise self._lost(f"the model server {self.config.endpoint} is unreachable: "
                             f"{type(err).__name__}: {err}") from err
        self.calls += 1
        self.bytes_sent += len(body)
        if resp.status == 200:
            return conn, resp
        detail = _detail(resp)
        conn.close()
        if resp.status in (429, 503):
            self.state = ModelState.READY
            raise ModelBusyError(f"the model server is busy (HTTP {resp.status}: {detail})")
        if resp.status == 401:
            raise self._lost("the model server refused this robot's token (HTTP 401): give "
                             "it the server's token ($SPATIAL_MLLM_TOKEN or model.token_file)")
        raise self._lost(f"the model server answered HTTP {resp.status}: {detail}")

    def _follow(self, stream: _Stream, on_token: OnToken | None,
                should_stop: Callable[[], bool] | None, resized: tuple[int, int],
                original: tuple[int, int]) -> GenerationResult:
        """Read the answer stream until its result, forwarding tokens (the waiting ones
        merged into the newest); on ``should_stop`` close it and return what came."""
        ids: list[int] = []
        text = ""
        heard = time.monotonic()
        while True:
            if should_stop is not None and should_stop():
                stream.close()
                return GenerationResult(text=text, timings_s={}, num_new_tokens=len(ids),
                                        resized_size=resized, original_size=original,
                                        token_ids=list(ids), stopped=True)
            events = stream.take(0.05)
            if not events:
                if time.monotonic() - heard > self.config.silence_s:
                    raise self._lost(f"the model server sent nothing for "
                                     f"{self.config.silence_s:.0f} s")
                continue
            heard = time.monotonic()
            fresh = False
            for event in events:
                kind = event.get("event")
                if kind == "token":
                    ids.extend(int(t) for t in event.get("ids", []))
                    text, fresh = str(event.get("text", "")), True
                elif kind == "result":
                    if fresh and on_token is not None:
                        on_token(list(ids), text)
                    return self._result(event, original)
                elif kind == "error":
                    raise self._lost(f"the model server failed: {event.get('error')}")
                elif kind == "end":
                    raise self._lost(f"the model server's answer stream ended before the "
                                     f"answer: {event.get('error')}")
            if fresh and on_token is not None:
                on_token(list(ids), text)

    def _result(self, event: dict[str, Any], original: tuple[int, int]) -> GenerationResult:
        try:
            result = result_from_json(event["result"])
        except (KeyError, WireError) as err:
            raise self._lost(str(err)) from err
        self.state, self.last_error = ModelState.READY, ""
        return GenerationResult(
            text=result.text, timings_s=result.timings_s, num_new_tokens=result.num_new_tokens,
            resized_size=result.resized_size, raw_text=result.raw_text, original_size=original,
            token_ids=result.token_ids, num_video_tokens=result.num_video_tokens,
            stopped=result.stopped)


class _Stream:
    """The lines of an answer stream, read by a thread of its own so the caller can look at
    ``should_stop`` while the server is silent (a prefill) and close the connection."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse
                 ) -> None:
        self._conn = conn
        self._resp = resp
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._read, name="spatial-mllm-remote",
                                         daemon=True)
        self._thread.start()

    def _read(self) -> None:
        reason = "the connection closed"
        try:
            for line in iter(self._resp.readline, b""):
                self._events.put(json.loads(line))
        except Exception as err:  # a reset, garbage, or the connection closed by close()
            reason = f"{type(err).__name__}: {err}"
        self._events.put({"event": "end", "error": reason})

    def take(self, timeout_s: float) -> list[dict[str, Any]]:
        """The events that came, waiting up to ``timeout_s`` for the first."""
        try:
            out = [self._events.get(timeout=timeout_s)]
        except queue.Empty:
            return []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Close the connection now (the server sees the client go and stops)."""
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conn.close()


def _detail(resp: http.client.HTTPResponse) -> str:
    """The first line of an error reply's body, at most 300 characters."""
    try:
        text = resp.read(4096).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        return "no detail"
    return (text.splitlines() or ["no detail"])[0][:300]
