"""SIGINT and SIGTERM end a command-line tool at once, with a clear message and no traceback.

Inside :func:`interrupting_signals`, the first SIGINT or SIGTERM raises :class:`Interrupted`
in the main thread, wherever it waits: ``time.sleep``, ``threading.Event.wait`` and
``Condition.wait`` return through the exception at once (POSIX lock waits are interruptible).
A second signal during the clean-up that follows ends the process at once (``os._exit``).
The tool then exits with :attr:`Interrupted.exit_code`, ``128 + signal number`` as a shell
reports it: 130 for SIGINT, 143 for SIGTERM.

rclpy must not install its own handlers in such a process (``rclpy.init(...,
signal_handler_options=SignalHandlerOptions.NO)``): rclpy's handler shuts the context down
from the signal, so that a publish or a service check racing with it fails with an
``RCLError`` traceback instead of ending cleanly.  Never imports rclpy.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "Interrupted", "interrupting_signals", "raise_on_stop_signals"]

#: The signals that end a tool: Ctrl-C and ``kill``/``docker stop``/``ros2 launch`` shutdown.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived (a KeyboardInterrupt, so ``except KeyboardInterrupt`` sees it).

    Attributes:
        signum: the signal number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def name(self) -> str:
        """The signal's name, e.g. ``SIGINT``."""
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """``128 + signum``: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


@contextmanager
def interrupting_signals(prog: str) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM raise :class:`Interrupted` (the first one) or end the
    process with ``128 + signum`` (any later one, e.g. a second Ctrl-C during the clean-up,
    after ``prog: <SIGNAL> again; exiting now`` on stderr).  The previous handlers are
    restored on exit.  Outside the main thread (where Python cannot set handlers) it does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        if fired:
            print(f"{prog}: {signal.Signals(signum).name} again; exiting now",
                  file=sys.stderr, flush=True)
            os._exit(128 + signum)
        fired.append(signum)
        raise Interrupted(signum)

    previous: dict[signal.Signals, Any] = {}
    for sig in STOP_SIGNALS:
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)


def raise_on_stop_signals() -> Callable[[], None]:
    """For a library that lets rclpy handle the signals (``BackgroundNode``): SIGINT and
    SIGTERM raise :class:`Interrupted` in the main thread, each time, where the program left
    them at Python's defaults (SIGINT: KeyboardInterrupt; SIGTERM: the process ends).  Call
    it before ``rclpy.init``: rclpy's handlers shut the context down, then call these.
    (rclpy alone turns SIGTERM into a context shutdown, so a program waiting in the main
    thread would not end.)  A signal the program ignores or handles itself is left alone;
    outside the main thread nothing is changed.  Returns the function that restores the
    previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signum)

    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    previous: dict[signal.Signals, Any] = {}
    for sig, default in defaults.items():
        if signal.getsignal(sig) is default:
            previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, old)

    return restore
