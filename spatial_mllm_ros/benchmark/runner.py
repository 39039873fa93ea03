"""A VSI-Bench run: the questions still to answer, the workers, the one writer, the outputs.

The driver groups the questions by scene (the unit of work, in dataset order), skips the ids
already in ``OUT/results.jsonl``, and answers the rest with one in-process
:class:`~.worker.SceneWorker` (``workers == 1`` and no Ray address) or a :class:`~.pool.RayPool`.
Every outcome comes back to this thread: a result is appended to ``results.jsonl`` (fsynced)
unless its id is there already, an error to ``errors.jsonl`` (rewritten each run: errored
questions are asked again next time), and a progress bar with ETA counts questions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spatial_mllm_ros.benchmark.dataset import BenchQuestion
from spatial_mllm_ros.benchmark.pool import PoolOptions, RayPool
from spatial_mllm_ros.benchmark.report import write_outputs
from spatial_mllm_ros.benchmark.results import JsonLines, check_run_settings
from spatial_mllm_ros.benchmark.worker import QuestionOutcome, RunConfig, SceneTask, SceneWorker

__all__ = ["RunSummary", "run_benchmark", "scene_tasks"]


@dataclass
class RunSummary:
    """What a run did.

    Attributes:
        total: questions selected; resumed: already answered before this run;
        answered: answered by this run; errors: questions that got an error this run;
        geometry_passes: VGGT passes this run; metrics: ``metrics.json``'s content.
        error_lines: the errors, ``id: message``.
    """

    total: int = 0
    resumed: int = 0
    answered: int = 0
    errors: int = 0
    geometry_passes: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    error_lines: list[str] = field(default_factory=list)


def scene_tasks(questions: Sequence[BenchQuestion]) -> list[SceneTask]:
    """The questions grouped by scene, scenes in order of first appearance."""
    groups: dict[tuple[str, str], list[BenchQuestion]] = {}
    for q in questions:
        groups.setdefault((q.dataset, q.scene_name), []).append(q)
    return [SceneTask(d, s, tuple(qs)) for (d, s), qs in groups.items()]


class _Writer:
    """The one writer of a run's results and errors, with the progress bar."""

    def __init__(self, out: Path, pending: int, resumed: int, total: int,
                 progress: bool) -> None:
        from tqdm import tqdm

        self.results = JsonLines(out / "results.jsonl")
        self.errors = JsonLines(out / "errors.jsonl", fresh=True)
        self.summary = RunSummary(total=total, resumed=resumed)
        self.bar = tqdm(total=total, initial=resumed, unit="q", desc="vsibench",
                        disable=not progress, file=sys.stderr, dynamic_ncols=True)

    def consume(self, outcome: QuestionOutcome) -> None:
        self.summary.geometry_passes += outcome.geometry_passes
        if outcome.result is not None:
            if str(outcome.question_id) in self.results.ids():
                return
            self.results.append(outcome.result)
            self.summary.answered += 1
        else:
            self.errors.append({"id": outcome.question_id, "scene": outcome.scene,
                                "error": outcome.error})
            self.summary.errors += 1
            self.summary.error_lines.append(f"{outcome.question_id}: {outcome.error}")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        self.results.close()
        self.errors.close()


def _answer_in_process(config: RunConfig, tasks: Sequence[SceneTask],
                       consume: Callable[[QuestionOutcome], None],
                       on_ready: Callable[[int], None]) -> None:
    worker = SceneWorker(config)
    on_ready(1)
    for task in tasks:
        for outcome in worker.answer_scene(task):
            consume(outcome)


def run_benchmark(config: RunConfig, questions: Sequence[BenchQuestion], pool: PoolOptions,
                  run_settings: Mapping[str, Any], progress: bool = True,
                  on_ready: Callable[[int], None] = lambda _n: None) -> RunSummary:
    """Answer ``questions`` into ``config.out_dir`` and write the outputs.

    Raises:
        OutputError: OUT cannot be written, or holds results of other settings.
        ModelLoadError: the model (or a Ray worker's) did not load.
        KeyboardInterrupt: interrupted; every result written so far is on disk.
    """
    out = Path(config.out_dir)
    check_run_settings(out, run_settings)
    wanted = {str(q.id) for q in questions}
    existing = JsonLines(out / "results.jsonl")
    done = existing.ids() & wanted
    existing.close()
    pending = [q for q in questions if str(q.id) not in done]
    writer = _Writer(out, len(pending), len(done), len(questions), progress)
    try:
        tasks = scene_tasks(pending)
        if pool.workers == 1 and not pool.address:
            _answer_in_process(config, tasks, writer.consume, on_ready)
        elif tasks:
            ray_pool = RayPool(config, pool)
            try:
                on_ready(ray_pool.start())
                ray_pool.run(tasks, writer.consume)
            finally:
                ray_pool.close()
    finally:
        writer.close()
    summary = writer.summary
    results = [r for r in writer.results.records if str(r.get("id")) in wanted]
    summary.metrics = write_outputs(out, results, summary.errors, summary.geometry_passes,
                                    run_settings)
    return summary
