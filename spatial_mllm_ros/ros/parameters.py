"""The parameter schema as ROS parameters: one descriptor per schema entry
(:class:`~spatial_mllm_ros.params.ParamSpec`: description, read-only flag, integer/float range,
choices), so that ``ros2 param describe`` shows the schema and rclpy refuses read-only and
out-of-range values itself.

Before declaring, :func:`declare_schema` validates every value given to the node at start-up
(``-p NAME:=VALUE`` and ``--params-file``: rclpy's parameter overrides of the node) by the
schema, as the offline commands validate theirs: an unknown name (a typo), a wrong type, a
value out of range or not one of the choices, a broken cross-field rule raise
:class:`~spatial_mllm_ros.params.ParamError` with one line, and the node does not start
(``spatial_mllm_node`` exits ``ExitCode.USAGE``). Without this, rclpy would ignore unknown
names and raise its own exceptions, with a traceback, for the rest.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from spatial_mllm_ros import camera_params as C
from spatial_mllm_ros import params as P
from spatial_mllm_ros.settings import Settings

__all__ = ["check_overrides", "current_values", "declare_schema", "descriptor"]


def descriptor(spec: P.ParamSpec) -> ParameterDescriptor:
    """The ROS descriptor of one schema entry."""
    d = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.type is int and (spec.min is not None or spec.max is not None):
        d.integer_range = [
            IntegerRange(
                from_value=int(spec.min if spec.min is not None else -(2**63)),
                to_value=int(spec.max if spec.max is not None else 2**63 - 1),
                step=0,
            )
        ]
    elif spec.type is float and (spec.min is not None or spec.max is not None):
        d.floating_point_range = [
            FloatingPointRange(
                from_value=float(spec.min if spec.min is not None else -sys.float_info.max),
                to_value=float(spec.max if spec.max is not None else sys.float_info.max),
                step=0.0,
            )
        ]
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    return d


def check_overrides(values: Mapping[str, Any], builtin: Collection[str] = ()
                    ) -> dict[str, P.ParamValue]:
    """Validate the parameter values given at start-up by the schema; ``builtin``: names
    rclpy declares itself (``use_sim_time``, ...), left to it. Returns the given schema
    values, typed (an integer for a float parameter becomes a float, as the commands take it).

    Raises:
        ParamError: an unknown name, a wrong type, a value out of range or not a choice, or a
            cross-field rule broken (:data:`spatial_mllm_ros.params.RULES`); one line.
    """
    ours = {k: v for k, v in values.items() if k not in builtin}
    full = P.validate(ours)  # every per-parameter problem on one line, then the rules
    Settings.from_values(full)  # and what only building the settings checks (vision sizes)
    return {name: full[name] for name in ours}


def _start_up_overrides(node: Node) -> None:
    """Check the node's parameter overrides and type them for rclpy (see the module)."""
    # rclpy keeps the values of -p and --params-file that apply to this node in
    # Node._parameter_overrides (name -> Parameter) and has no public reader of them.
    overrides: dict[str, Parameter[Any]] = getattr(node, "_parameter_overrides", {})
    builtin = {name for name in overrides if node.has_parameter(name)}
    typed = check_overrides({n: p.value for n, p in overrides.items()}, builtin)
    for name, value in typed.items():
        if isinstance(value, tuple):  # a camera array: rclpy's own list is kept
            continue
        if type(value) is not type(overrides[name].value):
            overrides[name] = Parameter(name, value=value)


def declare_schema(node: Node) -> None:
    """Declare every schema parameter on ``node`` with its default and descriptor, once the
    values given at start-up passed the schema.

    Raises:
        ParamError: a start-up value the schema refuses (see the module).
    """
    _start_up_overrides(node)
    for spec in P.SCHEMA:
        node.declare_parameter(spec.name, spec.default, descriptor(spec))
    _declare_cameras(node)


def _declare_cameras(node: Node) -> None:
    """Declare ``cameras`` and then, as nav2 declares its plugins' parameters, the fields of
    each camera it names (:mod:`spatial_mllm_ros.camera_params`), all read-only."""
    node.declare_parameter(
        C.CAMERAS_PARAM, Parameter.Type.STRING_ARRAY,
        ParameterDescriptor(description="Names of the robot's cameras; [] = one camera of "
                            "topics.* (README 'Several cameras').", read_only=True))
    for name in C.camera_param_names(_camera_names(node)):
        field = name.rsplit(".", 1)[1]
        d = ParameterDescriptor(description=C.FIELDS[field], read_only=True)
        node.declare_parameter(
            name, Parameter.Type.DOUBLE_ARRAY if field == "extrinsic" else "", d)


def _camera_names(node: Node) -> tuple[str, ...]:
    value = node.get_parameter_or(C.CAMERAS_PARAM).value
    return tuple(value) if value else ()


def current_values(node: Node) -> dict[str, Any]:
    """The node's current parameter set: every schema parameter and the camera entries that
    have a value (an unset ``camera.<name>.extrinsic`` is left out)."""
    out: dict[str, Any] = {s.name: node.get_parameter(s.name).value for s in P.SCHEMA}
    names = _camera_names(node)
    if names:
        out[C.CAMERAS_PARAM] = list(names)
    for name in C.camera_param_names(names):
        value = node.get_parameter_or(name).value  # None: declared by type, never set
        if value is not None:
            out[name] = list(value) if name.endswith(".extrinsic") else value
    return out
