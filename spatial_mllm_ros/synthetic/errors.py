"""Errors of the synthetic-scene subpackage."""

from __future__ import annotations


class SyntheticError(Exception):
    """Base class of synthetic-scene errors."""


class UnknownInjectKindError(SyntheticError, ValueError):
    """A fault-injection kind that :data:`~spatial_mllm_ros.synthetic.faults.INJECT_KINDS`
    does not define."""


class SensorTimingError(SyntheticError, ValueError):
    """Invalid sensor-timing settings, or colour stamps that do not increase
    (:mod:`~spatial_mllm_ros.synthetic.sensor_timing`)."""
