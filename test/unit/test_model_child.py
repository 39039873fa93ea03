"""The model process's side of the pipe: heartbeats while a request is worked on, none after."""

from __future__ import annotations

import multiprocessing
import time

from spatial_mllm_ros.answering.child import HEARTBEAT_S, _Outbox
from spatial_mllm_ros.answering.protocol import Alive, Reply, Token


def _drain(conn: multiprocessing.connection.Connection) -> list[tuple[object, ...]]:
    got = []
    while conn.poll(0):
        got.append(conn.recv())
    return got


def test_heartbeats_only_while_busy_and_the_reply_ends_them() -> None:
    node, child = multiprocessing.Pipe()
    outbox = _Outbox(child)
    try:
        time.sleep(4 * HEARTBEAT_S)
        assert _drain(node) == []  # idle: the node is not reading, nothing is sent
        outbox.begin()
        time.sleep(5 * HEARTBEAT_S)
        outbox.send(Token([1], "a"))
        time.sleep(3 * HEARTBEAT_S)
        outbox.reply(Reply([], None))
        got = _drain(node)
        assert got[-1] == Reply([], None)
        beats = [m for m in got if m == Alive()]
        assert len(beats) >= 3  # ~8 periods busy: a silent child would be a stopped one
        assert Token([1], "a") in got
        time.sleep(4 * HEARTBEAT_S)
        assert _drain(node) == []  # after the reply: silence again
    finally:
        outbox.close()
        node.close()
        child.close()
