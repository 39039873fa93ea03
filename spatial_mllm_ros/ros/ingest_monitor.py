"""A tiny rclpy client that reads the node's ingest counters from /diagnostics.

Used by the tests, the demo and the benchmark::

    with IngestMonitor() as mon:
        values = mon.wait_for(lambda v: int(v.get("frames.emitted", 0)) >= 10, timeout_s=10)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray

from spatial_mllm_ros.ros.client import BackgroundNode
from spatial_mllm_ros.ros.diagnostics import INGEST_STATUS_NAME
from spatial_mllm_ros.ros.qos import reliable_qos

__all__ = ["IngestMonitor", "as_int"]


def as_int(values: dict[str, str], key: str) -> int:
    """A counter from a diagnostics values dict (absent = 0)."""
    return int(values.get(key, "0"))


class IngestMonitor(BackgroundNode):
    """Subscribes to /diagnostics in a background executor; keeps the latest ingest status."""

    def __init__(self, node_name: str = "ingest_monitor") -> None:
        self._cond = threading.Condition()
        self.latest: dict[str, str] | None = None
        self.message = ""
        self.level = 0  # of the latest status: 0 OK, 1 WARN, 2 ERROR
        self.updates = 0
        super().__init__(node_name)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag,
                                      reliable_qos(10))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == INGEST_STATUS_NAME:
                with self._cond:
                    self.latest = {kv.key: kv.value for kv in status.values}
                    self.message = status.message
                    self.level = (int.from_bytes(status.level, "little")
                                  if isinstance(status.level, bytes) else int(status.level))
                    self.updates += 1
                    self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[dict[str, str]], bool], timeout_s: float = 10.0
    ) -> dict[str, str]:
        """Block until a status satisfies ``predicate``; return it (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if self.latest is not None and predicate(self.latest):
                    return dict(self.latest)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no matching {INGEST_STATUS_NAME!r} status within {timeout_s} s; "
                        f"latest: {self.latest}"
                    )
                self._cond.wait(left)

    def wait_for_update(self, timeout_s: float = 10.0) -> dict[str, str]:
        """The first status published after this call."""
        with self._cond:
            start = self.updates
        return self.wait_for(lambda _v: self.updates > start, timeout_s)
