"""The messages between the node (:mod:`.process`) and its model process (:mod:`.child`), one
frozen dataclass each, pickled one per message on the pipe; and the node's kill policy.

node -> child:

* :class:`AnswerRequest` / :class:`GeometryRequest`: a request; its frames are
  :class:`~.shared_frames.PackedFrames` (the pixels are in shared memory, never on the pipe);
* :class:`Cancel`: stop the generation in progress between tokens (one that comes after its
  answer is ignored);
* :class:`Stop`: end the process.

child -> node:

* :class:`Loaded` or :class:`LoadFailed`, once, after loading;
* :class:`Token` after every generated token of an answer (all the tokens so far);
* :class:`Alive` every :data:`~.child.HEARTBEAT_S` while a request is worked on (also during a
  long encoder pass or prefill, where no token comes): a stopped or hung child sends nothing,
  and the node tells it from a busy one by the silence (:class:`KillPolicy`);
* :class:`Reply` or :class:`Failed`: the request's result or its error, with the vision
  backend status as of the reply.

Nothing here imports torch: the node unpickles these without it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from spatial_mllm_ros.answering.shared_frames import PackedFrames
from spatial_mllm_ros.model.backends.status import VisionStatus
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.sampling.predicted import PredictedGeometry

__all__ = [
    "Alive",
    "AnswerRequest",
    "Cancel",
    "ChildMessage",
    "Failed",
    "GeometryRequest",
    "Kill",
    "KillPolicy",
    "LoadFailed",
    "LoadReport",
    "Loaded",
    "NodeMessage",
    "Reply",
    "Request",
    "Stop",
    "Token",
]


@dataclass(frozen=True)
class AnswerRequest:
    """Answer ``prompt`` about ``frames`` with at most ``max_new_tokens`` new tokens."""

    frames: PackedFrames
    prompt: str
    max_new_tokens: int


@dataclass(frozen=True)
class GeometryRequest:
    """The per-frame predicted geometry of ``frames`` (points and confidence)."""

    frames: PackedFrames


@dataclass(frozen=True)
class Cancel:
    """Stop the generation in progress between tokens."""


@dataclass(frozen=True)
class Stop:
    """End the model process."""


@dataclass(frozen=True)
class Loaded:
    """The engine loaded: its checkpoint layout (``v1.0``/``v1.1``) and vision status."""

    layout: str
    vision: VisionStatus | None


@dataclass(frozen=True)
class LoadFailed:
    """The engine did not load: why."""

    error: str


@dataclass(frozen=True)
class Token:
    """The tokens generated so far (ids and decoded text) of the answer in progress."""

    ids: list[int]
    text: str


@dataclass(frozen=True)
class Alive:
    """Heartbeat: the child is working on a request."""


@dataclass(frozen=True)
class Reply:
    """A request's result (plain Python: the node needs no torch to unpickle it)."""

    result: GenerationResult | list[PredictedGeometry]
    vision: VisionStatus | None


@dataclass(frozen=True)
class Failed:
    """A request's error (``Type: message``); the node answers MODEL_ERROR with it."""

    error: str
    vision: VisionStatus | None


Request = AnswerRequest | GeometryRequest
#: Everything the node sends.
NodeMessage = AnswerRequest | GeometryRequest | Cancel | Stop
#: What the child sends once after loading.
LoadReport = Loaded | LoadFailed
#: Everything the child sends while it serves requests.
ChildMessage = Token | Alive | Reply | Failed


class Kill(enum.Enum):
    """What :class:`KillPolicy` decides about a request in progress."""

    WAIT = "wait"
    SILENT = "silent after its deadline or cancel"
    STOP_LIMIT = "not returned by the stop limit"
    HANG = "not returned by the hang timeout"


@dataclass(frozen=True)
class KillPolicy:
    """When the node gives up on a model process working on a request (times in seconds).

    Attributes:
        grace_s: ``model.stop_grace_s``: how long the child may stay silent (no token, no
            heartbeat) once its request is to stop (deadline or cancel); a busy child keeps
            its heartbeat and is left to finish.
        stop_limit_s: the longest wait once the request is to stop, even for a child that
            keeps its heartbeat (its request thread hung in native code).
        hang_timeout_s: the longest wait for a request that nothing stops (geometry).
    """

    grace_s: float
    stop_limit_s: float
    hang_timeout_s: float

    def decide(self, *, waited_s: float, silent_s: float, stopping_s: float | None,
               stoppable: bool) -> Kill:
        """The verdict for a request ``waited_s`` into its wait, the child silent for
        ``silent_s``, told to stop ``stopping_s`` ago (None: not yet), ``stoppable`` when the
        request has a ``should_stop``."""
        if stopping_s is not None and stopping_s > self.grace_s and silent_s > self.grace_s:
            return Kill.SILENT
        if stopping_s is not None and stopping_s > self.stop_limit_s:
            return Kill.STOP_LIMIT
        if not stoppable and waited_s > self.hang_timeout_s:
            return Kill.HANG
        return Kill.WAIT

    def reason(self, verdict: Kill) -> str:
        """The error of a request killed for ``verdict`` (not :attr:`Kill.WAIT`)."""
        if verdict is Kill.SILENT:
            return (f"the model process did not return within {self.grace_s} s of its "
                    "deadline or cancel and sent nothing meanwhile (hung or stopped)")
        if verdict is Kill.STOP_LIMIT:  # its heartbeat goes on, its work does not
            return (f"the model process did not return within {self.stop_limit_s} s of its "
                    "deadline or cancel")
        return f"the model process did not return within {self.hang_timeout_s} s"
