"""``spatial-mllm-replay``: publish a rosbag2 to the live ROS graph with its original timing.

For machines without ``ros2 bag play`` (the PyPI ROS wheels have no rosbag2).  The bag is read
with ``rosbags`` (sqlite3 or mcap) and each message's stored CDR bytes are published unchanged
(``Publisher.publish(bytes)``, rclpy's raw publish), so headers, stamps and payloads are exactly
the bag's.  Message classes are imported from the type names (``sensor_msgs/msg/Image`` ->
``from sensor_msgs.msg import Image``); topics whose type cannot be imported are skipped with a
warning.  Messages are sent at their log-time offsets from the first message, divided by
``--rate``.

Equivalent with a ROS 2 install::

    ros2 bag play BAG [--rate R] [--loop] [--topics T1 T2 ...]

Publishers are reliable with a history of 100 (a reliable publisher serves both reliable and
best-effort subscribers, such as the node's sensor-data QoS).  Before the first message the
replay waits (``--wait-subscribers``, default 10 s; 0 = do not wait) until every replayed
topic has a subscriber -- with volatile QoS a message published before a subscriber is matched
never reaches it -- prints how many subscribers each topic matched, and lets discovery settle
on the subscribers' side (``--delay``).  With no subscriber on any topic it stops there; a
topic without one is still played, and the exit status says so.  Before exiting it waits
(``--ack-timeout``) until reliable subscribers have acknowledged every message: destroying a
publisher drops the samples still in flight, which are the bag's last, largest messages (the
``ros2 bag play --wait-for-all-acked`` behaviour).

Exit status (:class:`~spatial_mllm_ros.exitcodes.ExitCode`): OK when every topic had a
subscriber and every reliable one acknowledged every message; NOT_OK when a topic had no
subscriber or messages were not acknowledged in time (the last line of stderr says which);
USAGE for a bad flag; INPUT for a bag that cannot be read or has none of ``--topics``.

SIGINT or SIGTERM (``--loop`` plays until one) stops the replay at once: the count of
published messages is still printed, without waiting for acknowledgements, and the exit
status is 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from spatial_mllm_ros.exitcodes import ExitCode

EPILOG = """\
equivalent with a ROS 2 install:
  ros2 bag play BAG [--rate R] [--loop] [--topics T1 T2 ...]

example (a recorded RGB-D directory, replayed to the node):
  spatial-mllm-bag-from-rgbd ../shared/data/real_rgbd_shelf /tmp/shelf_bag
  spatial-mllm-replay /tmp/shelf_bag --rate 1.0
"""

PROG = "spatial-mllm-replay"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Publish a rosbag2 (sqlite3 or mcap) to the live ROS graph with its "
                    "original timing.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bag", help="rosbag2 directory")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    p.add_argument("--loop", action="store_true", help="play again from the start at the end")
    p.add_argument("--topics", nargs="+", default=None, help="only these topics")
    p.add_argument("--wait-subscribers", type=float, default=10.0, metavar="SECONDS",
                   help="before publishing, wait up to SECONDS until every replayed topic has "
                        "a subscriber (default 10; 0: do not wait, play at once)")
    p.add_argument("--delay", type=float, default=0.5, metavar="SECONDS",
                   help="then wait SECONDS more, for the subscribers to discover the replay "
                        "(default 0.5)")
    p.add_argument("--ack-timeout", type=float, default=5.0, metavar="SECONDS",
                   help="at the end, wait up to SECONDS until reliable subscribers have "
                        "acknowledged every message (default 5)")
    return p


@dataclass(frozen=True)
class Matched:
    """Subscribers per replayed topic, counted after the wait for subscribers."""

    counts: dict[str, int]

    @property
    def alone(self) -> list[str]:
        """The topics no subscriber matched."""
        return sorted(t for t, n in self.counts.items() if n == 0)

    def lines(self) -> list[str]:
        """One line per topic: ``TOPIC: N subscriber(s)``."""
        return [f"{topic}: {n} subscriber{'' if n == 1 else 's'}"
                for topic, n in sorted(self.counts.items())]


def wait_for_subscribers(node: Any, pubs: dict[str, Any], timeout_s: float) -> Matched:
    """Wait up to ``timeout_s`` until every publisher is matched; the counts then."""
    from spatial_mllm_ros.ros.matching import wait_subscribed

    if timeout_s > 0:
        wait_subscribed(node, list(pubs.values()), timeout_s)
    return Matched({t: int(pub.get_subscription_count()) for t, pub in pubs.items()})


def wait_for_acks(pubs: dict[str, Any], timeout_s: float) -> list[str]:
    """Wait up to ``timeout_s`` in all for reliable subscribers to acknowledge everything;
    the topics not fully acknowledged in time."""
    from rclpy.duration import Duration

    deadline = time.monotonic() + timeout_s
    late: list[str] = []
    for topic, pub in sorted(pubs.items()):
        left = max(deadline - time.monotonic(), 0.0)
        if not pub.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9))):
            late.append(topic)
    return late


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    from spatial_mllm_ros.ros.interrupts import Interrupted, interrupting_signals

    args = _parser().parse_args(argv)
    try:
        with interrupting_signals(PROG):
            return _replay(args)
    except Interrupted as sig:  # outside the publishing loop (opening the bag, discovery)
        print(f"{PROG}: interrupted by {sig.name}", file=sys.stderr)
        return sig.exit_code


def _open(args: argparse.Namespace) -> tuple[Any, dict[str, Any]] | int:
    """The bag and its topics to play (``--topics``), or the exit code of a refusal."""
    from spatial_mllm_ros.bags import BagError, BagSource

    if not args.rate > 0 or min(args.delay, args.wait_subscribers, args.ack_timeout) < 0:
        print(f"{PROG}: error: --rate must be > 0; --delay, --wait-subscribers and "
              "--ack-timeout >= 0", file=sys.stderr)
        return ExitCode.USAGE
    try:
        source = BagSource(args.bag)
    except BagError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return ExitCode.INPUT
    topics = dict(source.info.topics)
    if args.topics:
        missing = [t for t in args.topics if t not in topics]
        if missing:
            print(f"{PROG}: the bag's topics:\n{source.info.describe_topics()}\n"
                  f"{PROG}: error: topics not in the bag: {', '.join(missing)}",
                  file=sys.stderr)
            source.close()
            return ExitCode.INPUT
        topics = {t: topics[t] for t in args.topics}
    return source, topics


def _replay(args: argparse.Namespace) -> int:
    """Play the bag of ``args``; the exit code. The bag, the node and the ROS context are
    released in reverse order of their making, whatever happens (an
    :class:`contextlib.ExitStack`)."""
    opened = _open(args)
    if isinstance(opened, int):
        return opened
    source, topics = opened
    with contextlib.ExitStack() as stack:
        stack.callback(source.close)
        try:
            import rclpy
        except ImportError as err:
            print(f"{PROG}: error: rclpy is not importable ({err}); source the ROS environment "
                  "(source .venv/bin/activate && source install/setup.bash)", file=sys.stderr)
            return ExitCode.NOT_OK
        node = stack.enter_context(_ros_node(rclpy))
        pubs = _publishers(node, topics)
        if not pubs:
            print(f"{PROG}: error: no topic of the bag can be published", file=sys.stderr)
            return ExitCode.INPUT
        return _play(args, source, node, pubs)


@contextlib.contextmanager
def _ros_node(rclpy: Any) -> Iterator[Any]:
    """The replay's node in a ROS context of its own, destroyed and shut down on exit."""
    from rclpy.signals import SignalHandlerOptions

    # rclpy's own handlers would shut the context down under a publish (RCLError)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("spatial_mllm_replay")
    try:
        yield node
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def _publishers(node: Any, topics: dict[str, Any]) -> dict[str, Any]:
    """A reliable publisher per topic whose message type imports (a warning for the rest)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from spatial_mllm_ros.ros.conversions import message_class

    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    pubs: dict[str, Any] = {}
    for topic, (msgtype, _n) in sorted(topics.items()):
        try:
            pubs[topic] = node.create_publisher(message_class(msgtype), topic, qos)
        except (ImportError, AttributeError) as err:
            print(f"{PROG}: warning: skipping {topic} [{msgtype}]: {err}", file=sys.stderr)
    return pubs


def _play(args: argparse.Namespace, source: Any, node: Any, pubs: dict[str, Any]) -> int:
    """Wait for subscribers, publish, wait for acknowledgements; the exit code."""
    import rclpy

    from spatial_mllm_ros.bags import BagError
    from spatial_mllm_ros.ros.interrupts import Interrupted

    played = Played()
    code: int = ExitCode.OK
    interrupted: Interrupted | None = None
    matched: Matched | None = None
    late: list[str] = []
    try:
        if args.wait_subscribers > 0:
            print(f"{PROG}: waiting up to {args.wait_subscribers:g} s for the subscribers of "
                  f"{len(pubs)} topics", file=sys.stderr)
            matched = wait_for_subscribers(node, pubs, args.wait_subscribers)
            for line in matched.lines():
                print(f"{PROG}: {line}", file=sys.stderr)
            if len(matched.alone) == len(pubs):
                print(f"{PROG}: published 0 messages on {len(pubs)} topics", file=sys.stderr)
                print(f"{PROG}: error: no subscriber on any topic after "
                      f"{args.wait_subscribers:g} s: start the node (or the recorder) first, "
                      "on the same ROS_DOMAIN_ID, or wait longer (--wait-subscribers)",
                      file=sys.stderr)
                return ExitCode.NOT_OK
        time.sleep(args.delay)
        _publish(args, source, pubs, played)
        late = wait_for_acks(pubs, args.ack_timeout) if rclpy.ok() else []
    except Interrupted as sig:
        interrupted = sig
        code = sig.exit_code
    except BagError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        code = ExitCode.INPUT
    stopped = "" if interrupted is None else f" (stopped by {interrupted.name})"
    print(f"{PROG}: published {played.sent} messages on {len(pubs)} topics{stopped}",
          file=sys.stderr)
    if code != ExitCode.OK:
        return code
    return _verdict(args, matched, late)


def _verdict(args: argparse.Namespace, matched: Matched | None, late: list[str]) -> int:
    """NOT_OK, with one error line, when a topic had no subscriber or was not acknowledged
    in time; else OK."""
    if matched is not None and matched.alone:
        print(f"{PROG}: error: no subscriber on {', '.join(matched.alone)} after "
              f"{args.wait_subscribers:g} s: their messages reached nobody (start the node "
              "first, or play only the others with --topics)", file=sys.stderr)
        return ExitCode.NOT_OK
    if late:
        print(f"{PROG}: error: not every message was acknowledged within "
              f"{args.ack_timeout:g} s on {', '.join(late)} (a subscriber fell behind or "
              "left; --ack-timeout waits longer)", file=sys.stderr)
        return ExitCode.NOT_OK
    return ExitCode.OK


@dataclass
class Played:
    """Messages published so far (read after an interruption)."""

    sent: int = 0


def _publish(args: argparse.Namespace, source: Any, pubs: dict[str, Any],
             played: Played) -> None:
    """Publish the bag's messages at their log-time offsets (again and again with
    ``--loop``), counting them in ``played``."""
    while True:
        t0_wall = time.monotonic()
        t0_bag: int | None = None
        for topic, log_time, raw in source.raw_messages(pubs):  # CDR, log-time order
            if t0_bag is None:
                t0_bag = log_time
            due = t0_wall + (log_time - t0_bag) / 1e9 / args.rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            pubs[topic].publish(raw)
            played.sent += 1
        if not args.loop:
            return


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
