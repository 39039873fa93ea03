"""Functions of one step (issue 18 point 6): no function or method in ``answering/``, ``ros/``
or ``evaluation/`` is longer than 60 lines (``end_lineno - lineno + 1`` of its ``def``, the
docstring included; a nested function counts inside its parent and on its own)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import spatial_mllm_ros

PACKAGE = Path(spatial_mllm_ros.__file__).parent
CHECKED = ("answering", "ros", "evaluation")
MAX_LINES = 60


def function_lengths(source: str) -> list[tuple[str, int, int]]:
    """``(name, first line, length in lines)`` of every function in ``source``."""
    return [(node.name, node.lineno, (node.end_lineno or node.lineno) - node.lineno + 1)
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_the_length_counts_every_line_of_a_def() -> None:
    source = "def f():\n    '''doc'''\n\n    return 1\n\n\nasync def g(): pass\n"
    assert function_lengths(source) == [("f", 1, 4), ("g", 7, 1)]


@pytest.mark.parametrize("package", CHECKED)
def test_no_function_is_longer_than_60_lines(package: str) -> None:
    files = sorted((PACKAGE / package).rglob("*.py"))
    assert files, f"no module under {PACKAGE / package}"
    too_long = [f"{path.relative_to(PACKAGE)}:{line} {name} ({length} lines)"
                for path in files
                for name, line, length in function_lengths(path.read_text(encoding="utf-8"))
                if length > MAX_LINES]
    assert not too_long, f"split into functions of one step (<= {MAX_LINES} lines): {too_long}"
