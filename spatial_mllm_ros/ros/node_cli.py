"""``spatial_mllm_node --help``: the node's usage and its parameters, printed without rclpy.

The node takes no options of its own: everything is a ROS parameter, given after
``--ros-args``.  :func:`wants_help` finds ``-h``/``--help`` among the arguments outside the
``--ros-args ... [--]`` section; :func:`node_help` is the text, with every parameter of the
schema (``spatial_mllm_ros.params.SCHEMA``: type, default, range or choices, read-only flag,
description) and the shipped profiles (``config/*.yaml``).  Never imports rclpy.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from spatial_mllm_ros import params as P
from spatial_mllm_ros.camera_params import FIELDS

__all__ = ["node_help", "user_args", "wants_help"]

PROG = "spatial_mllm_node"
HELP_FLAGS = ("-h", "--help")


def user_args(argv: Sequence[str]) -> list[str]:
    """The arguments of ``argv`` (``argv[0]`` is the program) outside every ``--ros-args``
    section (which ends at ``--`` or at the end)."""
    out: list[str] = []
    in_ros = False
    for arg in argv[1:]:
        if arg == "--ros-args":
            in_ros = True
        elif in_ros and arg == "--":
            in_ros = False
        elif not in_ros:
            out.append(arg)
    return out


def wants_help(argv: Sequence[str]) -> bool:
    """Whether ``argv`` asks for the usage (``-h`` or ``--help`` outside ``--ros-args``)."""
    return any(a in HELP_FLAGS for a in user_args(argv))


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _describe(spec: P.ParamSpec) -> str:
    facts = [f"{spec.type.__name__}, default {spec.default!r}"]
    if spec.choices:
        facts.append("one of " + " | ".join(spec.choices))
    elif spec.min is not None or spec.max is not None:
        lo = "" if spec.min is None else _number(spec.min)
        hi = "" if spec.max is None else _number(spec.max)
        facts.append(f"range {lo}..{hi}")
    if spec.read_only:
        facts.append("read-only")
    body = textwrap.fill(spec.description, width=90, initial_indent="      ",
                         subsequent_indent="      ")
    return f"  {spec.name} ({'; '.join(facts)})\n{body}"


def _profiles() -> list[str]:
    return sorted(p.stem for p in P.config_dir().glob("*.yaml"))


def node_help() -> str:
    """The usage text of ``spatial_mllm_node``."""
    profiles = ", ".join(_profiles()) or "(none found)"
    head = f"""\
usage: {PROG} [-h] [--ros-args [-p NAME:=VALUE ...] [--params-file FILE] [-r FROM:=TO ...]]

The spatial_mllm lifecycle node: colour/depth/pose camera streams in, spatial answers
(~/ask service, ~/question -> ~/answer topics) and 3D boxes (~/markers) out. With
autostart (default) it configures and activates at start-up; SIGINT, SIGTERM or a lifecycle
shutdown stops it (exit 0). A parameter the schema refuses (unknown name, wrong type, out of
range, not a choice, a cross-field rule), a missing --params-file or another running node of
the same name: one line on stderr, exit 2, before the model loads.
Every setting is a ROS parameter, given after --ros-args.

options:
  -h, --help            show this message and exit (the node is not started)
  --ros-args ...        ROS arguments:
      -p NAME:=VALUE        set one parameter, e.g. -p sampling.frame_budget:=16
      --params-file FILE    a parameter file (ROS params YAML, key {P.NODE_NAME}:)
      -r __ns:=/NS          run in a namespace; -r FROM:=TO remaps a topic
      --log-level LEVEL     debug, info, warn, error

profiles (config/<NAME>.yaml, in {P.config_dir()}): {profiles}

examples:
  {PROG} --ros-args --params-file config/cpu_tiny.yaml
  ros2 run spatial_mllm_ros {PROG} --ros-args --params-file config/jetson_orin.yaml \\
      -p model.checkpoint:=/models/Spatial-MLLM-v1.1-Instruct-135K
  python -m spatial_mllm_ros.ros.node_main --ros-args -p model.device:=cuda

On a running node: `ros2 param describe /{P.NODE_NAME} NAME` (ranges, read-only flags),
`ros2 param set /{P.NODE_NAME} NAME VALUE` for the others. See README.md, "The node".

several cameras (README.md, "Several cameras"; spatial_mllm_ros/camera_params.py):
  cameras (string array, default []: one camera of topics.*) names them, e.g.
  -p cameras:="[front, left]" -p camera.front.colour:=/front/color/image_raw; each named
  camera takes camera.<name>.<field>, field one of:
  {', '.join(FIELDS)}

parameters (spatial_mllm_ros/params.py):
"""
    return head + "\n".join(_describe(spec) for spec in P.SCHEMA) + "\n"
