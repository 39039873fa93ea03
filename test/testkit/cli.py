"""Commands run as a user runs them: a subprocess with the command's own name on the PATH
(the venv's entry point, as after ``source .venv/bin/activate && source install/setup.bash``),
its stdout and stderr captured, and checks of what a user sees.

Used by test/cli (the README's command lines) and by any test that runs a command as a
process.  Importing it needs neither rclpy nor torch.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testkit.paths import REPO

__all__ = [
    "NOISE_PATTERNS",
    "CommandResult",
    "assert_clean",
    "assert_refused",
    "noise",
    "run_command",
    "signal_group",
    "start_command",
]

#: What must never reach a user's terminal from a command that worked (or failed cleanly).
NOISE_PATTERNS: tuple[str, ...] = (
    r"Traceback \(most recent call last\)",
    r"terminate called",
    r"core dumped",
    r"Segmentation fault",
    r"\bWarning\b",       # Python warnings: "UserWarning: ...", "FutureWarning", ...
    r"\bwarnings\.warn",
    r"KeyboardInterrupt",
    r"^\s*WARNING:",      # a library's warning through logging
    r"\[transformers\]",  # transformers' logger (its warnings and advice)
    r"\bdeprecated\b",
)


@dataclass(frozen=True)
class CommandResult:
    """A finished command: its argument vector, exit code and output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """The command's JSON output: the whole of stdout, or else its last line."""
        text = self.stdout.strip()
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return json.loads(text.splitlines()[-1])

    def describe(self) -> str:
        """The command line, exit code and output, for an assertion message."""
        return (f"$ {shlex.join(self.argv)}\nexit {self.returncode}\n"
                f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}")


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    if extra:
        env.update(extra)
    return env


def run_command(argv: Sequence[str] | str, *, cwd: Path = REPO, timeout: float = 600.0,
                env: Mapping[str, str] | None = None, stdin: str | None = None
                ) -> CommandResult:
    """Run ``argv`` (a list, or one command line split like a shell) to completion."""
    args = tuple(shlex.split(argv) if isinstance(argv, str) else argv)
    res = subprocess.run(args, cwd=cwd, env=_env(env), capture_output=True, text=True,
                         timeout=timeout, input=stdin,
                         stdin=None if stdin is not None else subprocess.DEVNULL)
    return CommandResult(args, res.returncode, res.stdout, res.stderr)


def start_command(argv: Sequence[str] | str, *, cwd: Path = REPO,
                  env: Mapping[str, str] | None = None, new_session: bool = True
                  ) -> subprocess.Popen[str]:
    """Start ``argv`` in the background (its own process group, as a shell job: a
    ``signal_group`` reaches it and its children, as Ctrl-C in a terminal does)."""
    args = shlex.split(argv) if isinstance(argv, str) else list(argv)
    return subprocess.Popen(args, cwd=cwd, env=_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            start_new_session=new_session)


def signal_group(proc: subprocess.Popen[str], signum: int = signal.SIGINT) -> None:
    """Send ``signum`` to ``proc``'s process group: Ctrl-C in its terminal."""
    os.killpg(proc.pid, signum)


def noise(text: str, allowed: Sequence[str] = ()) -> list[str]:
    """The lines of ``text`` that match a noise pattern and no ``allowed`` pattern."""
    found = []
    for line in text.splitlines():
        if any(re.search(p, line, re.MULTILINE) for p in NOISE_PATTERNS) and not any(
                re.search(a, line) for a in allowed):
            found.append(line)
    return found


def assert_clean(res: CommandResult, *, allowed: Sequence[str] = ()) -> None:
    """Exit 0 and nothing on stderr (or stdout) that a user would take for a fault."""
    assert res.returncode == 0, res.describe()
    bad = noise(res.stderr, allowed) + noise(res.stdout, allowed)
    assert not bad, f"unexpected noise: {bad}\n{res.describe()}"


def assert_refused(res: CommandResult, code: int, *needles: str) -> None:
    """Exit ``code`` with a clear error: no traceback, and the last stderr line says each of
    ``needles`` (case-insensitive)."""
    assert res.returncode == int(code), res.describe()
    assert not noise(res.stderr) and not noise(res.stdout), res.describe()
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert lines, f"no error message on stderr\n{res.describe()}"
    last = lines[-1].lower()
    for needle in needles:
        assert needle.lower() in last, f"{needle!r} not in the error line\n{res.describe()}"
