"""``spatial-mllm-ask``: ask the node a question from the command line (no ``ros2`` CLI needed).

Equivalent ``ros2`` CLI call::

    ros2 service call /spatial_mllm/ask spatial_mllm_ros/srv/AskSpatial \\
        "{question: 'How many chairs are in this room?'}"

By default the question goes through the ``~/ask`` service; ``--via topic`` publishes a
``SpatialQuestion`` on ``~/question`` and waits for the ``SpatialAnswer`` with the same id on
``~/answer`` (the path a navigation stack uses).  Every flag is checked before a message is
built (``--frames`` within the node's largest frame budget, ``--id`` within uint64, ...).
While it waits for the node (more than a second), it says on stderr what it waits for: the
service, action or topic, the node, and the ROS_DOMAIN_ID.

``--stream`` asks through the ``~/ask_stream`` action and shows the answer's text on stderr as
it is generated (``[queued] [sampling] [encoders] [decode] `` and then the text).  Ctrl-C (or
SIGTERM) once the question is sent cancels it: the node stops within one token, and the
CANCELED answer, with the text generated so far, is printed as any answer is (``--json``:
the JSON), waited for at most :data:`CANCEL_WAIT_S`.  Without ``--stream`` an interruption
ends the wait at once and says whether the question was sent (the node may still answer it).

Exit status (:class:`~spatial_mllm_ros.exitcodes.ExitCode`): OK (0) for an OK answer, NOT_OK
(1) for any other answer status, USAGE (2) for bad arguments, NO_ANSWER (6) when no answer
came (no node, no answer within ``--wait``), INTERRUPTED (130) / TERMINATED (143) when SIGINT
/ SIGTERM ended it -- also after a streamed question's CANCELED answer was printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from spatial_mllm_ros import params as P
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.ros.interrupts import Interrupted, interrupting_signals
from spatial_mllm_ros.vsibench.prompts import OPTION_LETTERS, QUESTION_TYPES

PROG = "spatial-mllm-ask"
DEFAULT_NODE = "/spatial_mllm"
#: Longest wait, after Ctrl-C, for a canceled streamed question's answer (seconds).
CANCEL_WAIT_S = 5.0

#: Largest frame budget any node accepts: the schema's bound of ``sampling.max_frame_budget``
#: (the message field, uint16, would take 65535).
MAX_FRAMES = int(P.spec("sampling.max_frame_budget").max or 0)
#: ``SpatialQuestion.query_id`` is a uint64.
MAX_QUERY_ID = 2**64 - 1
#: A question's deadline (``timeout_s``) within the schema's range of ``queue.timeout_s``.
TIMEOUT_RANGE = (float(P.spec("queue.timeout_s").min or 0.0),
                 float(P.spec("queue.timeout_s").max or 0.0))
#: A ROS 2 name (absolute, relative or ``~``-private): tokens of letters, digits and
#: underscores, none starting with a digit, separated by single slashes.
_ROS_NAME = re.compile(r"^(~|/|~/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


def _int_in(lo: int, hi: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi} ({what})")
        return value

    return parse


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _timeout(text: str) -> float:
    value = _float(text)
    lo, hi = TIMEOUT_RANGE
    if value != 0 and not lo <= value <= hi:
        raise argparse.ArgumentTypeError(
            f"{value} is outside {lo:g}..{hi:g} s (0 = the node's queue.timeout_s)")
    return value


def _wait(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not > 0")
    return value


def _question_type(text: str) -> str:
    if text and text not in QUESTION_TYPES:
        raise argparse.ArgumentTypeError(
            f"unknown type {text!r}; one of: {', '.join(QUESTION_TYPES)}")
    return text


def _strategy(text: str) -> str:
    choices = P.spec("sampling.strategy").choices
    if text and text not in choices:
        raise argparse.ArgumentTypeError(f"unknown strategy {text!r}; one of: "
                                         + ", ".join(choices))
    return text


def _option(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("an option is empty")
    return text


def _node(text: str) -> str:
    if text != "/" and not _ROS_NAME.match(text.rstrip("/")):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a ROS name (e.g. /spatial_mllm or /robot1/spatial_mllm)")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Ask the spatial_mllm node a spatial question and print its answer.",
        epilog="exit status: 0 OK answer, 1 other answer status, 2 bad arguments, 6 no "
               "answer (no node, no answer within --wait), 130/143 ended by SIGINT/SIGTERM "
               "(with --stream after printing the canceled answer)",
    )
    p.add_argument("question", help="the question, e.g. 'How many chairs are in this room?'")
    p.add_argument("--type", default="", dest="question_type", type=_question_type,
                   help="question type (VSI-Bench type or 'open'); default: inferred")
    p.add_argument("--option", action="append", default=[], dest="options", type=_option,
                   help="a multiple-choice option; repeat for each, 2 to "
                        f"{len(OPTION_LETTERS)} (lettered A, B, ...)")
    p.add_argument("--frames", type=_int_in(0, MAX_FRAMES, "0 = the node's default budget"),
                   default=0,
                   help=f"frame budget, 1..{MAX_FRAMES} within the node's "
                        "sampling.max_frame_budget (0 = node default)")
    p.add_argument("--strategy", default="", type=_strategy,
                   help="coverage | scored | uniform (default: the node's)")
    p.add_argument("--timeout", type=_timeout, default=0.0,
                   help=f"deadline the node applies, {TIMEOUT_RANGE[0]:g}..{TIMEOUT_RANGE[1]:g}"
                        " seconds (0 = node default)")
    p.add_argument("--wait", type=_wait, default=120.0,
                   help="how long this client waits for the answer, seconds (> 0)")
    p.add_argument("--node", default=DEFAULT_NODE, type=_node,
                   help="node namespace/name prefix")
    p.add_argument("--via", choices=("service", "topic"), default="service")
    p.add_argument("--stream", action="store_true",
                   help="ask through the ~/ask_stream action and print the answer's tokens "
                        "on stderr as they are generated (Ctrl-C cancels the question)")
    p.add_argument("--id", type=_int_in(0, MAX_QUERY_ID, "uint64"), default=None,
                   dest="query_id",
                   help="query id for --via topic (default: derived from time and pid)")
    p.add_argument("--json", action="store_true", help="print the full answer as JSON")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The checked arguments (``SystemExit(2)`` with a usage error otherwise)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.question.strip():
        parser.error("the question is empty")
    if len(args.options) == 1 or len(args.options) > len(OPTION_LETTERS):
        parser.error(f"give 2 to {len(OPTION_LETTERS)} --option values, not "
                     f"{len(args.options)}")
    return args


def answer_to_dict(msg: Any) -> dict[str, Any]:
    """A received ``SpatialAnswer`` in the answer's one JSON form, ``AnswerRecord.to_json``
    (the same keys and value types ``spatial-mllm-infer`` prints)."""
    from spatial_mllm_ros.ros.answer_msgs import record_from_msg

    return record_from_msg(msg).to_json()


def format_answer(d: dict[str, Any], show_id: bool = False) -> str:
    """Human-readable summary of :func:`answer_to_dict`'s output (``show_id``: with the
    query id, the caller's own with ``--via topic``)."""
    lines = [f"[{d['status']}] {d['answer']!r}" + (f"  error: {d['error']}" if d["error"] else "")
             + (f"  (query id {d['query_id']})" if show_id else "")]
    if d["status"] == "OK":
        cov, uni = d["coverage"], d["uniform_coverage"]
        lines.append(
            f"type={d['question_type']} value={d['numeric_value']} option={d['option']!r} "
            f"frames={len(d['frame_stamps_ns'])}{_per_camera(d.get('frame_cameras', []))} "
            f"strategy={d['strategy']} "
            f"coverage={'n/a' if cov is None else f'{cov:.3f}'} "
            f"(uniform {'n/a' if uni is None else f'{uni:.3f}'})"
        )
        for b in d["boxes"]:
            lines.append(f"  box {b['label']!r} {b['xyxy']} position={b['position']}")
    lines += [f"  note: {n}" for n in d.get("notes", [])]
    return "\n".join(lines)


def _per_camera(cameras: list[str]) -> str:
    """`` (front 3, left 5)``: the frames of each camera, when they come from several."""
    counts: dict[str, int] = {}
    for name in cameras:
        counts[name] = counts.get(name, 0) + 1
    if len(counts) < 2:
        return ""
    return " (" + ", ".join(f"{name} {n}" for name, n in counts.items()) + ")"


#: Longest wait for the node's service, action or question subscriber (the client's own).
SERVER_WAIT = 30.0


def _domain() -> str:
    return os.environ.get("ROS_DOMAIN_ID", "").strip() or "0"


def _notice(args: argparse.Namespace, what: str) -> Callable[[], None]:
    """What to print when the node is not there at once."""
    def say() -> None:
        print(f"{PROG}: waiting for {what} (node {args.node}) on ROS_DOMAIN_ID={_domain()} "
              f"(up to {min(args.wait, SERVER_WAIT):g} s) ...", file=sys.stderr, flush=True)
    return say


def ask(client: Any, args: argparse.Namespace) -> Any:
    """Send the question through ``client`` (an ``AskClient``); return the ``SpatialAnswer``
    (NoAnswerError when none in time)."""
    fields = {
        "question_type": args.question_type, "options": list(args.options),
        "frame_budget": args.frames, "sampling_strategy": args.strategy,
        "timeout_s": float(args.timeout),
    }
    node = args.node.rstrip("/")
    server_wait = min(args.wait, SERVER_WAIT)
    if args.stream:
        client.wait_for_action(server_wait, _notice(args, f"{node}/ask_stream"))
        return client.ask_stream(args.question, wait_s=args.wait,
                                 on_feedback=FeedbackPrinter(), **fields)
    if args.via == "service":
        client.wait_for_service(server_wait, _notice(args, f"{node}/ask"))
        return client.ask(args.question, wait_s=args.wait, **fields)
    query_id = args.query_id if args.query_id is not None else (
        (time.time_ns() // 1000) * 1000 + os.getpid() % 1000)
    client.wait_question_subscriber(server_wait, _notice(args, f"a subscriber of {node}/question"))
    client.publish_question(query_id, args.question, **fields)
    return client.wait_answers([query_id], wait_s=args.wait)[query_id][0]


class FeedbackPrinter:
    """Shows a streamed answer on stderr: ``[stage] `` for each stage (``[decode] `` once), then
    each new piece of the text as feedback brings it."""

    def __init__(self) -> None:
        self.shown = ""
        self.stage = ""

    def __call__(self, feedback: Any) -> None:
        stage, text = str(feedback.stage), str(feedback.text)
        if stage != self.stage:
            sys.stderr.write(f"[{stage}] ")
            self.stage = stage
        if stage == "decode" and text.startswith(self.shown):
            sys.stderr.write(text[len(self.shown):])
            self.shown = text
        sys.stderr.flush()


def print_answer(msg: Any, args: argparse.Namespace) -> str:
    """Print the answer on stdout (JSON with ``--json``); its status name."""
    d = answer_to_dict(msg)
    show_id = args.via == "topic" and not args.stream
    print(json.dumps(d, indent=2) if args.json else format_answer(d, show_id), flush=True)
    return str(d["status"])


def _interrupted(client: Any, args: argparse.Namespace, sig: Interrupted) -> int:
    """After SIGINT/SIGTERM: cancel a streamed question and print its CANCELED answer, or
    say whether the question was sent; the exit code."""
    stream = client.stream if args.stream else None
    if stream is not None:
        sys.stderr.write("\n")
        answer = stream.cancel(CANCEL_WAIT_S)
        if answer is not None:
            status = print_answer(answer, args)
            after = ("the question was canceled" if status == "CANCELED"
                     else f"the answer ({status}) came before the cancel")
        else:
            after = (f"the question was canceled; no answer came within {CANCEL_WAIT_S:g} s")
    elif client.questions_sent:
        after = "the question was sent, the node may still answer it"
    else:
        after = "no question was sent"
    print(f"{PROG}: interrupted by {sig.name}; {after}", file=sys.stderr)
    return sig.exit_code


def _hint(client: Any) -> str:
    """What to do after a NoAnswerError: find the node, or wait longer for its answer."""
    if client.questions_sent:
        return (" (--wait waits longer; --timeout sets the node's own deadline)")
    return (f" on ROS_DOMAIN_ID={_domain()}: start the node on this ROS_DOMAIN_ID "
            "(spatial_mllm_node --ros-args --params-file config/cpu_tiny.yaml), or give "
            "its name with --node")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (see the module docstring)."""
    args = parse_args(argv)
    client_up = False
    try:
        with interrupting_signals(PROG):
            from spatial_mllm_ros.ros.client import AskClient, NoAnswerError

            with AskClient(f"spatial_mllm_ask_{os.getpid()}", args.node,
                           rclpy_signal_handlers=False) as client:
                client_up = True
                try:
                    msg = ask(client, args)
                except NoAnswerError as err:
                    print(f"{PROG}: error: {err}{_hint(client)}", file=sys.stderr)
                    return ExitCode.NO_ANSWER
                except Interrupted as sig:
                    return _interrupted(client, args, sig)
                if args.stream:
                    sys.stderr.write("\n")
    except Interrupted as sig:  # before the client was up, or while it closed
        print(f"{PROG}: interrupted by {sig.name}" + ("" if client_up else
                                                       "; no question was sent"),
              file=sys.stderr)
        return sig.exit_code
    status = print_answer(msg, args)
    return ExitCode.OK if status == "OK" else ExitCode.NOT_OK


if __name__ == "__main__":
    raise SystemExit(main())
