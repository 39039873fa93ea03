"""One model handle: what the node, the pipeline's callers and the evaluator use of a model,
whichever way it runs.

:class:`ModelHandle` is implemented by :class:`EngineHandle` (the engine in this process),
:class:`~spatial_mllm_ros.answering.process.ProcessAnswerer` (the engine in a supervised child
process) and :class:`~spatial_mllm_ros.answering.remote.RemoteAnswerer` (the engine on a model
server). :meth:`ModelHandle.status` is a typed :class:`ModelStatus`, never a probe for
attributes a handle may lack.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from spatial_mllm_ros.answering.types import OnToken
from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.model.backends.status import VisionStatus
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.model.spec import EngineSpec
from spatial_mllm_ros.sampling.predicted import PredictedGeometry

if TYPE_CHECKING:
    from spatial_mllm_ros.model.engine import SpatialMLLMEngine

__all__ = ["EngineHandle", "ModelHandle", "ModelState", "ModelStatus", "load_engine_handle"]


class ModelState(enum.StrEnum):
    """Where a model handle stands (``model.state`` on ``/diagnostics``)."""

    #: the model process is loading its first model
    STARTING = "starting"
    #: questions are answered
    READY = "ready"
    #: the model process was lost and is being started again
    RESTARTING = "restarting"
    #: the model process failed ``model.max_restarts`` starts in a row: given up
    FAILED = "failed"
    #: closed: no further question is answered
    CLOSED = "closed"
    #: the model server has not replied yet
    CONNECTING = "connecting"
    #: the model server's last reply failed (unreachable, refused, lost)
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class ModelStatus:
    """A model handle's state, for ``/diagnostics`` and the commands' reports.

    Attributes:
        state: see :class:`ModelState`.
        supervised: whether ``state`` changes on its own (a model process or server): then
            :meth:`values` has the ``model.*`` diagnostics keys.
        restarts: model process restarts so far.
        last_error: the last failure, "" = none.
        pid: the model process's id; 0 = none of its own.
        endpoint: the model server's URL, "" = not remote.
        vision: what runs the vision encoders (None when the handle cannot say: a model
            process before its first report, a server).
    """

    state: ModelState
    supervised: bool = True
    restarts: int = 0
    last_error: str = ""
    pid: int = 0
    endpoint: str = ""
    vision: VisionStatus | None = None

    def values(self) -> dict[str, object]:
        """The ``model.*`` diagnostics values (``model.state``, ``model.restarts``,
        ``model.last_error``, ``model.pid``, and ``model.endpoint`` for a server); none for an
        engine in this process, which has no state of its own."""
        if not self.supervised:
            return {}
        values: dict[str, object] = {
            "model.state": self.state.value, "model.restarts": self.restarts,
            "model.last_error": self.last_error, "model.pid": self.pid}
        if self.endpoint:
            values["model.endpoint"] = self.endpoint
        return values


class ModelHandle(Protocol):
    """A loaded model, wherever it runs (see the module docstring)."""

    def answer(
        self,
        frames: Sequence[Frame],
        prompt: str,
        max_new_tokens: int = 64,
        *,
        on_token: OnToken | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """Answer ``prompt`` about ``frames`` (time order); tokens to ``on_token``; stopped
        between tokens once ``should_stop()`` is true."""
        ...

    def predict_geometry(self, frames: Sequence[Frame]) -> list[PredictedGeometry]:
        """One :class:`PredictedGeometry` per frame (one world frame and scale for all)."""
        ...

    @property
    def checkpoint_layout(self) -> str:
        """``v1.0``, ``v1.1`` or ``qwen2.5-vl``: selects the prompt family."""
        ...

    def status(self) -> ModelStatus:
        """The handle's state now; never waits on the model."""
        ...

    def close(self, timeout_s: float = 10.0) -> None:
        """Release the model (its process, its encoders' workers); waits up to ``timeout_s``
        for what it stops."""
        ...


class EngineHandle:
    """The :class:`ModelHandle` of an engine in this process.

    Attributes:
        engine: the loaded :class:`~spatial_mllm_ros.model.engine.SpatialMLLMEngine` (its
            ``vision_usage``, ``prepare_vision``, ... for the commands that need them).
    """

    def __init__(self, engine: SpatialMLLMEngine) -> None:
        self.engine = engine

    def answer(
        self,
        frames: Sequence[Frame],
        prompt: str,
        max_new_tokens: int = 64,
        *,
        on_token: OnToken | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """The engine's answer (see :meth:`ModelHandle.answer`)."""
        return self.engine.answer(frames, prompt, max_new_tokens, on_token=on_token,
                                  should_stop=should_stop)

    def predict_geometry(self, frames: Sequence[Frame]) -> list[PredictedGeometry]:
        """The engine's per-frame predicted geometry."""
        return self.engine.predict_geometry(frames)

    @property
    def checkpoint_layout(self) -> str:
        """The loaded checkpoint's layout."""
        return self.engine.checkpoint_layout

    def status(self) -> ModelStatus:
        """Ready, in this process, with the engine's vision backend status (None when the
        engine cannot say)."""
        try:
            vision: VisionStatus | None = self.engine.vision_backend_status
        except Exception:  # a status must never cost an answer
            vision = None
        return ModelStatus(ModelState.READY, supervised=False, pid=os.getpid(), vision=vision)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the engine's accelerated encoders' worker (the engine joins it; ``timeout_s``
        is not needed: a step in progress finishes first)."""
        self.engine.close()


def load_engine_handle(spec: EngineSpec) -> tuple[EngineHandle | None, str]:
    """:func:`~spatial_mllm_ros.model.spec.load_engine` as a handle; never raises:
    ``(None, reason)`` when the model cannot load."""
    from spatial_mllm_ros.model.spec import load_engine

    engine, error = load_engine(spec)
    return (EngineHandle(engine), "") if engine is not None else (None, error)
