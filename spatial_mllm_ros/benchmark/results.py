"""``OUT/results.jsonl``: one line per answered question, appended, flushed and fsynced.

A run resumes from it: the ids already there are not asked again.  A last line cut short by a
kill (no newline, or not JSON) is dropped on reopening; any other bad line refuses the file.
``OUT/run.json`` holds the settings that change the answers; a re-run with other settings is
refused instead of mixing results.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spatial_mllm_ros.benchmark.errors import OutputError

__all__ = ["JsonLines", "check_run_settings"]


def _fsync_line(handle: Any, record: Mapping[str, Any]) -> None:
    handle.write(json.dumps(record, allow_nan=False, sort_keys=True) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


class JsonLines:
    """An append-only JSON-lines file (results or errors), durable line by line.

    Args:
        path: the file (created with its folder when absent).
        fresh: start it empty (the errors of this run) instead of resuming.

    Raises:
        OutputError: the file cannot be written, or holds a malformed line before its last.
    """

    def __init__(self, path: Path, fresh: bool = False) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and not fresh:
                self._load()
            self._handle = path.open("w" if fresh else "a", encoding="utf-8")
        except OSError as err:
            raise OutputError(f"cannot write {path}: {err}") from err

    def _load(self) -> None:
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        keep = 0  # bytes of complete, valid lines
        for number, line in enumerate(lines, start=1):
            last = number == len(lines)
            if not line.strip():
                keep += len(line) + (0 if last else 1)
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or last:  # no newline: cut short
                    raise ValueError("incomplete line")
            except ValueError as err:
                if number >= len(lines) - 1:  # the last line (or the one before a final "")
                    break
                raise OutputError(f"{self.path}:{number} is not a JSON object ({err}); "
                                  "move the file away to start over") from err
            self.records.append(record)
            keep += len(line) + 1
        if keep < len(raw):
            with self.path.open("r+b") as handle:
                handle.truncate(keep)

    def ids(self) -> set[str]:
        """The ``id`` of every record, as text."""
        return {str(r["id"]) for r in self.records if "id" in r}

    def append(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one line, flushed and fsynced before returning."""
        _fsync_line(self._handle, record)
        self.records.append(dict(record))

    def close(self) -> None:
        self._handle.close()


def check_run_settings(out: Path, settings: Mapping[str, Any]) -> None:
    """Record ``settings`` in ``OUT/run.json``, or check they equal the recorded ones.

    Raises:
        OutputError: OUT cannot be written, or its results were made with other settings.
    """
    path = out / "run.json"
    try:
        out.mkdir(parents=True, exist_ok=True)
        if path.exists():
            recorded = json.loads(path.read_text(encoding="utf-8"))
            differ = sorted(k for k in set(recorded) | set(settings)
                            if recorded.get(k) != settings.get(k))
            if differ:
                raise OutputError(
                    f"{out} holds results of other settings ({', '.join(differ)} differ); "
                    "give another --out or remove it")
            return
        path.write_text(json.dumps(dict(settings), indent=2, sort_keys=True) + "\n",
                        encoding="utf-8")
    except (OSError, ValueError) as err:
        raise OutputError(f"cannot use {out}: {err}") from err
