"""The robot's client of the model server (RemoteAnswerer) against a stand-in server (the
standard library's HTTP server in a thread): what each way a server can fail becomes, as the
pipeline answers it. The real server is exercised in test/cli/test_serve_cli.py."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pytest

from spatial_mllm_ros.answering.commands import answer_frames
from spatial_mllm_ros.answering.errors import RemoteModelError
from spatial_mllm_ros.answering.pipeline import PipelineConfig
from spatial_mllm_ros.answering.remote import RemoteAnswerer, RemoteConfig
from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus, QuestionRequest
from spatial_mllm_ros.answering.wire import WireLimits, decode_request, event_line, model_size
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.sampling.online import BufferConfig

pytestmark = pytest.mark.unit

HEALTH = {"layout": "v1.1", "min_pixels": 3136, "max_pixels": 15680, "ready": True}
RESULT = {"text": "two", "timings_s": {"decode": 0.1}, "num_new_tokens": 2,
          "resized_size": [140, 112], "raw_text": "", "original_size": [140, 112],
          "token_ids": [17, 18], "num_video_tokens": 20, "stopped": False}
#: request body -> (status, body lines, written one by one) of the answer route
Behaviour = Callable[[bytes], tuple[int, Iterable[bytes]]]


class _Handler(http.server.BaseHTTPRequestHandler):
    behaviour: Behaviour
    seen: list[tuple[str, dict[str, str], bytes]]

    def log_message(self, *_args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._reply(200, [json.dumps(HEALTH).encode()])

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, dict(self.headers), body))
        status, lines = self.behaviour(body)
        self._reply(status, lines)

    def _reply(self, status: int, lines: Iterable[bytes]) -> None:
        self.send_response(status)  # HTTP/1.0: the body ends when the connection closes
        self.end_headers()
        self.wfile.flush()
        for line in lines:
            self.wfile.write(line)
            self.wfile.flush()


@pytest.fixture
def stub() -> Iterator[Callable[[Behaviour], tuple[str, list[Any]]]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(behaviour: Behaviour) -> tuple[str, list[Any]]:
        seen: list[Any] = []
        handler = type("H", (_Handler,), {"behaviour": staticmethod(behaviour), "seen": seen})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _frames() -> list[Frame]:
    rng = np.random.default_rng(0)
    return [Frame(i * 100_000_000, "cam", rng.integers(0, 256, (120, 160, 3), np.uint8))
            for i in range(4)]


def _ask(answerer: RemoteAnswerer) -> AnswerRecord:
    request = QuestionRequest(1, "How many boxes are there?", timeout_s=60.0)
    config = PipelineConfig(frame_budget=4, max_new_tokens=4, grounding=False)
    return answer_frames(answerer, _frames(), request, config, BufferConfig())


def _answer_ok(_body: bytes) -> tuple[int, list[bytes]]:
    return 200, [event_line("accepted"), event_line("token", ids=[17], text="t"),
                 event_line("token", ids=[18], text="two"), event_line("result", result=RESULT)]


def test_an_answer_streams_its_tokens_and_sends_frames_at_the_model_size(stub: Any) -> None:
    url, seen = stub(_answer_ok)
    answerer = RemoteAnswerer(RemoteConfig(endpoint=url, client="/robot7/spatial_mllm"))
    assert answerer.status().values()["model.state"] == "ready"  # its health was read at start
    tokens: list[tuple[list[int], str]] = []
    result = answerer.answer(_frames(), "How many?", 4,
                             on_token=lambda ids, text: tokens.append((ids, text)))
    assert (result.text, result.token_ids, result.original_size) == ("two", [17, 18], (160, 120))
    assert tokens[-1] == ([17, 18], "two")
    path, headers, body = seen[0]
    assert path == "/v1/answer" and headers["X-Spatial-MLLM-Client"] == "/robot7/spatial_mllm"
    request, _blobs = decode_request(body, WireLimits())
    assert {(f.width, f.height) for f in request.frames} == {model_size((160, 120), 3136, 15680)}
    assert request.camera_size == (160, 120)


@pytest.mark.parametrize("status", [503, 429])
def test_a_saturated_server_is_busy_at_once(stub: Any, status: int) -> None:
    url, _ = stub(lambda _b: (status, [b"every model replica is busy"]))
    record = _ask(RemoteAnswerer(RemoteConfig(endpoint=url)))
    assert record.status is AnswerStatus.BUSY, record
    assert f"HTTP {status}: every model replica is busy" in record.error


@pytest.mark.parametrize("lines, cause", [
    ([event_line("accepted"), event_line("token", ids=[1], text="x")],
     "stream ended before the answer"),
    ([event_line("error", error="the model replica was lost during the answer (died)")],
     "the model replica was lost during the answer"),
    ([b"not json\n"], "stream ended before the answer: JSONDecodeError"),
    ([event_line("result", result={"text": "x"})], "malformed result"),
])
def test_a_broken_answer_is_a_model_error_with_its_cause(
        stub: Any, lines: list[bytes], cause: str) -> None:
    url, _ = stub(lambda _b: (200, lines))
    answerer = RemoteAnswerer(RemoteConfig(endpoint=url))
    record = _ask(answerer)
    assert record.status is AnswerStatus.MODEL_ERROR, record
    assert cause in record.error, record.error
    assert answerer.status().values()["model.state"] == "unreachable"


def test_an_absent_server_is_a_model_error_and_the_client_recovers(stub: Any) -> None:
    answerer = RemoteAnswerer(RemoteConfig(endpoint="http://127.0.0.1:9"))  # discard port
    record = _ask(answerer)
    assert record.status is AnswerStatus.MODEL_ERROR
    assert "http://127.0.0.1:9 is unreachable" in record.error, record.error
    url, _ = stub(_answer_ok)
    answerer._url = RemoteAnswerer(RemoteConfig(endpoint=url))._url  # the server came up there
    assert _ask(answerer).status is AnswerStatus.OK


def test_a_first_question_worded_before_a_v1_0_server_said_is_refused_once(
        stub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked while the server was never reached, a question is worded for v1.1; a v1.0 server
    then refuses it with the reason, and the next one is worded for v1.0 and answered."""
    monkeypatch.setitem(HEALTH, "layout", "v1.0")
    answerer = RemoteAnswerer(RemoteConfig(endpoint="http://127.0.0.1:9"))
    assert answerer.checkpoint_layout == "v1.1"
    url, _ = stub(_answer_ok)
    answerer._url = RemoteAnswerer(RemoteConfig(endpoint=url))._url  # the server came up there
    first = _ask(answerer)
    assert first.status is AnswerStatus.MODEL_ERROR
    assert "checkpoint is v1.0; this question was worded for v1.1" in first.error, first.error
    assert answerer.checkpoint_layout == "v1.0"
    assert _ask(answerer).status is AnswerStatus.OK


def test_a_stop_closes_the_stream_and_returns_what_came(stub: Any) -> None:
    release = threading.Event()

    def slow(_body: bytes) -> tuple[int, Iterable[bytes]]:
        def lines() -> Iterator[bytes]:
            yield event_line("accepted")
            release.wait(10)  # a long prefill: nothing comes
            yield from _answer_ok(_body)[1]

        return 200, lines()

    url, _ = stub(slow)
    answerer = RemoteAnswerer(RemoteConfig(endpoint=url))
    try:
        result = answerer.answer(_frames(), "How many?", 4, should_stop=lambda: True)
    finally:
        release.set()
    assert result.stopped and result.token_ids == []
    assert result.resized_size == model_size((160, 120), 3136, 15680)


def test_a_bad_endpoint_is_refused_at_construction() -> None:
    with pytest.raises(RemoteModelError, match="is not http://HOST:PORT"):
        RemoteAnswerer(RemoteConfig(endpoint="gpu-host:8000"))
