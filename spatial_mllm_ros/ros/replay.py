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
best-effort subscribers, such as the node's sensor-data QoS).  Before exiting, the replay waits
(``--ack-timeout``) until reliable subscribers have acknowledged every message: destroying a
publisher drops the samples still in flight, which are the bag's last, largest messages (the
``ros2 bag play --wait-for-all-acked`` behaviour).  ``--wait-subscribers`` waits, before the
first message, until every replayed topic has a subscriber (volatile QoS: a message published
before a subscriber is matched never reaches it).

SIGINT or SIGTERM (``--loop`` plays until one) stops the replay at once: the count of
published messages is still printed, without waiting for acknowledgements, and the exit
status is 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

EPILOG = """\
equivalent with a ROS 2 install:
  ros2 bag play BAG [--rate R] [--loop] [--topics T1 T2 ...]

example (a recorded RGB-D directory, replayed to the node):
  spatial-mllm-bag-from-rgbd ../shared/data/real_rgbd_shelf /tmp/shelf_bag
  spatial-mllm-replay /tmp/shelf_bag --rate 1.0
"""

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_BAG = 3
EXIT_ROS = 1
PROG = "spatial-mllm-replay"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spatial-mllm-replay",
        description="Publish a rosbag2 (sqlite3 or mcap) to the live ROS graph with its "
                    "original timing.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bag", help="rosbag2 directory")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    p.add_argument("--loop", action="store_true", help="play again from the start at the end")
    p.add_argument("--topics", nargs="+", default=None, help="only these topics")
    p.add_argument("--delay", type=float, default=0.5,
                   help="seconds to wait after creating publishers (discovery), default 0.5")
    p.add_argument("--wait-subscribers", type=float, default=0.0, metavar="SECONDS",
                   help="before publishing, wait up to SECONDS until every replayed topic has "
                        "a subscriber (default 0: do not wait)")
    p.add_argument("--ack-timeout", type=float, default=5.0, metavar="SECONDS",
                   help="at the end, wait up to SECONDS until reliable subscribers have "
                        "acknowledged every message (default 5)")
    return p


def wait_for_subscribers(pubs: dict[str, Any], timeout_s: float) -> list[str]:
    """Wait up to ``timeout_s`` until every publisher is matched; the topics still without one."""
    deadline = time.monotonic() + timeout_s
    while True:
        missing = sorted(t for t, pub in pubs.items() if pub.get_subscription_count() == 0)
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.05)


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
    """Entry point; returns the exit code (130 / 143 when SIGINT / SIGTERM stopped it)."""
    from spatial_mllm_ros.ros.interrupts import Interrupted, interrupting_signals

    args = _parser().parse_args(argv)
    try:
        with interrupting_signals(PROG):
            return _replay(args)
    except Interrupted as sig:  # outside the publishing loop (opening the bag, discovery)
        print(f"{PROG}: interrupted by {sig.name}", file=sys.stderr)
        return sig.exit_code


def _replay(args: argparse.Namespace) -> int:
    """Play the bag of ``args``; the exit code."""
    from spatial_mllm_ros.ros.interrupts import Interrupted

    prog = PROG
    if not args.rate > 0 or min(args.delay, args.wait_subscribers, args.ack_timeout) < 0:
        print(f"{prog}: error: --rate must be > 0; --delay, --wait-subscribers and "
              "--ack-timeout >= 0", file=sys.stderr)
        return EXIT_USAGE
    from spatial_mllm_ros.bags import BagError, BagSource

    try:
        source = BagSource(args.bag)
    except BagError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_BAG
    topics = dict(source.info.topics)
    if args.topics:
        missing = [t for t in args.topics if t not in topics]
        if missing:
            print(f"{prog}: error: topics not in the bag: {', '.join(missing)}\n"
                  f"the bag's topics:\n{source.info.describe_topics()}", file=sys.stderr)
            source.close()
            return EXIT_BAG
        topics = {t: topics[t] for t in args.topics}
    try:
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rclpy.signals import SignalHandlerOptions

        from spatial_mllm_ros.ros.conversions import message_class
    except ImportError as err:
        print(f"{prog}: error: rclpy is not importable ({err}); source the ROS environment",
              file=sys.stderr)
        source.close()
        return EXIT_ROS

    # rclpy's own handlers would shut the context down under a publish (RCLError)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("spatial_mllm_replay")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    pubs: dict[str, Any] = {}
    for topic, (msgtype, _n) in sorted(topics.items()):
        try:
            pubs[topic] = node.create_publisher(message_class(msgtype), topic, qos)
        except (ImportError, AttributeError) as err:
            print(f"{prog}: warning: skipping {topic} [{msgtype}]: {err}", file=sys.stderr)
    if not pubs:
        print(f"{prog}: error: no topic can be published", file=sys.stderr)
        node.destroy_node()
        rclpy.shutdown()
        source.close()
        return EXIT_BAG
    sent = 0
    code = EXIT_OK
    interrupted: Interrupted | None = None
    try:
        time.sleep(args.delay)
        if args.wait_subscribers > 0:
            alone = wait_for_subscribers(pubs, args.wait_subscribers)
            if alone:
                print(f"{prog}: warning: no subscriber after {args.wait_subscribers} s on: "
                      f"{', '.join(alone)}", file=sys.stderr)
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
                sent += 1
            if not args.loop:
                break
    except Interrupted as sig:
        interrupted = sig
        code = sig.exit_code
    except BagError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        code = EXIT_BAG
    finally:
        late: list[str] = []
        try:
            if sent and interrupted is None and rclpy.ok():
                late = wait_for_acks(pubs, args.ack_timeout)
        except Interrupted as sig:
            interrupted, code = sig, sig.exit_code
        if late:
            print(f"{prog}: warning: not acknowledged within {args.ack_timeout} s: "
                  f"{', '.join(late)}", file=sys.stderr)
        stopped = "" if interrupted is None else f" (stopped by {interrupted.name})"
        print(f"{prog}: published {sent} messages on {len(pubs)} topics{stopped}",
              file=sys.stderr)
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        source.close()
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
