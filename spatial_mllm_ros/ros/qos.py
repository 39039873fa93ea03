"""QoS profiles of the node's subscriptions and publishers."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

__all__ = ["camera_qos", "reliable_qos"]

_RELIABILITY = {
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
    "reliable": ReliabilityPolicy.RELIABLE,
}


def camera_qos(reliability: str = "best_effort", depth: int = 5) -> QoSProfile:
    """Camera-stream QoS: keep-last ``depth``, volatile; best-effort is ROS's sensor-data QoS.

    A best-effort subscription matches both best-effort and reliable publishers; a reliable
    one only matches reliable publishers (use it when every frame must arrive, e.g. tests).
    """
    try:
        rel = _RELIABILITY[reliability]
    except KeyError as err:
        raise ValueError(f"reliability must be one of {sorted(_RELIABILITY)}") from err
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=rel,
        durability=DurabilityPolicy.VOLATILE,
    )


def reliable_qos(depth: int = 10) -> QoSProfile:
    """Reliable, volatile, keep-last QoS for answers and diagnostics."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )
