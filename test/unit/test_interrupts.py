"""SIGINT/SIGTERM end a tool's waits at once (``spatial_mllm_ros.ros.interrupts``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from testkit.paths import REPO

from spatial_mllm_ros.ros.interrupts import Interrupted, interrupting_signals


def _signal_soon(signum: int) -> threading.Timer:
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signum))
    timer.start()
    return timer


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_a_long_sleep_with_its_exit_code(signum: int, code: int) -> None:
    with pytest.raises(Interrupted) as exc, interrupting_signals("test"):
        _signal_soon(signum)
        time.sleep(60)
    assert exc.value.signum == signum
    assert exc.value.exit_code == code
    assert exc.value.name == signal.Signals(signum).name
    assert isinstance(exc.value, KeyboardInterrupt)


def test_a_signal_ends_an_event_wait() -> None:
    with pytest.raises(Interrupted), interrupting_signals("test"):
        _signal_soon(signal.SIGTERM)
        threading.Event().wait(60)


def test_previous_handlers_come_back() -> None:
    def mine(_s: int, _f: object) -> None:
        return None

    old = signal.signal(signal.SIGTERM, mine)
    sigint = signal.getsignal(signal.SIGINT)  # as inherited (SIG_IGN in a background job)
    try:
        with interrupting_signals("test"):
            assert signal.getsignal(signal.SIGTERM) is not mine
            assert signal.getsignal(signal.SIGINT) is not sigint
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is sigint
    finally:
        signal.signal(signal.SIGTERM, old)


def test_outside_the_main_thread_nothing_is_installed() -> None:
    seen: list[object] = []

    def run() -> None:
        with interrupting_signals("test"):
            seen.append(signal.getsignal(signal.SIGINT))

    before = signal.getsignal(signal.SIGINT)  # whatever this process inherited
    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [before]


def test_a_second_signal_during_the_clean_up_exits_at_once() -> None:
    code = (
        "import os, signal, time\n"
        "from spatial_mllm_ros.ros.interrupts import interrupting_signals\n"
        "with interrupting_signals('prog'):\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGINT); time.sleep(60)\n"
        "    finally:\n"
        "        os.kill(os.getpid(), signal.SIGTERM); time.sleep(60)\n"
        "print('not reached')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 143
    assert "prog: SIGTERM again; exiting now" in res.stderr
    assert "not reached" not in res.stdout
