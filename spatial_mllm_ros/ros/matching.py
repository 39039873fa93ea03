"""Waiting, before the first message, until publishers reach a given node's subscriptions.

A publisher's matched count (``get_subscription_count``) counts every subscription of the
domain: a publisher that starts on "any subscriber" can start on another process's while
the node it is meant for is not matched yet, and (volatile QoS) that node never gets the
first messages.  :func:`wait_subscribed` with a node name waits until every publisher is
matched with that node's subscription (as the ROS graph names it) and with every other
compatible subscription the graph shows, so that the node's is among the matched ones.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.topic_endpoint_info import TopicEndpointInfo

__all__ = ["is_node", "may_match", "subscribed", "wait_subscribed"]


def is_node(name: str, info: TopicEndpointInfo) -> bool:
    """True when the endpoint belongs to node ``name``: a bare name (``spatial_mllm``, any
    namespace) or a fully qualified one (``/robot/spatial_mllm``)."""
    if not name.startswith("/"):
        return info.node_name == name
    namespace = info.node_namespace.rstrip("/")
    return f"{namespace}/{info.node_name}" == name


def may_match(pub: QoSProfile, sub: QoSProfile) -> bool:
    """Whether a publisher of QoS ``pub`` can match a subscription of QoS ``sub``: not when
    the subscription asks for reliable delivery or transient-local history from a publisher
    that offers less.  (rclpy's ``qos_check_compatible`` takes the infinite deadline and
    lease duration the graph reports for a subscription as set ones, rclpy 9.1, so only
    these two policies are compared.)"""
    best_effort = pub.reliability == ReliabilityPolicy.BEST_EFFORT
    volatile = pub.durability in (DurabilityPolicy.VOLATILE, DurabilityPolicy.SYSTEM_DEFAULT)
    return not (best_effort and sub.reliability == ReliabilityPolicy.RELIABLE) and not (
        volatile and sub.durability == DurabilityPolicy.TRANSIENT_LOCAL)


def subscribed(node: Node, pub: Publisher[Any], node_name: str = "") -> bool:
    """True when ``pub`` (created by ``node``) is matched with a subscription; with
    ``node_name``, with a subscription of that node (see the module docstring)."""
    matched = pub.get_subscription_count()
    if matched == 0:
        return False
    if not node_name:
        return True
    compatible = [info for info in node.get_subscriptions_info_by_topic(pub.topic_name)
                  if may_match(pub.qos_profile, info.qos_profile)]
    return any(is_node(node_name, i) for i in compatible) and matched >= len(compatible)


def wait_subscribed(node: Node, pubs: Sequence[Publisher[Any]], timeout_s: float,
                    node_name: str = "", poll_s: float = 0.05) -> list[str]:
    """Wait up to ``timeout_s`` until every publisher in ``pubs`` is :func:`subscribed`;
    return the topics that are not (empty: all matched)."""
    deadline = time.monotonic() + timeout_s
    while True:
        missing = [p.topic_name for p in pubs if not subscribed(node, p, node_name)]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(poll_s)
