"""The model handle's typed status: the ``model.*`` diagnostics values of each kind of handle,
and the in-process engine's adapter."""

from __future__ import annotations

from typing import Any

from spatial_mllm_ros.answering.handle import EngineHandle, ModelState, ModelStatus
from spatial_mllm_ros.model.backends.status import VisionStatus


def test_a_supervised_status_gives_the_diagnostics_values() -> None:
    status = ModelStatus(ModelState.RESTARTING, restarts=2, last_error="died", pid=42)
    assert status.values() == {"model.state": "restarting", "model.restarts": 2,
                               "model.last_error": "died", "model.pid": 42}
    remote = ModelStatus(ModelState.CONNECTING, endpoint="http://gpu:8000")
    assert remote.values()["model.endpoint"] == "http://gpu:8000"
    assert remote.values()["model.state"] == "connecting"


def test_an_in_process_engine_has_no_supervision_values() -> None:
    assert ModelStatus(ModelState.READY, supervised=False, pid=7).values() == {}


class _Engine:
    checkpoint_layout = "v1.0"

    def __init__(self, vision: Any) -> None:
        self._status = vision
        self.closed = 0

    @property
    def vision_backend_status(self) -> VisionStatus:
        if isinstance(self._status, Exception):
            raise self._status
        return self._status  # type: ignore[no-any-return]

    def close(self) -> None:
        self.closed += 1


def test_the_engine_adapter_reports_the_engine_and_closes_it() -> None:
    vision = VisionStatus("torch", "fp32")
    engine = _Engine(vision)
    handle = EngineHandle(engine)  # type: ignore[arg-type]
    status = handle.status()
    assert (status.state, status.supervised, status.vision) == (ModelState.READY, False, vision)
    assert handle.checkpoint_layout == "v1.0"
    handle.close(timeout_s=1.0)
    assert engine.closed == 1


def test_a_vision_status_that_fails_is_none_not_an_error() -> None:
    handle = EngineHandle(_Engine(RuntimeError("worker gone")))  # type: ignore[arg-type]
    assert handle.status().vision is None
