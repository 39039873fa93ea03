"""The parameter schema as ROS parameters: one descriptor per schema entry
(:class:`~spatial_mllm_ros.params.ParamSpec`: description, read-only flag, integer/float range,
choices), so that ``ros2 param describe`` shows the schema and rclpy refuses read-only and
out-of-range values itself."""

from __future__ import annotations

import sys

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from spatial_mllm_ros import params as P

__all__ = ["declare_schema", "descriptor"]


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


def declare_schema(node: Node) -> None:
    """Declare every schema parameter on ``node`` with its default and descriptor."""
    for spec in P.SCHEMA:
        node.declare_parameter(spec.name, spec.default, descriptor(spec))
