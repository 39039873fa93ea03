"""The exit codes of every command of this package, in one table.

Every command-line tool (``spatial-mllm-infer``, ``-eval``, ``-scene``, ``-bag-from-rgbd``,
``-checkpoint``, ``-ask``, ``-replay``, ``-serve``, ``rgbd_stream_publisher``,
``spatial_mllm_node``)
exits with one of these codes, and the README's "Exit codes" table is this one.  A command
that fails prints one line on stderr that says what went wrong and what to do; never a
traceback.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    """Why a command ended."""

    #: Done: the command did what it says.
    OK = 0
    #: It ran, but the result is not a success: an answer whose status is not OK, a check that
    #: failed (engines not all active), frames published but not all delivered.
    NOT_OK = 1
    #: The command line or a parameter is wrong: unknown flag or parameter name, a value out
    #: of range or not one of the choices, a missing ``--params-file``.
    USAGE = 2
    #: An input does not exist or cannot be read: a frames folder, a bag, a questions file, a
    #: checkpoint directory.
    INPUT = 3
    #: The model could not be loaded or failed while answering.
    MODEL = 4
    #: The output cannot be written: it already exists and cannot be resumed, or is not
    #: writable.
    OUTPUT = 5
    #: No answer came: the node was not found, or did not answer in time.
    NO_ANSWER = 6
    #: Interrupted by SIGINT (Ctrl-C); 128 + the signal's number, as shells report it.  Also
    #: after ``spatial-mllm-ask --stream`` printed the CANCELED answer (the text so far) of
    #: the question the interruption canceled.
    INTERRUPTED = 130
    #: Ended by SIGTERM (as INTERRUPTED otherwise).
    TERMINATED = 143
