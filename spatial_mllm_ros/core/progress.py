"""Progress of long commands: one line per stage on stderr (stdout stays for their JSON).

``prog: loading the model ...`` when a stage starts, ``prog: loading the model: 3.2 s`` when
it ends (``failed after 3.2 s`` when it raises); inside a long stage, ``prog: rendering:
12/60 frames`` at each tenth of the work (:meth:`StageLog.counter`).  Pure: used by the
model, evaluation and answering command lines alike.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["StageLog"]


class StageLog:
    """Writes the stage lines of command ``prog`` (nothing when not ``enabled``).

    Args:
        prog: the command's name, the prefix of every line.
        enabled: False for ``--no-progress``.
        stream: where the lines go; None = ``sys.stderr`` at the time of each line.
    """

    def __init__(self, prog: str, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.prog = prog
        self.enabled = enabled
        self._stream = stream

    def note(self, text: str) -> None:
        """One line ``prog: text``."""
        if self.enabled:
            out = self._stream if self._stream is not None else sys.stderr
            print(f"{self.prog}: {text}", file=out, flush=True)

    def counter(self, what: str, unit: str, steps: int = 10) -> Callable[[int, int], None]:
        """A callback ``count(done, total)`` for a long stage's loop: it writes
        ``prog: what: done/total unit`` when ``done`` reaches each ``1/steps`` of ``total``
        (so at most ``steps`` lines, the last at ``total``)."""

        def count(done: int, total: int) -> None:
            if total > 0 and done * steps // total > (done - 1) * steps // total:
                self.note(f"{what}: {done}/{total} {unit}")

        return count

    @contextmanager
    def stage(self, what: str) -> Iterator[None]:
        """A stage: its start line, then its duration (seconds) or its failure."""
        self.note(f"{what} ...")
        t0 = time.monotonic()
        try:
            yield
        except BaseException:
            self.note(f"{what}: failed after {time.monotonic() - t0:.1f} s")
            raise
        self.note(f"{what}: {time.monotonic() - t0:.1f} s")
