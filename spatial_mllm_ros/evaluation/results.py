"""The result store of an evaluation directory: ``DIR/results.jsonl``, one line per answer.

Each line (result format :data:`RESULTS_FORMAT`) is a JSON object::

    {"format": 2,
     "id": <question id>, "strategy": <sampling strategy>,
     "question_type": <the question's type, used for scoring>, "options": [...] | null,
     "ground_truth": <as in the questions file>,
     "cutoff_stamp_ns": <frames at or before this stamp were offered> | null,
     "buffer_frames": <frames in the buffer up to the cutoff>,
     "score": <ScoreRecord.to_dict()>,
     "model_s": <seconds inside the answerer>, "answerer_calls": <calls to it>,
     "thumbnail": "thumbs/<id>__<strategy>.png"        (only when one was written)
     "record": <AnswerRecord.to_json()>}                (the node's answer, unchanged)

``record`` is exactly the answer's one JSON shape (:meth:`AnswerRecord.to_json`), the same
the node's clients print; the other keys are the evaluation's own. Format 1 (before the
``format`` key) kept answer fields at the top level; such files are refused with a
:class:`~.errors.ResultsFileError` naming both versions.

Lines are appended, flushed and fsynced one answer at a time (:class:`ResultSink`), so a
killed run loses at most the line being written; :func:`load_results` drops that one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from spatial_mllm_ros.answering.types import AnswerRecord
from spatial_mllm_ros.core.jsonsafe import json_safe
from spatial_mllm_ros.evaluation.errors import ResultsFileError
from spatial_mllm_ros.evaluation.metrics import ScoreRecord
from spatial_mllm_ros.evaluation.questions import Question

__all__ = [
    "RESULTS_FILE",
    "RESULTS_FORMAT",
    "ResultSink",
    "answered_pairs",
    "load_results",
    "result_line",
]

RESULTS_FILE = "results.jsonl"
#: Version of the line layout above; bump it when a key changes meaning or place.
RESULTS_FORMAT = 2


def result_line(
    question: Question,
    strategy: str,
    cutoff_stamp_ns: int | None,
    buffer_frames: int,
    record: AnswerRecord,
    score: ScoreRecord,
    model_s: float,
    answerer_calls: int,
    prompt_template: str,
) -> dict[str, Any]:
    """One results line (see the module docstring) for ``record``, the answer to
    ``question`` with ``strategy``, asked in the prompt family ``prompt_template`` (which also
    picks the scoring rule when the report rescores it)."""
    return {
        "format": RESULTS_FORMAT,
        "id": question.id,
        "strategy": strategy,
        "question_type": question.question_type,
        "options": list(question.options) if question.options else None,
        "ground_truth": question.ground_truth,
        "cutoff_stamp_ns": cutoff_stamp_ns,
        "buffer_frames": buffer_frames,
        "score": score.to_dict(),
        "model_s": model_s,
        "answerer_calls": answerer_calls,
        "prompt_template": prompt_template,
        "record": record.to_json(),
    }


def _check_format(path: Path, n: int, obj: object) -> None:
    """Raise for a complete line written in another result format."""
    if not isinstance(obj, dict):
        return
    version = obj.get("format", 1)
    if version != RESULTS_FORMAT:
        raise ResultsFileError(
            f"{path}:{n}: result line of format {version!r}, this evaluator reads and writes "
            f"format {RESULTS_FORMAT}; use another --out directory or remove {path.name} "
            "(its answers cannot be resumed)"
        )


def load_results(path: Path) -> list[dict[str, Any]]:
    """Lines of a results file; a malformed *last* line (a write cut off by a kill) is
    dropped and the file truncated to the last complete line.

    Raises:
        ResultsFileError: a malformed line before the last one, or a line of another
            result format (:data:`RESULTS_FORMAT`).
    """
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    out: list[dict[str, Any]] = []
    good_bytes = 0
    for n, line in enumerate(lines, start=1):
        is_last = n == len(lines) or (n == len(lines) - 1 and lines[-1] == b"")
        if not line.strip():
            good_bytes += len(line) + 1
            continue
        try:
            obj = json.loads(line)
            _check_format(path, n, obj)
            if not isinstance(obj, dict) or "id" not in obj or "strategy" not in obj:
                raise ValueError("not a result object")
        except ValueError as err:
            if is_last:
                with path.open("r+b") as f:
                    f.truncate(good_bytes)
                break
            raise ResultsFileError(f"{path}:{n}: malformed result line: {err}") from err
        out.append(obj)
        good_bytes += len(line) + 1
    return out


def answered_pairs(results: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(question id, strategy) pairs present in result lines (ids as strings)."""
    return {(str(r["id"]), str(r["strategy"])) for r in results}


class ResultSink:
    """Appends result lines to a file, each one flushed and fsynced before the next.

    Non-finite floats are written as ``null`` (:func:`~spatial_mllm_ros.core.jsonsafe.json_safe`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def __enter__(self) -> ResultSink:
        self._file = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def append(self, line: Mapping[str, Any]) -> None:
        """Write ``line`` as one JSON line, durably."""
        if self._file is None:
            raise RuntimeError("ResultSink.append outside its 'with' block")
        self._file.write(json.dumps(json_safe(line), allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
