"""VSI-Bench metrics, computed exactly as VSI-Bench's published evaluation code.

Reference: ``lmms_eval/tasks/vsibench/utils.py`` (EvolvingLMMs-Lab/lmms-eval; the same code is
in vision-x-nyu/thinking-in-space):

- prediction: ``fuzzy_matching(pred) = pred.split(" ")[0].rstrip(".").strip()``
  (:func:`~spatial_mllm_ros.vsibench.parsing.vsi_prediction_token`) for answers asked in the
  ``lmms-eval`` prompt form; answers asked in a Spatial-MLLM family's form are read with that
  family's own evaluation rule, ``clean_text``
  (:func:`~spatial_mllm_ros.vsibench.parsing.prediction_token`), as its published numbers were;
- multiple-choice types: ``1.0 if pred.lower() == target.lower() else 0.0``;
- numeric types: ``mean_relative_accuracy(float(pred), float(gt), start=.5, end=.95,
  interval=.05)`` = mean over θ of ``|ŷ − y| / y <= 1 − θ``; an unparseable prediction
  (``float()`` fails) scores 0;
- aggregation: the mean per question type; the three ``object_rel_direction_*`` difficulties
  are averaged into one ``object_rel_direction`` score; overall = mean of the per-type scores.
  Scores here are reported x100, as in the paper's tables.

Thresholds -- a fact worth knowing: the reference builds θ as
``np.linspace(start, end, int((end - start) / interval + 2))``; in floating point
``(0.95 - 0.5) / 0.05 + 2 == 10.999999999999998``, so ``int`` gives **10** points,
θ = {0.50, 0.55, ..., 0.95}: the same set as the paper's C = {0.5, 0.55, ..., 0.95}
(Yang et al., "Thinking in Space", 2024). Published VSI-Bench numbers therefore use those 10
thresholds, and they are the default here (:data:`VSIBENCH_THRESHOLDS`). The 11-point
``np.linspace(0.50, 0.95, 11)`` (θ = 0.500, 0.545, ..., 0.950; what the arithmetic would give
without the rounding) is offered as :data:`LINSPACE11_THRESHOLDS` / ``thresholds="linspace11"``.
The comparison is done in floating point exactly as the reference does it, so boundary cases
follow its rounding (e.g. a 20 % error fails θ = 0.8 because ``1 - 0.8 < 0.2`` in binary).

Extensions beyond the reference, none of which changes a VSI-Bench score: the plain
``object_rel_direction`` type (averaged together with the difficulties present), difficulties
missing from a run are left out of the average (the reference would fail or count them as 0),
``open`` questions are recorded but not scored, and unparseable answers are counted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.core.jsonsafe import finite_or_none
from spatial_mllm_ros.evaluation.errors import MetricsError
from spatial_mllm_ros.vsibench.parsing import prediction_token
from spatial_mllm_ros.vsibench.prompts import (
    MULTIPLE_CHOICE_TYPES,
    NUMERIC_TYPES,
    OPEN_TYPE,
    QUESTION_TYPES,
    REL_DIRECTION_DIFFICULTIES,
)
from spatial_mllm_ros.vsibench.templates import LMMS_EVAL


def _reference_linspace(start: float, end: float, interval: float) -> npt.NDArray[np.float64]:
    """The reference's threshold construction, rounding included."""
    num_pts = (end - start) / interval + 2
    return np.linspace(start, end, int(num_pts))


VSIBENCH_THRESHOLDS: npt.NDArray[np.float64] = _reference_linspace(0.5, 0.95, 0.05)
"""θ as the published code computes it: 10 values 0.50, 0.55, ..., 0.95 (the default)."""
PAPER_THRESHOLDS: npt.NDArray[np.float64] = np.linspace(0.5, 0.95, 10)
"""θ as the paper states it, C = {0.5, 0.55, ..., 0.95}: 10 values (equal to the above)."""
LINSPACE11_THRESHOLDS: npt.NDArray[np.float64] = np.linspace(0.5, 0.95, 11)
"""``np.linspace(0.50, 0.95, 11)``: 11 values 0.500, 0.545, ..., 0.950 (not VSI-Bench's)."""

_NAMED_THRESHOLDS: dict[str, npt.NDArray[np.float64]] = {
    "vsibench": VSIBENCH_THRESHOLDS,
    "paper": PAPER_THRESHOLDS,
    "linspace11": LINSPACE11_THRESHOLDS,
}

ThresholdsLike = str | Sequence[float] | npt.NDArray[np.float64]
"""A threshold set name ("vsibench", "paper", "linspace11") or the θ values themselves."""

REPORT_TYPES: tuple[str, ...] = (
    "object_counting",
    "object_abs_distance",
    "object_size_estimation",
    "room_size_estimation",
    "object_rel_distance",
    "object_rel_direction",
    "route_planning",
    "obj_appearance_order",
)
"""The eight reported types, in the order of VSI-Bench's tables."""

MetricName = Literal["accuracy", "mra", "none"]


def resolve_thresholds(thresholds: ThresholdsLike = "vsibench") -> npt.NDArray[np.float64]:
    """θ values as a 1D float64 array.

    Raises:
        MetricsError: unknown name, empty, not 1D, or values outside [0, 1).
    """
    if isinstance(thresholds, str):
        try:
            return _NAMED_THRESHOLDS[thresholds].copy()
        except KeyError as err:
            raise MetricsError(
                f"unknown threshold set {thresholds!r}; expected one of {sorted(_NAMED_THRESHOLDS)}"
            ) from err
    arr = np.asarray(thresholds, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise MetricsError(f"thresholds must be a non-empty 1D sequence, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0.0) or np.any(arr >= 1.0):
        raise MetricsError("thresholds must lie in [0, 1)")
    return arr


def mean_relative_accuracy(
    prediction: float, target: float, thresholds: ThresholdsLike = "vsibench"
) -> float:
    """MRA = mean over θ of ``abs(prediction - target) / target <= 1 - θ`` (reference order of
    floating-point operations). ``target`` must be > 0; a non-finite prediction scores 0."""
    if not (math.isfinite(target) and target > 0.0):
        raise MetricsError(f"MRA needs a finite ground truth > 0, got {target!r}")
    theta = resolve_thresholds(thresholds)
    if not math.isfinite(prediction):
        return 0.0
    relative_error = abs(prediction - target) / target
    return float(np.mean(relative_error <= 1 - theta))


def report_type(question_type: str) -> str:
    """The reported type a question type counts towards (difficulties -> object_rel_direction)."""
    if question_type in REL_DIRECTION_DIFFICULTIES:
        return "object_rel_direction"
    return question_type


def _to_float(value: object) -> float | None:
    """The reference's ``to_float``: ``float(value)``, None when that fails."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class ScoreRecord:
    """The score of one answered question.

    Attributes:
        question_type: the question's type (difficulty variants kept).
        prediction: the VSI-Bench prediction token of the answer.
        ground_truth: the ground truth as text (option letter, or the number).
        score: in [0, 1] (accuracy 0/1 or MRA); NaN for ``open`` questions.
        metric: "accuracy" (multiple choice), "mra" (numeric) or "none" (``open``).
        unparseable: numeric: the token is not a finite number; multiple choice: the token is
            not a single letter. (The score is the reference's either way.)
        predicted_value: the number read from the token (numeric types), else NaN.
        question_id: the question's id, if given.
    """

    question_type: str
    prediction: str
    ground_truth: str
    score: float
    metric: MetricName
    unparseable: bool
    predicted_value: float = math.nan
    question_id: str | int | None = None

    @property
    def report_type(self) -> str:
        return report_type(self.question_type)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (NaN -> None)."""
        d = asdict(self)
        for key in ("score", "predicted_value"):
            d[key] = finite_or_none(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScoreRecord:
        """Inverse of :meth:`to_dict` (for resuming from a results file)."""
        try:
            return cls(
                question_type=str(d["question_type"]),
                prediction=str(d["prediction"]),
                ground_truth=str(d["ground_truth"]),
                score=math.nan if d["score"] is None else float(d["score"]),
                metric=d["metric"],
                unparseable=bool(d["unparseable"]),
                predicted_value=math.nan
                if d.get("predicted_value") is None
                else float(d["predicted_value"]),
                question_id=d.get("question_id"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise MetricsError(f"not a score record: {d!r}") from err


def score_one(
    question_type: str,
    prediction_text: str,
    ground_truth: object,
    thresholds: ThresholdsLike = "vsibench",
    *,
    question_id: str | int | None = None,
    template: str = LMMS_EVAL,
) -> ScoreRecord:
    """Score one answer as VSI-Bench does (see the module docstring).

    Args:
        question_type: one of the question types (``open`` is recorded with a NaN score).
        prediction_text: the model's full answer text.
        ground_truth: the option letter (multiple choice) or the number (numeric; a number or a
            numeric string, > 0).
        thresholds: θ set for MRA.
        template: the prompt family the answer was asked in; its evaluation's rule reads the
            prediction (:func:`~spatial_mllm_ros.vsibench.parsing.prediction_token`):
            lmms-eval's first token, or Spatial-MLLM's cleaned text, whose numbers may carry
            thousands commas (``normalize_number``). The comparison (exact letter, MRA) is the
            same in all three evaluations.

    Raises:
        MetricsError: unknown type, or a numeric ground truth that is not a finite number > 0
            (the reference would crash or score nonsense on those).
    """
    if question_type not in QUESTION_TYPES:
        raise MetricsError(f"unknown question type {question_type!r}")
    token = prediction_token(prediction_text, template)
    if question_type == OPEN_TYPE:
        gt = "" if ground_truth is None else str(ground_truth)
        return ScoreRecord(question_type, token, gt, math.nan, "none", False, math.nan, question_id)
    if question_type in MULTIPLE_CHOICE_TYPES:
        return _score_choice(question_type, token, ground_truth, question_id)
    assert question_type in NUMERIC_TYPES
    return _score_numeric(question_type, token, ground_truth, thresholds, question_id, template)


def _score_choice(question_type: str, token: str, ground_truth: object,
                  question_id: str | int | None) -> ScoreRecord:
    """A multiple-choice answer's record: accuracy 1 or 0 (the letter, any case); unparseable
    unless the token is one ASCII letter."""
    if not isinstance(ground_truth, str):
        raise MetricsError(
            f"multiple-choice ground truth must be a letter, got {ground_truth!r}"
        )
    score = 1.0 if token.lower() == ground_truth.lower() else 0.0
    unparseable = not (len(token) == 1 and token.isalpha() and token.isascii())
    return ScoreRecord(
        question_type,
        token,
        ground_truth,
        score,
        "accuracy",
        unparseable,
        math.nan,
        question_id,
    )


def _score_numeric(question_type: str, token: str, ground_truth: object,
                   thresholds: ThresholdsLike, question_id: str | int | None,
                   template: str) -> ScoreRecord:
    """A numeric answer's record: MRA against a ground truth > 0; 0 and unparseable when the
    token is not a finite number (thousands commas dropped except for lmms-eval)."""
    target = _to_float(ground_truth)
    if target is None or not math.isfinite(target) or target <= 0.0:
        raise MetricsError(
            f"numeric ground truth must be a finite number > 0, got {ground_truth!r}"
        )
    value = _to_float(token if template == LMMS_EVAL else token.replace(",", ""))
    if value is None or not math.isfinite(value):
        score = 0.0
        unparseable = True
        value = math.nan
    else:
        score = mean_relative_accuracy(value, target, thresholds)
        unparseable = False
    gt_text = ground_truth if isinstance(ground_truth, str) else repr(target)
    return ScoreRecord(question_type, token, gt_text, score, "mra", unparseable, value, question_id)


@dataclass(frozen=True)
class Metrics:
    """Aggregated scores, x100 (0..100).

    Attributes:
        scores: per reported type (:data:`REPORT_TYPES` order, only types present).
        overall: mean of ``scores``' values; NaN when nothing was scored.
        counts: scored questions per reported type.
        unparseable: unparseable answers per reported type.
        sub_scores: per question type as given (the three direction difficulties separately).
        sub_counts: scored questions per question type as given.
        n_scored: questions scored; n_unscored: ``open`` questions (not scored).
        thresholds: the θ values used for MRA (informational).
    """

    scores: dict[str, float]
    overall: float
    counts: dict[str, int]
    unparseable: dict[str, int]
    sub_scores: dict[str, float]
    sub_counts: dict[str, int]
    n_scored: int
    n_unscored: int
    thresholds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (NaN -> None)."""
        d = asdict(self)
        d["overall"] = finite_or_none(self.overall)
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def vsibench_output(self) -> dict[str, float]:
        """The reference's ``vsibench_aggregate_results`` keys and scale (0..1), for comparison
        with lmms-eval logs: ``<type>_accuracy`` / ``<type>_MRA:.5:.95:.05`` and ``overall``."""
        out: dict[str, float] = {}
        for t, s in self.scores.items():
            metric = "MRA:.5:.95:.05" if t in NUMERIC_TYPES else "accuracy"
            out[f"{t}_{metric}"] = s / 100.0
        out["overall"] = self.overall / 100.0
        return out


def aggregate(
    records: Iterable[ScoreRecord], *, thresholds: ThresholdsLike = "vsibench"
) -> Metrics:
    """Aggregate score records as VSI-Bench does, x100.

    Per question type: the mean score. ``object_rel_direction`` = mean of the means of the
    direction types present (easy, medium, hard, and the plain type). Overall = mean of the
    reported types' scores (not of the questions). ``thresholds`` is only recorded.
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    bad: dict[str, int] = {}
    n_unscored = 0
    for r in records:
        if r.metric == "none":
            n_unscored += 1
            continue
        if r.question_type not in QUESTION_TYPES or math.isnan(r.score):
            raise MetricsError(f"cannot aggregate record {r!r}")
        sums[r.question_type] = sums.get(r.question_type, 0.0) + r.score
        counts[r.question_type] = counts.get(r.question_type, 0) + 1
        bad[r.question_type] = bad.get(r.question_type, 0) + int(r.unparseable)
    sub_means = {t: sums[t] / counts[t] for t in counts}
    order = [t for t in QUESTION_TYPES if t in sub_means]
    scores: dict[str, float] = {}
    group_counts: dict[str, int] = {}
    group_bad: dict[str, int] = {}
    for group in REPORT_TYPES:
        members = [t for t in order if report_type(t) == group]
        if not members:
            continue
        scores[group] = 100.0 * sum(sub_means[t] for t in members) / len(members)
        group_counts[group] = sum(counts[t] for t in members)
        group_bad[group] = sum(bad[t] for t in members)
    overall = sum(scores.values()) / len(scores) if scores else math.nan
    return Metrics(
        scores=scores,
        overall=overall,
        counts=group_counts,
        unparseable=group_bad,
        sub_scores={t: 100.0 * sub_means[t] for t in order},
        sub_counts={t: counts[t] for t in order},
        n_scored=sum(counts.values()),
        n_unscored=n_unscored,
        thresholds=[float(x) for x in resolve_thresholds(thresholds)],
    )
