"""``spatial-mllm-serve`` as a user runs it (the README's "Fleet" line, Ray local on the CPU,
the tiny checkpoint), and its robot-side client (:class:`RemoteAnswerer`, the one the node,
``spatial-mllm-infer --endpoint`` and ``spatial-mllm-eval --endpoint`` use).

One server for the module (Ray and Serve take ~30 s to start here). Faults are injected at
known points through the server's test hooks: ``SPATIAL_MLLM_SERVE_EXIT_FILE`` (the replica
exits at an answer's first token, once) and ``SPATIAL_MLLM_SERVE_HOLD_FILE`` (the replica
waits at the first token until the request is cancelled or the file goes).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from testkit.cli import assert_clean, assert_refused, run_command
from testkit.readme import readme_command_lines, words
from testkit.serve import START_S, ServeProcess, start_serve

from spatial_mllm_ros.answering.commands import answer_frames
from spatial_mllm_ros.answering.remote import RemoteAnswerer, RemoteConfig
from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus, QuestionRequest
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.settings import Settings

#: The README's server line ("Fleet"), and its client line.
README_SERVE = "spatial-mllm-serve --config cpu_tiny --port 8000"
README_INFER = ("spatial-mllm-infer --endpoint http://127.0.0.1:8000 --frames "
                "../shared/data/real_rgbd_shelf --question 'How many boxes are there?'")
LOCAL_INFER = ("spatial-mllm-infer --frames ../shared/data/real_rgbd_shelf "
               "--question 'How many boxes are there?'")
URL = "http://127.0.0.1:8000"
TOKEN = "test-token-4f1d"
NO_DEADLINE_S = 1e9


@dataclass
class Server:
    serve: ServeProcess
    hooks: Path
    absent: AnswerRecord
    answerer: RemoteAnswerer

    def health(self) -> dict[str, Any]:
        return self.serve.health()

    def wait_for_reports(self, count: int) -> dict[str, Any]:
        """Health once the replicas have reported ``count`` answers in all."""
        end = time.monotonic() + START_S
        while True:
            doc = self.health()
            if doc["totals"].get("answers", 0) >= count or time.monotonic() > end:
                return doc
            time.sleep(0.1)


def _settings() -> Settings:
    return Settings.from_profile("cpu_tiny")


def _frames(shelf: Path) -> list[Frame]:
    return load_rgbd_dir(shelf)


def _ask(answerer: Any, frames: list[Frame], question: str = "How many boxes are there?"
         ) -> AnswerRecord:
    settings = _settings()
    request = QuestionRequest(query_id=1, question=question, timeout_s=NO_DEADLINE_S)
    return answer_frames(answerer, frames, request, settings.pipeline, settings.buffer)


def _client(**changes: Any) -> RemoteAnswerer:
    return RemoteAnswerer(dataclasses.replace(RemoteConfig(endpoint=URL, client="test"),
                                              **changes))


@pytest.fixture(scope="module")
def server(shelf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The README's server line, started after a client already asked it (absent)."""
    if not os.environ.get("SPATIAL_MLLM_TINY_CHECKPOINT"):
        pytest.skip("SPATIAL_MLLM_TINY_CHECKPOINT is not set (make test sets it)")
    hooks = tmp_path_factory.mktemp("serve-hooks")
    os.environ["SPATIAL_MLLM_TOKEN"] = TOKEN  # this process's clients
    answerer = _client()
    absent = _ask(answerer, _frames(shelf))
    serve = start_serve(words(README_SERVE), 8000, TOKEN, env={
        "SPATIAL_MLLM_SERVE_EXIT_FILE": str(hooks / "exit"),
        "SPATIAL_MLLM_SERVE_HOLD_FILE": str(hooks / "hold")})
    yield Server(serve, hooks, absent, answerer)
    serve.stop()


def test_absent_server_is_a_model_error_with_the_cause_then_ok_once_it_starts(
        server: Server, shelf: Path) -> None:
    assert server.absent.status is AnswerStatus.MODEL_ERROR, server.absent
    assert "is unreachable" in server.absent.error and "Connection refused" in \
        server.absent.error, server.absent.error
    later = _ask(server.answerer, _frames(shelf))  # the same client, nothing restarted
    assert later.status is AnswerStatus.OK, later
    assert server.answerer.status().values()["model.state"] == "ready"


@pytest.mark.parametrize("encoding", ["png", "raw"])
def test_the_server_answers_as_the_local_engine_does(
        server: Server, shelf: Path, encoding: str) -> None:
    """Same frames, same prompt: the same text and token ids, frames at the same size."""
    from spatial_mllm_ros.model.spec import load_engine

    frames = _frames(shelf)[:8]
    engine, error = load_engine(_settings().engine)
    assert engine is not None, error
    local = engine.answer(frames, "How many boxes are there?", 16)
    tokens: list[int] = []
    remote = _client(encoding=encoding).answer(
        frames, "How many boxes are there?", 16, on_token=lambda ids, _t: tokens.append(len(ids)))
    assert (remote.text, remote.token_ids) == (local.text, local.token_ids)
    assert (remote.resized_size, remote.original_size) == \
        (local.resized_size, local.original_size)
    assert tokens and tokens[-1] == len(local.token_ids)


def test_the_server_predicts_the_local_engines_geometry(server: Server, shelf: Path) -> None:
    """``/v1/geometry`` (colour-only cameras' space-aware sampling): the same points and
    confidence as the local engine's VGGT heads on the same frames."""
    import numpy as np

    from spatial_mllm_ros.model.spec import load_engine

    frames = _frames(shelf)[:3]
    engine, error = load_engine(_settings().engine)
    assert engine is not None, error
    local = engine.predict_geometry(frames)
    remote = server.answerer.predict_geometry(frames)
    assert len(remote) == len(local) == 3
    for a, b in zip(local, remote, strict=True):
        assert np.array_equal(a.world_points, b.world_points)
        assert np.array_equal(a.confidence, b.confidence)


def test_readme_infer_endpoint_line_gives_the_local_answer(server: Server, shelf: Path) -> None:
    """``spatial-mllm-infer --endpoint URL`` (README) and the same line without it: the same
    answer, token ids, frames and boxes."""
    for line in (README_INFER, LOCAL_INFER):
        assert words(line) in readme_command_lines() or line == LOCAL_INFER, line
    remote_run = run_command(words(README_INFER), env={"SPATIAL_MLLM_TOKEN": TOKEN})
    local_run = run_command(words(LOCAL_INFER))
    assert_clean(remote_run)
    assert_clean(local_run)
    remote, local = remote_run.json(), local_run.json()
    assert remote["status"] == "OK", remote_run.describe()
    assert remote["token_ids"], remote_run.describe()
    for key in ("answer", "token_ids", "frame_stamps_ns", "boxes", "question_type",
                "coverage"):
        assert remote[key] == local[key], key


def test_eval_endpoint_gives_the_local_results(server: Server, tmp_path: Path) -> None:
    """``spatial-mllm-eval --endpoint URL`` and the same evaluation with the model here: the
    same answers, frames and scores, question by question."""
    scene = tmp_path / "scene"
    assert_clean(run_command(["spatial-mllm-scene", str(scene), "--seed", "3"]))
    lines = {}
    for name, extra in (("local", []), ("remote", ["--endpoint", URL])):
        out = tmp_path / name
        res = run_command(["spatial-mllm-eval", str(scene / "bag"), "--questions",
                           str(scene / "questions.jsonl"), "--out", str(out), "--strategies",
                           "uniform", "--limit", "3", "--no-thumbnails", "--no-progress",
                           "--no-grounding", *extra], env={"SPATIAL_MLLM_TOKEN": TOKEN})
        assert_clean(res)
        lines[name] = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines["remote"]) == 3
    for local, remote in zip(lines["local"], lines["remote"], strict=True):
        for key in ("status", "answer", "frame_stamps_ns"):
            assert remote["record"][key] == local["record"][key], (key, local, remote)
        assert remote["score"] == local["score"]


def test_a_wrong_or_missing_token_is_refused_and_nothing_runs(
        server: Server, shelf: Path, tmp_path: Path) -> None:
    """A robot ("intruder") with a wrong or empty token: MODEL_ERROR naming the 401, and no
    replica ever reports an answer of it (a good robot's answer right after is reported)."""
    frames = _frames(shelf)
    refused = server.health()["totals"].get("refused.token", 0)
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token\n")
    empty = tmp_path / "no-token"
    empty.write_text("")
    for token_file in (wrong, empty):
        record = _ask(_client(token_file=str(token_file), client="intruder"), frames)
        assert record.status is AnswerStatus.MODEL_ERROR, record
        assert "refused this robot's token (HTTP 401)" in record.error, record.error
    conn = http.client.HTTPConnection("127.0.0.1", 8000, timeout=30)
    conn.request("POST", "/v1/answer", body=b"SML1",
                 headers={"X-Spatial-MLLM-Client": "intruder"})
    assert conn.getresponse().status == 401
    conn.close()
    reported = server.health()["totals"].get("answers", 0)
    _client(client="after-intruder").answer(frames[:4], "How many boxes are there?", 2)
    health = server.wait_for_reports(reported + 1)
    clients = [o["client"] for o in health["recent"]]
    assert "after-intruder" in clients and "intruder" not in clients, health["recent"]
    assert health["totals"]["refused.token"] - refused >= 3, health["totals"]


def test_cancel_stops_generation_on_the_server_within_one_token(
        server: Server, shelf: Path) -> None:
    """The replica is held at its first token; the robot cancels there (closes the stream):
    the replica generates no more than one token past it, of 64 allowed.

    The hold stays until the replica has reported the answer's end: only the cancel reaching
    the replica lets it go on (releasing the hold first would race the cancel's way through
    the ingress and Ray against the tiny model's next tokens)."""
    frames = _frames(shelf)[:4]
    reported = server.wait_for_reports(0)["totals"].get("answers", 0)
    hold = server.hooks / "hold"
    hold.touch()
    seen: list[int] = []
    try:
        result = server.answerer.answer(
            frames, "How many boxes are there?", 64,
            on_token=lambda ids, _t: seen.append(len(ids)), should_stop=lambda: bool(seen))
        assert result.stopped and seen == [1], (result, seen)
        health = server.wait_for_reports(reported + 1)
    finally:
        hold.unlink(missing_ok=True)
    assert health["totals"].get("answers", 0) == reported + 1, "the replica never let go"
    outcome = health["recent"][-1]
    assert outcome["stopped"] is True, outcome
    assert 1 <= outcome["tokens"] <= 2, outcome


class _Held:
    """Robots' questions in flight while the replica is held at the first one's first token
    (``with _Held(server, frames, ["a", "a"]) as held: ...``); released at the end, each
    thread's result in ``results``."""

    def __init__(self, server: Server, frames: list[Frame], clients: list[str]) -> None:
        self.server, self.frames, self.clients = server, frames, clients
        self.results: list[Any] = []
        self._first = threading.Event()
        self._threads = [threading.Thread(target=self._ask, args=(i, c))
                         for i, c in enumerate(clients)]

    def _ask(self, i: int, client: str) -> None:
        self.results.append(_client(client=client).answer(
            self.frames, "How many boxes are there?", 2,
            on_token=lambda _ids, _t: self._first.set() if i == 0 else None))

    def __enter__(self) -> _Held:
        (self.server.hooks / "hold").touch()
        self._threads[0].start()
        assert self._first.wait(START_S)
        for t in self._threads[1:]:
            t.start()
        end = time.monotonic() + START_S  # every one of them counted in flight by the server
        while sum(self.server.health()["in_flight"].values()) < len(self.clients) \
                and time.monotonic() < end:
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        (self.server.hooks / "hold").unlink(missing_ok=True)
        for t in self._threads:
            t.join(START_S)


def test_one_robot_past_its_cap_is_busy_at_once(server: Server, shelf: Path) -> None:
    """Two of one robot's requests in flight (the first held at its first token): its third
    is BUSY at once, another robot's is answered."""
    frames = _frames(shelf)[:4]
    with _Held(server, frames, ["robot-a", "robot-a"]) as held:
        busy = _ask(_client(client="robot-a"), frames)
    assert busy.status is AnswerStatus.BUSY, busy
    assert "HTTP 429" in busy.error, busy.error
    assert len(held.results) == 2 and not any(r.stopped for r in held.results), held.results
    other = _ask(_client(client="robot-b"), frames)
    assert other.status is AnswerStatus.OK, other


def test_a_saturated_server_is_busy_at_once(server: Server, shelf: Path) -> None:
    """The README server's limits (2 requests per replica, 8 waiting): with the replica held
    at a first token and 9 more requests in (one per robot), the 11th robot's question is
    BUSY (HTTP 503) at once; once released, the 10 are answered."""
    frames = _frames(shelf)[:4]
    with _Held(server, frames, [f"flood-{i}" for i in range(10)]) as held:
        busy = _ask(_client(client="flood-10"), frames)
    assert busy.status is AnswerStatus.BUSY, busy
    assert "HTTP 503" in busy.error, busy.error
    assert len(held.results) == 10 and all(r.num_new_tokens == 2 for r in held.results)


def test_a_replica_killed_mid_answer_fails_that_question_only(
        server: Server, shelf: Path) -> None:
    """The replica exits at the question's first token: that question is MODEL_ERROR with
    the cause; Serve starts a new replica and the next question (same client) is OK."""
    frames = _frames(shelf)
    (server.hooks / "exit").touch()
    lost = _ask(server.answerer, frames)
    assert not (server.hooks / "exit").exists(), "the replica did not reach its first token"
    assert lost.status is AnswerStatus.MODEL_ERROR, lost
    assert "model replica was lost during the answer" in lost.error, lost.error
    later = _ask(server.answerer, frames)
    assert later.status is AnswerStatus.OK, later


@pytest.mark.parametrize("argv, env, code, message", [
    ([], {"SPATIAL_MLLM_TOKEN": ""}, ExitCode.USAGE, "no token: set SPATIAL_MLLM_TOKEN"),
    (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"],
     {"SPATIAL_MLLM_TOKEN": TOKEN}, ExitCode.USAGE, "TLS file /nonexistent/cert.pem"),
    (["--tls-cert", "/nonexistent/cert.pem"], {"SPATIAL_MLLM_TOKEN": TOKEN}, ExitCode.USAGE,
     "give both --tls-cert and --tls-key"),
    (["--checkpoint", "/nonexistent/ckpt"], {"SPATIAL_MLLM_TOKEN": TOKEN}, ExitCode.INPUT,
     "checkpoint directory /nonexistent/ckpt does not exist"),
    (["-p", "model.max_pixelz:=1"], {"SPATIAL_MLLM_TOKEN": TOKEN}, ExitCode.USAGE,
     "unknown parameter 'model.max_pixelz'"),
])
def test_the_server_refuses_to_start_with_one_line(
        argv: list[str], env: dict[str, str], code: ExitCode, message: str) -> None:
    """Refused before Ray starts: one line on stderr, the documented exit code."""
    res = run_command(["spatial-mllm-serve", "--port", "8009", *argv], env=env, timeout=120)
    assert_refused(res, code, message)


def test_ctrl_c_stops_the_server_cleanly(server: Server) -> None:
    """Last: SIGINT to the server's process group (Ctrl-C) ends it with exit 0 and no
    traceback; the port is free again."""
    code = server.serve.stop()
    text = server.serve.output()
    assert code == 0, text
    assert "Traceback" not in text, text
    conn = http.client.HTTPConnection("127.0.0.1", 8000, timeout=5)
    with pytest.raises(OSError):
        conn.request("GET", "/v1/health")
        conn.getresponse()
