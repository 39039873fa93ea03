"""``spatial-mllm-ask``: ask the node a question from the command line (no ``ros2`` CLI needed).

Equivalent ``ros2`` CLI call::

    ros2 service call /spatial_mllm/ask spatial_mllm_ros/srv/AskSpatial \\
        "{question: 'How many chairs are in this room?'}"

By default the question goes through the ``~/ask`` service; ``--via topic`` publishes a
``SpatialQuestion`` on ``~/question`` and waits for the ``SpatialAnswer`` with the same id on
``~/answer`` (the path a navigation stack uses). Exit status: 0 for an OK answer, 1 for any
other answer status, 2 when no answer could be obtained (no node, timeout, bad arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

DEFAULT_NODE = "/spatial_mllm"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spatial-mllm-ask",
        description="Ask the spatial_mllm node a spatial question and print its answer.",
    )
    p.add_argument("question", help="the question, e.g. 'How many chairs are in this room?'")
    p.add_argument("--type", default="", dest="question_type",
                   help="question type (VSI-Bench type or 'open'); default: inferred")
    p.add_argument("--option", action="append", default=[], dest="options",
                   help="a multiple-choice option; repeat for each (lettered A, B, ...)")
    p.add_argument("--frames", type=int, default=0, help="frame budget (0 = node default)")
    p.add_argument("--strategy", default="", help="coverage | scored | uniform")
    p.add_argument("--timeout", type=float, default=0.0,
                   help="deadline the node applies, seconds (0 = node default)")
    p.add_argument("--wait", type=float, default=120.0,
                   help="how long this client waits for the answer, seconds")
    p.add_argument("--node", default=DEFAULT_NODE, help="node namespace/name prefix")
    p.add_argument("--via", choices=("service", "topic"), default="service")
    p.add_argument("--id", type=int, default=None, dest="query_id",
                   help="query id for --via topic (default: derived from time and pid)")
    p.add_argument("--json", action="store_true", help="print the full answer as JSON")
    return p


def answer_to_dict(msg: Any) -> dict[str, Any]:
    """A received ``SpatialAnswer`` in the answer's one JSON form, ``AnswerRecord.to_json``
    (the same keys and value types ``spatial-mllm-infer`` prints)."""
    from spatial_mllm_ros.ros.answer_msgs import record_from_msg

    return record_from_msg(msg).to_json()


def format_answer(d: dict[str, Any]) -> str:
    """Human-readable summary of :func:`answer_to_dict`'s output."""
    lines = [f"[{d['status']}] {d['answer']!r}" + (f"  error: {d['error']}" if d["error"] else "")]
    if d["status"] == "OK":
        cov, uni = d["coverage"], d["uniform_coverage"]
        lines.append(
            f"type={d['question_type']} value={d['numeric_value']} option={d['option']!r} "
            f"frames={len(d['frame_stamps_ns'])} strategy={d['strategy']} "
            f"coverage={'n/a' if cov is None else f'{cov:.3f}'} "
            f"(uniform {'n/a' if uni is None else f'{uni:.3f}'})"
        )
        for b in d["boxes"]:
            lines.append(f"  box {b['label']!r} {b['xyxy']} position={b['position']}")
    return "\n".join(lines)


def ask(args: argparse.Namespace) -> Any:
    """Send the question; return the ``SpatialAnswer`` (NoAnswerError when none in time)."""
    from spatial_mllm_ros.ros.client import AskClient

    fields = {
        "question_type": args.question_type, "options": list(args.options),
        "frame_budget": args.frames, "sampling_strategy": args.strategy,
        "timeout_s": float(args.timeout),
    }
    with AskClient(f"spatial_mllm_ask_{os.getpid()}", args.node) as client:
        if args.via == "service":
            return client.ask(args.question, wait_s=args.wait, **fields)
        query_id = args.query_id if args.query_id is not None else (
            (time.time_ns() // 1000) * 1000 + os.getpid() % 1000)
        client.wait_question_subscriber(min(args.wait, 30.0))
        client.publish_question(query_id, args.question, **fields)
        return client.wait_answers([query_id], wait_s=args.wait)[query_id][0]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.question.strip():
        print("spatial-mllm-ask: the question is empty", file=sys.stderr)
        return 2
    from spatial_mllm_ros.ros.client import NoAnswerError

    try:
        msg = ask(args)
    except NoAnswerError as err:
        print(f"spatial-mllm-ask: {err}", file=sys.stderr)
        return 2
    d = answer_to_dict(msg)
    print(json.dumps(d, indent=2) if args.json else format_answer(d))
    return 0 if d["status"] == "OK" else 1


if __name__ == "__main__":
    raise SystemExit(main())
