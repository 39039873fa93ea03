"""What one evaluation run is: its settings, the pipeline they build, what must match to
resume, which (question, strategy) pairs are left, and what the run did.

Resuming (see :mod:`.runner`): ``DIR/run.json`` holds the settings that change answers
(:func:`run_settings`: bag, topics, frame budget, generation, model, buffer/pairing/image
parameters); a run over a directory with results refuses other settings
(:func:`check_run_file`). The pairs already in ``DIR/results.jsonl`` are skipped
(:func:`plan_work`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spatial_mllm_ros.bags import FrameTopics
from spatial_mllm_ros.core.jsonsafe import finite_or_none
from spatial_mllm_ros.evaluation.errors import ResumeMismatchError
from spatial_mllm_ros.evaluation.questions import Question
from spatial_mllm_ros.evaluation.results import RESULTS_FORMAT, answered_pairs
from spatial_mllm_ros.settings import Settings

__all__ = [
    "RUN_FILE",
    "EvalConfig",
    "RunSummary",
    "WorkPlan",
    "check_run_file",
    "plan_work",
    "run_settings",
    "settings_diff",
]

RUN_FILE = "run.json"
#: Parameters (by prefix) that do not change answers, so need not match to resume: the node's
#: transport and housekeeping, the device and threads the same model runs with.
NON_ANSWER_PARAM_PREFIXES: tuple[str, ...] = (
    "autostart", "topics.", "tf.", "qos.", "diagnostics.", "queue.size", "answer.markers",
    "model.device", "model.num_threads", "model.process", "model.checkpoint",
)
#: Each question's deadline offline: none in effect (the pipeline's configuration is the
#: node's, ``queue.timeout_s`` included; only the requests say otherwise).
OFFLINE_TIMEOUT_S = 1e9


@dataclass(frozen=True)
class EvalConfig:
    """What only the evaluation decides (the answering settings are the profile's
    :class:`~spatial_mllm_ros.settings.Settings`, as on the robot).

    Attributes:
        strategies: sampling strategies, each answering every question.
        thresholds: MRA threshold set name stored with each score (metrics are recomputed
            from the answers by the report with its own choice).
        limit: only the first N questions.
        progress: show progress bars (stderr).
        thumbnails: write a contact sheet of the frames each answer used.
        thumb_height: contact-sheet tile height, pixels.
    """

    strategies: tuple[str, ...] = ("coverage", "uniform")
    thresholds: str = "vsibench"
    limit: int | None = None
    progress: bool = True
    thumbnails: bool = True
    thumb_height: int = 72


def run_settings(
    bag: Path,
    topics: FrameTopics,
    settings: Settings,
    model_id: str,
    prompt_template: str,
) -> dict[str, Any]:
    """What must be equal for results to be resumable (JSON-ready): the bag, its topics, the
    model, the prompt family and every parameter that changes answers."""
    values = settings.values
    keys = sorted(k for k in values if not k.startswith(NON_ANSWER_PARAM_PREFIXES))
    return {
        "bag": str(bag.resolve()),
        "topics": topics.enabled(),
        "model": model_id,
        "prompt_template": prompt_template,
        "params": {k: _json_ready(values[k]) for k in keys},
    }


def _json_ready(value: Any) -> Any:
    """A parameter value as run.json reads back: arrays (``cameras``, an extrinsic) as lists."""
    return list(value) if isinstance(value, tuple) else value


#: Differences named in a resume refusal (the rest are counted).
_MAX_DIFFS = 4
_ABSENT = object()


def _shown(value: Any) -> str:
    return "(absent)" if value is _ABSENT else repr(value)


def settings_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for each of :func:`run_settings`' keys that differ; the
    ``params`` one by parameter name (a parameter one run lacks shows as ``(absent)``)."""
    out = []
    for key in new:
        if key == "params" and isinstance(old.get(key), Mapping):
            before, after = old[key], new[key]
            out += [f"{name}: {_shown(before.get(name, _ABSENT))} -> "
                    f"{_shown(after.get(name, _ABSENT))}"
                    for name in sorted({*before, *after})
                    if before.get(name, _ABSENT) != after.get(name, _ABSENT)]
        elif old.get(key) != new[key]:
            out.append(f"{key}: {_shown(old.get(key, _ABSENT))} -> {_shown(new[key])}")
    return out


def check_run_file(
    out: Path, settings: Mapping[str, Any], strategies: Sequence[str], resuming: bool
) -> None:
    """Refuse to resume with other settings, then (re)write ``out/run.json``.

    Raises:
        ResumeMismatchError: ``resuming`` and ``run.json`` is unreadable or differs.
    """
    run_file = out / RUN_FILE
    if resuming and run_file.exists():
        try:
            old = json.loads(run_file.read_text(encoding="utf-8")).get("settings", {})
        except (OSError, ValueError) as err:
            raise ResumeMismatchError(f"{run_file}: unreadable: {err}") from err
        diff = settings_diff(old, settings)
        if diff:
            shown = "; ".join(diff[:_MAX_DIFFS])
            more = f"; and {len(diff) - _MAX_DIFFS} more" if len(diff) > _MAX_DIFFS else ""
            raise ResumeMismatchError(
                f"{out} holds results of a run with other settings ({shown}{more}); "
                "use another --out directory or remove its results.jsonl"
            )
    run_file.write_text(
        json.dumps({"settings": dict(settings), "strategies": list(strategies),
                    "results_format": RESULTS_FORMAT}, indent=2),
        encoding="utf-8",
    )


@dataclass(frozen=True)
class WorkPlan:
    """The questions of a run and what is left of it.

    Attributes:
        questions: the run's questions (after ``limit``).
        done: (question id as str, strategy) pairs already in the results.
        pending: questions with at least one strategy not yet answered (file order).
        resumed: pairs of this run found in the results.
    """

    questions: list[Question]
    done: set[tuple[str, str]]
    pending: list[Question]
    resumed: int


def plan_work(
    questions: Sequence[Question], config: EvalConfig, existing: Sequence[Mapping[str, Any]]
) -> WorkPlan:
    """Which pairs of ``questions`` x ``config.strategies`` remain, given the result lines
    ``existing``."""
    qs = list(questions)[: config.limit] if config.limit is not None else list(questions)
    done = answered_pairs(existing)
    wanted = {(str(q.id), s) for q in qs for s in config.strategies}
    pending = [q for q in qs if any((str(q.id), s) not in done for s in config.strategies)]
    return WorkPlan(qs, done, pending, len(done & wanted))


@dataclass
class RunSummary:
    """What one invocation did.

    Attributes:
        questions: questions in this run (after ``limit``).
        pairs_total: (question, strategy) pairs in the run; pairs_resumed: found in results;
        pairs_answered: answered now.
        seconds_total: wall time of :meth:`EvalRunner.run`; seconds_model: inside the answerer.
        bag_messages: messages read; counters: the ingestor's counters; warnings: bag warnings.
    """

    questions: int = 0
    pairs_total: int = 0
    pairs_resumed: int = 0
    pairs_answered: int = 0
    answerer_calls: int = 0
    seconds_total: float = 0.0
    seconds_model: float = 0.0
    seconds_bag: float = 0.0
    bag_messages: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    buffer_admissions: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def outside_model_share(self) -> float:
        """Share of this invocation's wall time spent outside the answerer; NaN when it
        answered nothing (everything resumed: no time split of nothing)."""
        if self.seconds_total <= 0 or self.pairs_answered == 0:
            return float("nan")
        return max(0.0, 1.0 - self.seconds_model / self.seconds_total)

    def time_split(self) -> str:
        """Where this invocation's time went, in words: only what it computed itself."""
        if self.pairs_answered == 0:
            return f"nothing recomputed, {self.seconds_total:.2f} s"
        share = finite_or_none(self.outside_model_share)
        outside = "-" if share is None else f"{100 * share:.1f} %"
        return (f"{self.pairs_answered} answers computed in {self.seconds_total:.2f} s, "
                f"{self.seconds_model:.2f} s in the model, {outside} outside it")

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["outside_model_share"] = finite_or_none(self.outside_model_share)
        return d
