"""The model in a child process answers exactly as in-process, and fails clearly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spatial_mllm_ros.answering.errors import ModelProcessError
from spatial_mllm_ros.answering.handle import ModelState
from spatial_mllm_ros.answering.process import ProcessAnswerer
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.model.spec import load_engine
from spatial_mllm_ros.settings import Settings, load_answerer
from spatial_mllm_ros.synthetic import make_walkthrough

pytest.importorskip("torch", reason="the tiny-model tier needs torch")

SHM = Path("/dev/shm")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from spatial_mllm_ros.model.tiny import write_checkpoint

    ckpt = write_checkpoint(tmp_path_factory.mktemp("proc") / "tiny", layout="v1.1")
    return Settings.from_values({"model.checkpoint": str(ckpt), "model.max_pixels": 112 * 140,
                                 "model.num_threads": 1})


def test_child_process_answers_like_the_in_process_engine(settings: Settings) -> None:
    frames = make_walkthrough(seed=1, n_frames=4, width=160, height=120).frames
    engine, err = load_engine(settings.engine)
    assert engine is not None, err
    local = engine.answer(frames, "How many chairs are in this room?", 6)
    remote = ProcessAnswerer(settings.engine)
    try:
        assert remote.pid is not None and remote.pid != os.getpid()
        got = remote.answer(frames, "How many chairs are in this room?", 6)
        assert (got.text, got.raw_text, got.num_new_tokens) == (
            local.text, local.raw_text, local.num_new_tokens)
        assert got.resized_size == local.resized_size
        assert got.token_ids == local.token_ids
        # the node receives the model's one result type, which is plain Python
        assert type(got) is GenerationResult
        geometry = remote.predict_geometry(frames[:2])
        assert len(geometry) == 2 and geometry[0].world_points.shape[-1] == 3
        # the pixels went through one shared-memory segment, which lives as long as the child
        segment = remote._frames.segment_name
        assert segment is not None and (SHM / segment).exists()
    finally:
        remote.close()
    assert not remote._proc.is_alive()
    assert not (SHM / segment).exists(), "close() leaked the shared frame segment"


def test_the_result_type_imports_without_torch() -> None:
    code = ("import sys, spatial_mllm_ros.answering.process, spatial_mllm_ros.model.result; "
            "sys.exit(int(any(m in sys.modules for m in ('torch', 'transformers'))))")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_load_failure_is_reported_with_the_cause(tmp_path: Path) -> None:
    answerer, error = load_answerer(
        Settings.from_values({"model.checkpoint": str(tmp_path / "missing")}))
    assert answerer is None
    assert str(tmp_path / "missing") in error


def test_a_dead_model_process_gives_clear_errors(settings: Settings) -> None:
    remote = ProcessAnswerer(settings.engine)
    frames = make_walkthrough(seed=2, n_frames=2, width=160, height=120).frames
    assert remote.pid is not None
    remote.answer(frames, "How many chairs?", 2)  # the frame segment exists
    segment = remote._frames.segment_name
    os.kill(remote.pid, signal.SIGKILL)
    remote._proc.join(10)
    with pytest.raises(ModelProcessError, match="not running"):
        remote.answer(frames, "How many chairs?", 2)
    remote.close()
    assert segment is not None and not (SHM / segment).exists()


def test_supervision_settings_flow_from_the_parameters_and_an_idle_death_restarts(
    settings: Settings,
) -> None:
    import time

    tuned = settings.with_overrides({"model.stop_grace_s": 7.5, "model.max_restarts": 2})
    answerer, error = load_answerer(tuned)
    assert isinstance(answerer, ProcessAnswerer), error
    try:
        assert (answerer.policy.grace_s, answerer.max_restarts) == (7.5, 2)
        assert answerer.status().vision is not None  # reported with the load
        first = answerer.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)  # no question is being answered
        answerer._proc.join(10)
        end = time.monotonic() + 60
        status = answerer.status()  # finds it dead and restarts it, not waiting
        assert status.state in (ModelState.RESTARTING, ModelState.READY)
        while answerer.status().state is not ModelState.READY and time.monotonic() < end:
            time.sleep(0.2)
        status = answerer.status()
        assert status.state is ModelState.READY and status.restarts == 1
        assert "not running" in status.last_error
        assert answerer.status().values()["model.state"] == "ready"  # the diagnostics values
        assert answerer.pid != first
        frames = make_walkthrough(seed=3, n_frames=2, width=160, height=120).frames
        assert answerer.answer(frames, "How many chairs?", 2).num_new_tokens >= 1
    finally:
        answerer.close()


def test_the_model_process_runs_at_the_niceness_of_model_nice(settings: Settings) -> None:
    """``model.nice`` (default 10) is added to the node's niceness for the child, at its
    first start and at a restart; 0 leaves the child at the node's."""
    node_nice = os.getpriority(os.PRIO_PROCESS, 0)
    want = min(node_nice + 10, 19)
    assert Settings.from_values({"model.checkpoint": "x"}).node.model_nice == 10
    nice = ProcessAnswerer(settings.engine, nice=10, max_restarts=1)
    plain = ProcessAnswerer(settings.engine)
    try:
        assert os.getpriority(os.PRIO_PROCESS, nice.pid) == want
        assert os.getpriority(os.PRIO_PROCESS, plain.pid) == node_nice
        first = nice.pid
        os.kill(first, signal.SIGKILL)
        nice._proc.join(10)
        with pytest.raises(ModelProcessError):  # the question finds it dead: a restart
            nice.answer(make_walkthrough(seed=1, n_frames=2, width=160, height=120).frames,
                        "How many chairs are in this room?", 2)
        deadline = time.monotonic() + 120
        while nice.state is not ModelState.READY and time.monotonic() < deadline:
            time.sleep(0.1)
        assert nice.state is ModelState.READY and nice.pid != first
        assert os.getpriority(os.PRIO_PROCESS, nice.pid) == want
    finally:
        nice.close()
        plain.close()
