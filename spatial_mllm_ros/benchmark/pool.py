"""Workers as Ray actors: scenes are the unit of work, one engine per actor.

Each actor holds a :class:`~.worker.SceneWorker` (the model loaded once, in its constructor);
``num_gpus=1`` per actor when the profile's device is CUDA, one CPU otherwise.  An actor
streams a scene's outcomes question by question (a Ray generator); the driver consumes one
stream per actor in a thread and hands every outcome to the one writer (:mod:`.runner`).  An
actor that dies is restarted by Ray (``max_restarts``; the model is loaded again) and the
questions of its scene that had not come back are submitted again, so every question is
answered exactly once (the writer also drops an id it has already written).

``--workers N`` starts a local cluster (``ray.init(num_cpus=N)`` on a CPU profile, without
the dashboard); ``--ray ADDRESS`` joins a running one, whose nodes must have this package and
the dataset at the same paths.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spatial_mllm_ros.benchmark.worker import (
    ModelLoadError,
    QuestionOutcome,
    RunConfig,
    SceneTask,
    SceneWorker,
)

__all__ = ["CRASH_MARKER_ENV", "RayPool"]

#: Test hook: with this set to a path that does not exist, an actor creates the file and
#: exits (``os._exit``) right after its first outcome -- a worker killed mid-scene, once.
CRASH_MARKER_ENV = "SPATIAL_MLLM_VSIBENCH_CRASH_MARKER"
#: Times one scene is submitted again after its actor died.
MAX_SCENE_RETRIES = 3
#: Longest wait for a dead actor to come back (it loads its model again), and the poll period.
RESTART_WAIT_S, RESTART_POLL_S = 600.0, 0.5
_DONE = object()


class _SceneActor:
    """The Ray actor's body (made remote in :meth:`RayPool.start`)."""

    def __init__(self, config: RunConfig) -> None:
        self.worker = SceneWorker(config)

    def ready(self) -> bool:
        return self.worker.ready()

    def answer_scene(self, task: SceneTask) -> Iterator[QuestionOutcome]:
        marker = os.environ.get(CRASH_MARKER_ENV, "")
        for outcome in self.worker.answer_scene(task):
            yield outcome
            if marker and not Path(marker).exists():
                Path(marker).write_text(f"pid {os.getpid()}\n", encoding="utf-8")
                os._exit(1)


def _await_restart(actor: Any, limit_s: float = RESTART_WAIT_S) -> bool:
    """Wait until ``actor``, restarted by Ray after it died, answers again (it loads its model
    first); False when it is dead for good or not back within ``limit_s`` seconds."""
    import ray

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            return bool(ray.get(actor.ready.remote(), timeout=max(deadline - time.monotonic(),
                                                                   0.1)))
        except ray.exceptions.ActorUnavailableError:  # still restarting
            time.sleep(RESTART_POLL_S)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return False
    return False


@dataclass(frozen=True)
class PoolOptions:
    """How to reach Ray: ``address`` of a running cluster ("" = start a local one) and the
    number of actors (0 with an address = one per GPU of the cluster)."""

    address: str
    workers: int


class RayPool:
    """A pool of :class:`_SceneActor` answering scene tasks (see module docstring)."""

    def __init__(self, config: RunConfig, options: PoolOptions) -> None:
        self.config = config
        self.options = options
        self._started_ray = False
        self._actors: list[Any] = []

    def start(self) -> int:
        """Start (or join) Ray and the actors; wait until each has loaded its model.

        Returns:
            the number of actors.

        Raises:
            ModelLoadError: an actor could not load the model.
        """
        import ray

        gpu = self.config.settings().engine.device.startswith("cuda")
        if self.options.address:
            ray.init(address=self.options.address, logging_level=logging.ERROR,
                     log_to_driver=False)
            count = self.options.workers or max(1, int(ray.cluster_resources().get("GPU", 0)))
        else:
            count = max(1, self.options.workers)
            ray.init(num_cpus=None if gpu else count, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False)
            self._started_ray = True
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if gpu and gpus < count:
            raise ModelLoadError(
                f"{count} workers of a CUDA profile need {count} GPUs; the Ray cluster has "
                f"{gpus} (fewer --workers, or model.device:=cpu)")
        actor = ray.remote(max_restarts=MAX_SCENE_RETRIES, num_gpus=1 if gpu else 0,
                           num_cpus=0 if gpu else 1)(_SceneActor)
        self._actors = [actor.remote(self.config) for _ in range(count)]
        try:
            ray.get([a.ready.remote() for a in self._actors])
        except ray.exceptions.RayError as err:
            cause = getattr(err, "cause", None)
            raise ModelLoadError(str(cause) if isinstance(cause, ModelLoadError) else
                                 f"a Ray worker failed to start: {err}") from err
        return count

    def _serve(self, actor: Any, work: queue.Queue[tuple[SceneTask, int]],
               out: queue.Queue[Any]) -> None:
        """One actor's loop: take a scene, stream its outcomes into ``out``; on the actor's
        death put the unanswered rest back (up to :data:`MAX_SCENE_RETRIES` times)."""
        import ray

        while True:
            try:
                task, attempt = work.get_nowait()
            except queue.Empty:
                break
            delivered: set[str] = set()
            try:
                for ref in actor.answer_scene.remote(task):
                    outcome = ray.get(ref)
                    delivered.add(str(outcome.question_id))
                    out.put(outcome)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as err:
                rest = tuple(q for q in task.questions if str(q.id) not in delivered)
                if rest and attempt < MAX_SCENE_RETRIES:
                    work.put((SceneTask(task.dataset, task.scene_name, rest), attempt + 1))
                elif rest:
                    for q in rest:
                        out.put(QuestionOutcome(q.id, task.key, error=f"worker died: {err}"))
                if not _await_restart(actor):
                    break  # dead for good: the other actors take the rest
            except ray.exceptions.RayError as err:
                for q in task.questions:
                    if str(q.id) not in delivered:
                        out.put(QuestionOutcome(q.id, task.key, error=f"worker failed: {err}"))
        out.put(_DONE)

    def run(self, tasks: Sequence[SceneTask], consume: Callable[[QuestionOutcome], None]) -> None:
        """Answer ``tasks`` on the actors; ``consume`` gets every outcome, in this thread."""
        work: queue.Queue[tuple[SceneTask, int]] = queue.Queue()
        for task in tasks:
            work.put((task, 0))
        out: queue.Queue[Any] = queue.Queue()
        threads = [threading.Thread(target=self._serve, args=(a, work, out), daemon=True)
                   for a in self._actors]
        for t in threads:
            t.start()
        done = 0
        while done < len(threads):
            item = out.get()
            if item is _DONE:
                done += 1
                # a retried scene may wait in `work` after the other threads ended
                if done == len(threads) and not work.empty():
                    extra = threading.Thread(target=self._serve,
                                             args=(self._actors[0], work, out), daemon=True)
                    threads.append(extra)
                    extra.start()
                continue
            consume(item)

    def close(self) -> None:
        """Stop the actors; shut Ray down when this pool started it."""
        import ray

        if not ray.is_initialized():
            return
        for a in self._actors:
            ray.kill(a)
        if self._started_ray:
            ray.shutdown()
