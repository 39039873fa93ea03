"""The README's "Exit codes" table is ``ExitCode``: the same names with the same values, each
once, nothing else."""

from __future__ import annotations

import re

from testkit.paths import REPO

from spatial_mllm_ros.exitcodes import ExitCode

ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*`(\w+)`\s*\|")


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(f"## {title}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    return lines[start + 1:end]


def test_the_readme_table_lists_exactly_the_exit_codes() -> None:
    rows = [ROW.match(line) for line in _section((REPO / "README.md").read_text(), "Exit codes")]
    table = [(m.group(2), int(m.group(1))) for m in rows if m]
    assert table == [(code.name, code.value) for code in ExitCode]
