"""``spatial-mllm-serve`` as a test process: started as a user starts it, ready once it says
``serving``; its ``/v1/health``; Ctrl-C to stop it. Used by test/cli's server and fleet tests.
Importing it needs neither Ray nor rclpy."""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from testkit.cli import signal_group, start_command

__all__ = ["ServeProcess", "start_serve"]

#: longest wait for Ray, Serve and the replicas to come up on this machine (seconds)
START_S = 300.0


@dataclass
class ServeProcess:
    """A running ``spatial-mllm-serve`` and everything it wrote on stderr so far."""

    proc: subprocess.Popen[str]
    port: int
    token: str
    stderr: list[str] = field(default_factory=list)

    def health(self) -> dict[str, Any]:
        """``GET /v1/health`` with the token."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/v1/health", headers={"Authorization": f"Bearer {self.token}"})
        doc: dict[str, Any] = json.loads(conn.getresponse().read())
        conn.close()
        return doc

    def stop(self) -> int:
        """Ctrl-C to its process group; its exit code (SIGKILL after 120 s)."""
        if self.proc.poll() is None:
            signal_group(self.proc)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                signal_group(self.proc, 9)
                self.proc.wait(10)
        return int(self.proc.returncode)

    def output(self) -> str:
        return "".join(self.stderr)


def start_serve(argv: Sequence[str], port: int, token: str,
                env: Mapping[str, str] | None = None) -> ServeProcess:
    """Start ``argv`` (a ``spatial-mllm-serve`` line) with ``SPATIAL_MLLM_TOKEN`` = ``token``
    and ``env``; return once it serves (AssertionError with its output otherwise)."""
    proc = start_command(list(argv), env={"SPATIAL_MLLM_TOKEN": token, **(env or {})})
    server = ServeProcess(proc, port, token)
    ready = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            server.stderr.append(line)
            if "serving" in line or "did not start" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not (ready.wait(START_S) and proc.poll() is None):
        server.stop()
        raise AssertionError(f"spatial-mllm-serve did not start:\n{server.output()}")
    return server
