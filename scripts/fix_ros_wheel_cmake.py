#!/usr/bin/env python3
"""Point the ROS 2 wheels' CMake export files at this environment's Python and numpy headers.

The PyPI ROS 2 wheels were built on a manylinux host; their ``*Export.cmake`` files name that
host's include directories (``/opt/python/cp311-cp311/...``).  ``colcon build`` of an interface
package links the generated Python type support against those targets, so the paths must be
rewritten to the running interpreter's.  Idempotent: files already rewritten are left alone.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy

BUILD_HOST_PREFIX = re.compile(r"/opt/python/cp3\d+-cp3\d+")


def rewrite(text: str, python_include: str, numpy_include: str) -> str:
    """Replace the build host's include paths in one CMake file's text."""
    text = re.sub(
        BUILD_HOST_PREFIX.pattern + r"/lib/python3\.\d+/site-packages/numpy/_core/include",
        numpy_include,
        text,
    )
    return re.sub(BUILD_HOST_PREFIX.pattern + r"/include/python3\.\d+", python_include, text)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    prefix = Path(args[0]) if args else Path(sys.prefix)
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    changed = 0
    for path in sorted((prefix / "share").glob("*/cmake/*.cmake")):
        text = path.read_text(encoding="utf-8")
        if "/opt/python/cp3" not in text:
            continue
        path.write_text(rewrite(text, python_include, numpy_include), encoding="utf-8")
        changed += 1
    print(f"fix_ros_wheel_cmake: rewrote {changed} CMake file(s) under {prefix / 'share'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
