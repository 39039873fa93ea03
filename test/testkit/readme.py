"""The command lines the README shows, as a user would copy them.

A command line is a line of a fenced ``bash`` block (continuation lines joined, the trailing
``# comment`` dropped), split into words as a shell would.  test/cli checks that every one of
them is run by a test, as a process, with these words.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from testkit.paths import REPO

__all__ = ["README", "readme_command_lines", "words"]

README = REPO / "README.md"

_FENCE = re.compile(r"^```(\w*)\s*$")


def words(line: str) -> tuple[str, ...]:
    """``line`` split as a shell splits it, without its trailing comment."""
    return tuple(shlex.split(line, comments=True))


def _bash_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        fence = _FENCE.match(line.strip())
        if fence and current is None:
            current = [] if fence.group(1) in ("bash", "sh", "shell", "console") else None
            if current is None:  # another language: skip to its closing fence
                current = ["\0skip"]
            continue
        if fence and current is not None:
            if current[:1] != ["\0skip"]:
                blocks.append(current)
            current = None
            continue
        if current is not None:
            current.append(line)
    return blocks


def readme_command_lines(path: Path = README) -> list[tuple[str, ...]]:
    """Every command line of the README's bash blocks, as words, in order of appearance."""
    out: list[tuple[str, ...]] = []
    for block in _bash_blocks(path.read_text()):
        pending = ""
        for raw in block:
            line = pending + raw
            if line.rstrip().endswith("\\"):
                pending = line.rstrip()[:-1] + " "
                continue
            pending = ""
            w = words(line)
            if w:
                out.append(w)
    return out
