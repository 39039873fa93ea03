"""Ingestion while answering: does the node keep its camera rate while a question is answered?

    python benchmarks/bench_answering.py [--quick] [--no-threads-run] [--timeline] [--cpus N]

Real processes over DDS (needs the colcon build and ``source install/setup.bash``):

* the ``spatial_mllm`` node (profile ``config/cpu_tiny.yaml``, reliable QoS depth 100,
  diagnostics every 0.2 s) on a private ROS_DOMAIN_ID;
* phase A: the stream publisher sends 30 Hz 640x480 RGB-D (colour, depth, camera info, pose)
  for ~8 s (``--quick``: ~3 s); no questions;
* phase B: the same stream again while a client in this process keeps exactly one question
  in flight through ``~/ask`` the whole time (answers back to back);
* phase B again on a fresh node with ``model.num_threads`` 0 (torch default: every core)
  instead of the profile's 1, to show why the profile leaves a core to ingestion.

Per phase, the CPU the node (and its busiest thread) and the model process used
(``/proc``, in cores), and from the node's ``/diagnostics`` counters (deltas over the
phase): messages published / received / accepted / rejected per topic, frames emitted,
pairing drops and pending, the accounting identities (``published == received == accepted
+ rejected`` per topic; ``accepted colour == emitted + dropped + pending``), the ingest rate
per topic while the stream ran (counter deltas over full diagnostics periods, node clock),
the worst 0.2 s period, the share of diagnostics periods in which the model was busy, and
in phase B the answers completed and their mean per-stage timings.  Printed: a table,
ratios B/A, and the target line of node 1 (colour rate while answering / alone >= 0.95
with 1 model thread, every frame accounted for), with the load average before and after
(the machine may be shared).
``--cpus N`` pins this process and everything it starts (node, model process, publisher) to
N of its CPUs: less CPU for the same work (what else runs there still competes).
``--timeline`` prints the messages received in each diagnostics period.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from procstats import (  # noqa: E402  (benchmarks/, this script's folder)
    cpu_sample,
    cpu_use,
    load_average,
    pin,
    start_burners,
)

TOPICS = ("colour", "depth", "camera_info", "pose")
STAGES = ("queue_wait", "sampling", "vision_2d", "spatial", "connector", "prefill", "decode",
          "total")
QUESTIONS = (
    ("How many chairs are in this room?", "object_counting"),
    ("What is the distance between the box and the wall in metres?", "object_abs_distance"),
    ("How big is this room in square metres?", "room_size_estimation"),
    ("What is the length of the longest side of the box in centimetres?",
     "object_size_estimation"),
)
DIAG_PERIOD_S = 0.2
#: colour rate while answering / rate alone that the 1-thread node must keep
TARGET_RATIO = 0.95


# --------------------------------------------------------------------------- monitoring
def make_recorder(name: str) -> Any:
    """An IngestMonitor that also keeps every (node stamp, ingest values, answering values)."""
    from spatial_mllm_ros.ros.diagnostics import ANSWER_STATUS_NAME, INGEST_STATUS_NAME
    from spatial_mllm_ros.ros.ingest_monitor import IngestMonitor

    class Recorder(IngestMonitor):
        def __init__(self, node_name: str) -> None:
            self.history: list[tuple[int, dict[str, str], dict[str, str]]] = []
            self._hist_lock = threading.Lock()
            super().__init__(node_name)

        def _on_diag(self, msg: Any) -> None:
            ingest: dict[str, str] = {}
            answering: dict[str, str] = {}
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if status.name == INGEST_STATUS_NAME:
                    ingest = values
                elif status.name == ANSWER_STATUS_NAME:
                    answering = values
            if ingest:
                stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                with self._hist_lock:
                    self.history.append((stamp, ingest, answering))
            super()._on_diag(msg)

        def mark(self) -> int:
            with self._hist_lock:
                return len(self.history)

        def since(self, mark: int) -> list[tuple[int, dict[str, str], dict[str, str]]]:
            with self._hist_lock:
                return list(self.history[mark:])

    return Recorder(name)


# --------------------------------------------------------------------------- asking
@dataclass
class Asker:
    """Keeps one question in flight through ``~/ask`` until stopped (own node + executor)."""

    #: (completion time, client-side seconds from request to answer, answer dict)
    answers: list[tuple[float, float, dict[str, Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 120.0) -> None:
        """Stop asking; the question in flight is waited for (its answer counts if in time)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        from spatial_mllm_ros.ros.ask_cli import answer_to_dict
        from spatial_mllm_ros.ros.client import AskClient

        try:
            with AskClient(f"bench_answering_asker_{os.getpid()}") as client:
                i = 0
                while not self._stop.is_set():
                    text, qtype = QUESTIONS[i % len(QUESTIONS)]
                    i += 1
                    sent = time.monotonic()
                    answer = client.ask(text, wait_s=120.0, question_type=qtype, timeout_s=60.0)
                    done = time.monotonic()
                    self.answers.append((done, done - sent, answer_to_dict(answer)))
        except Exception as err:  # reported by the phase, never silently lost
            self.errors.append(f"{type(err).__name__}: {err}")


# --------------------------------------------------------------------------- phases
@dataclass
class PhaseResult:
    label: str
    published: dict[str, int]
    received: dict[str, int]
    accepted: dict[str, int]
    rejected: dict[str, int]
    rate_hz: dict[str, float]
    min_period_hz: dict[str, float]
    lag_s: dict[str, float]
    emitted: int
    dropped: int
    pending_delta: int
    accounted: bool
    identity_notes: list[str]
    busy_share: float
    answers: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    asker_errors: list[str] = field(default_factory=list)
    #: per diagnostics period: (node seconds since the phase's first sample, colour and
    #: depth messages received in the period, model busy)
    timeline: list[tuple[float, int, int, bool]] = field(default_factory=list)
    #: cores busy over the phase (CPU seconds / wall seconds): node, its busiest thread,
    #: the model process
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def colour_ratio(self) -> float:
        return self.received["colour"] / max(self.published["colour"], 1)


def _n(values: dict[str, str], key: str) -> int:
    return int(values.get(key, "0"))


def _rejected(values: dict[str, str], topic: str) -> int:
    return sum(int(v) for k, v in values.items() if k.startswith(f"in.{topic}.rejected."))


@dataclass(frozen=True)
class TopicRate:
    rate_hz: float         # over the full diagnostics periods in which the counter rose
    slowest_hz: float      # slowest window of >= SLOW_WINDOW_S inside those periods
    window: list[int]      # indices of the samples spanned
    start_ns: int          # stamp of the last sample before the counter rose
    complete_ns: int       # stamp of the first sample at the final count


SLOW_WINDOW_S = 1.0


def _topic_rate(samples: list[tuple[int, dict[str, str], dict[str, str]]], key: str, r0: int,
                rf: int) -> TopicRate:
    """Rate of counter ``key`` (from ``r0`` before the phase to ``rf`` after it) in ``samples``.

    The first period (the stream starts mid-period) and the last (it ends mid-period) are left
    out: the rate is the counter delta between the first sample above ``r0`` and the last one
    below ``rf``, over their node-clock stamp difference.  Diagnostics periods are not exact
    (a late timer fires twice in a row), so the slowest rate is taken over windows of at
    least :data:`SLOW_WINDOW_S`.
    """
    idx = [i for i, (_, v, _) in enumerate(samples) if _n(v, key) > r0]
    if not samples or not idx:
        return TopicRate(0.0, 0.0, [], 0, 0)
    first = idx[0]
    last = next((i for i, (_, v, _) in enumerate(samples) if _n(v, key) >= rf), len(samples) - 1)
    if last - 1 > first:
        i, j = first, last - 1
    else:  # too short a phase for full periods: include the partial ones
        i, j = max(first - 1, 0), last
    stamp = [t for t, _, _ in samples]
    count = [_n(v, key) for _, v, _ in samples]
    dt = (stamp[j] - stamp[i]) / 1e9
    rate = (count[j] - count[i]) / dt if dt > 0 else 0.0
    slowest = rate
    m = i
    for k in range(i + 1, j + 1):
        while m + 1 < k and (stamp[k] - stamp[m + 1]) / 1e9 >= SLOW_WINDOW_S:
            m += 1
        span = (stamp[k] - stamp[m]) / 1e9
        if span >= SLOW_WINDOW_S:
            slowest = min(slowest, (count[k] - count[m]) / span)
    return TopicRate(rate, slowest, list(range(i, j + 1)), stamp[max(first - 1, 0)],
                     stamp[last])


def run_phase(label: str, env: dict[str, str], mon: Any, seconds: float,
              ask: bool, node_pid: int) -> PhaseResult:
    """One stream of ``seconds`` at 30 Hz (with back-to-back questions when ``ask``)."""
    from spatial_mllm_ros.demo import run_stream

    before = mon.wait_for_update(10)
    mark = mon.mark()
    if ask and _n(before, "buffer.frames") == 0:
        raise RuntimeError(f"phase {label}: the buffer is empty; stream a phase first")
    asker = Asker() if ask else None
    if asker is not None:
        asker.start()
        # the first question is being answered before the first frame is published
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                a.get("queue.busy") == "True" for _, _, a in mon.since(mark)):
            time.sleep(0.05)
    t_start = time.monotonic()
    cpu0 = cpu_sample(node_pid)
    count = round(30 * seconds)
    try:
        summary = run_stream(env, "--rate", "30", "--count", str(count), "--reliability",
                             "reliable", "--qos-depth", "100")
        published = {t: int(summary["published"].get(t, 0)) for t in TOPICS}
        try:  # reliable QoS: late messages still arrive; wait for every one (or 30 s)
            after = mon.wait_for(
                lambda v: all(_n(v, f"in.{t}.received") - _n(before, f"in.{t}.received")
                              >= published[t] for t in TOPICS)
                and v.get("pair.colour.pending") == "0", timeout_s=30)
        except TimeoutError:
            after = mon.wait_for_update(10)
        t_end = time.monotonic()
        cpu1 = cpu_sample(node_pid)
    finally:
        if asker is not None:
            asker.stop()
    samples = mon.since(mark)
    received = {t: _n(after, f"in.{t}.received") - _n(before, f"in.{t}.received")
                for t in TOPICS}
    accepted = {t: _n(after, f"in.{t}.accepted") - _n(before, f"in.{t}.accepted")
                for t in TOPICS}
    rejected = {t: _rejected(after, t) - _rejected(before, t) for t in TOPICS}
    emitted = _n(after, "frames.emitted") - _n(before, "frames.emitted")
    dropped = _n(after, "pair.colour.dropped") - _n(before, "pair.colour.dropped")
    pending = _n(after, "pair.colour.pending") - _n(before, "pair.colour.pending")
    notes = []
    for t in TOPICS:
        if not published[t] == received[t] == accepted[t] + rejected[t]:
            notes.append(f"{t}: published {published[t]} received {received[t]} accepted "
                         f"{accepted[t]} rejected {rejected[t]}")
    colour_acc = accepted["colour"] + (_n(after, "in.colour_compressed.accepted")
                                       - _n(before, "in.colour_compressed.accepted"))
    if colour_acc != emitted + dropped + pending:
        notes.append(f"colour accepted {colour_acc} != emitted {emitted} + dropped {dropped} "
                     f"+ pending delta {pending}")
    cum_acc = _n(after, "in.colour.accepted") + _n(after, "in.colour_compressed.accepted")
    cum = (_n(after, "frames.emitted") + _n(after, "pair.colour.dropped")
           + _n(after, "pair.colour.pending"))
    if cum_acc != cum:
        notes.append(f"cumulative: colour accepted {cum_acc} != emitted+dropped+pending {cum}")
    tr = {t: _topic_rate(samples, f"in.{t}.received", _n(before, f"in.{t}.received"),
                         _n(after, f"in.{t}.received")) for t in TOPICS}
    rates = {t: r.rate_hz for t, r in tr.items()}
    min_hz = {t: r.slowest_hz for t, r in tr.items()}
    window = tr["colour"].window
    # how long after the stream's nominal end the last message of each topic was counted
    lag_s = {t: max((r.complete_ns - tr["colour"].start_ns) / 1e9
                    - (published[t] - 1) / 30.0, 0.0) for t, r in tr.items()}
    busy = [samples[k][2].get("queue.busy") == "True" for k in window if samples[k][2]]
    cpu = cpu_use(cpu0, cpu1, t_end - t_start)
    timeline = [
        ((samples[k][0] - samples[0][0]) / 1e9,
         _n(samples[k][1], "in.colour.received") - _n(samples[k - 1][1], "in.colour.received"),
         _n(samples[k][1], "in.depth.received") - _n(samples[k - 1][1], "in.depth.received"),
         samples[k][2].get("queue.busy") == "True")
        for k in range(1, len(samples))
    ]
    answers: list[tuple[float, dict[str, Any]]] = []
    if asker is not None:
        answers = [(lat, d) for t, lat, d in asker.answers if t_start <= t <= t_end]
    return PhaseResult(
        label=label, published=published, received=received, accepted=accepted,
        rejected=rejected, rate_hz=rates, min_period_hz=min_hz, lag_s=lag_s, emitted=emitted,
        dropped=dropped, pending_delta=pending, accounted=not notes, identity_notes=notes,
        busy_share=(sum(busy) / len(busy)) if busy else 0.0, answers=answers,
        asker_errors=asker.errors if asker is not None else [], timeline=timeline, cpu=cpu,
    )


def run_node(env: dict[str, str], num_threads: int | None, phases: list[tuple[str, bool]],
             seconds: float, answer_tokens: int = 0) -> list[PhaseResult]:
    """Start a node, run the phases, stop the node (always)."""
    from spatial_mllm_ros.demo import start_node_with_profile, stop

    overrides: dict[str, Any] = {"qos.reliability": "reliable", "qos.depth": 100,
                                 "diagnostics.period_s": DIAG_PERIOD_S}
    if num_threads is not None:
        overrides["model.num_threads"] = num_threads
    if answer_tokens:
        overrides["answer.max_new_tokens"] = answer_tokens
    node = start_node_with_profile(env, str(REPO / "config" / "cpu_tiny.yaml"), overrides)
    results = []
    try:
        with make_recorder(f"bench_answering_monitor_{os.getpid()}") as mon:
            mon.wait_for(lambda v: v.get("state") == "active", 120)
            # Warm-up, not measured: the first stream into a fresh node pays one-off costs
            # (DDS matching and buffer allocation for 1 MB samples, first imports, the
            # buffer's first admissions) that would make the baseline phase look slow.
            from spatial_mllm_ros.demo import run_stream

            print("  warm-up: 3 s of 30 Hz 640x480 RGB-D (not measured)", flush=True)
            warm = run_stream(env, "--rate", "30", "--count", "90", "--reliability",
                              "reliable", "--qos-depth", "100")
            sent = {t: int(warm["published"].get(t, 0)) for t in TOPICS}
            mon.wait_for(lambda v: v.get("pair.colour.pending") == "0" and all(
                _n(v, f"in.{t}.received") >= sent[t] for t in TOPICS), 60)
            for label, ask in phases:
                print(f"  phase {label}: {seconds:g} s of 30 Hz 640x480 RGB-D"
                      + (", one question always in flight" if ask else ", no questions"),
                      flush=True)
                results.append(run_phase(label, env, mon, seconds, ask, node.pid))
    finally:
        rc = stop(node)
        print(f"  node stopped (exit code {rc})", flush=True)
    return results


# --------------------------------------------------------------------------- report
def _ok(r: PhaseResult) -> list[tuple[float, dict[str, Any]]]:
    return [(lat, d) for lat, d in r.answers if d["status"] == "OK"]


def print_timeline(r: PhaseResult) -> None:
    print("  timeline (node s: colour/depth received in the period, * = model busy): "
          + " ".join(f"{t:.1f}:{c}/{d}{'*' if b else ''}" for t, c, d, b in r.timeline))


def print_phase(r: PhaseResult, timeline: bool = False) -> None:
    print(f"\n-- {r.label}")
    print(f"  {'topic':12s} {'published':>9s} {'received':>8s} {'accepted':>8s} "
          f"{'rejected':>8s} {'rate Hz':>8s} {'slowest 1 s Hz':>15s} {'late by s':>9s}")
    for t in TOPICS:
        print(f"  {t:12s} {r.published[t]:9d} {r.received[t]:8d} {r.accepted[t]:8d} "
              f"{r.rejected[t]:8d} {r.rate_hz[t]:8.2f} {r.min_period_hz[t]:15.1f} "
              f"{r.lag_s[t]:9.2f}")
    print(f"  ('late by': last message counted this long after the stream's nominal end; "
          f"diagnostics resolution {DIAG_PERIOD_S:g} s)")
    print(f"  frames emitted {r.emitted}, dropped by pairing {r.dropped}, pending delta "
          f"{r.pending_delta}; model busy in {r.busy_share * 100:.0f}% of the "
          f"{DIAG_PERIOD_S:g} s diagnostics periods while colour arrived")
    print("  every published frame accounted for: "
          + ("YES" if r.accounted else "NO -- " + "; ".join(r.identity_notes)))
    if r.cpu:
        print("  CPU over the phase, in cores: " + ", ".join(f"{k} {v:.2f}"
                                                          for k, v in r.cpu.items()))
    if timeline:
        print_timeline(r)
    if r.asker_errors:
        print(f"  asker errors: {r.asker_errors}")
    if r.answers:
        statuses: dict[str, int] = {}
        for _, d in r.answers:
            statuses[d["status"]] = statuses.get(d["status"], 0) + 1
        print(f"  answers completed during the phase: {len(r.answers)} {statuses}")
        ok = _ok(r)
        if ok:
            means = {s: statistics.fmean(d["timings_s"][s] for _, d in ok) for s in STAGES}
            print("  mean per-stage timings (OK answers): "
                  + ", ".join(f"{s} {means[s] * 1000:.0f} ms" for s in STAGES))
            print(f"  mean client-side latency (request -> answer): "
                  f"{statistics.fmean(lat for lat, _ in ok) * 1000:.0f} ms")


def _ratio(x: float, y: float) -> float:
    return x / y if y else 0.0


def print_summary(pairs: list[tuple[PhaseResult, PhaseResult]]) -> None:
    print("\n== summary: ingest while answering (B) against the same node streaming alone (A)")
    print(f"  {'phase':36s} {'colour Hz':>9s} {'B/A':>6s} {'depth Hz':>8s} {'B/A':>6s} "
          f"{'recv/pub':>8s} {'slowest 1 s c/d Hz':>18s} {'late s':>6s} {'busy':>5s} "
          f"{'answers':>7s} {'accounted':>9s}")
    for a, b in pairs:
        for r in (a, b):
            rc = _ratio(r.rate_hz["colour"], a.rate_hz["colour"])
            rd = _ratio(r.rate_hz["depth"], a.rate_hz["depth"])
            recv = _ratio(sum(r.received.values()), sum(r.published.values()))
            slow = f"{r.min_period_hz['colour']:.1f} / {r.min_period_hz['depth']:.1f}"
            print(f"  {r.label:36s} {r.rate_hz['colour']:9.2f} {rc:6.3f} "
                  f"{r.rate_hz['depth']:8.2f} {rd:6.3f} {recv:8.3f} {slow:>18s} "
                  f"{max(r.lag_s.values()):6.2f} "
                  f"{r.busy_share * 100:4.0f}% {len(r.answers):7d} "
                  f"{'yes' if r.accounted else 'NO':>9s}")
    for a, b in pairs:
        ok = _ok(b)
        total = statistics.fmean(d["timings_s"]["total"] for _, d in ok) if ok else 0.0
        print(f"  {b.label}: ingest rate B/A colour "
              f"{_ratio(b.rate_hz['colour'], a.rate_hz['colour']):.3f}, depth "
              f"{_ratio(b.rate_hz['depth'], a.rate_hz['depth']):.3f}; received/published "
              f"A {a.colour_ratio:.3f}, B {b.colour_ratio:.3f} (colour); every frame "
              f"accounted for: {'yes' if a.accounted and b.accounted else 'NO'}; "
              f"{len(ok)} answers OK, mean {total:.2f} s each")
        if a.cpu and b.cpu:
            print("    CPU in cores, A -> B: " + ", ".join(
                f"{k} {a.cpu[k]:.2f} -> {b.cpu[k]:.2f}" for k in b.cpu if k in a.cpu))


def print_target(a: PhaseResult, b: PhaseResult) -> None:
    ratio = _ratio(b.rate_hz["colour"], a.rate_hz["colour"])
    accounted = a.accounted and b.accounted
    verdict = "met" if ratio >= TARGET_RATIO and accounted else "NOT met"
    print(f"  target (1 model thread, one question always in flight): colour rate while "
          f"answering / alone {ratio:.3f} >= {TARGET_RATIO} and every frame accounted for "
          f"({'yes' if accounted else 'NO'}): {verdict}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="~3 s phases")
    p.add_argument("--no-threads-run", action="store_true",
                   help="skip phase B with model.num_threads 0")
    p.add_argument("--timeline", action="store_true",
                   help="print the messages received per diagnostics period of each phase")
    p.add_argument("--cpus", type=int, default=0,
                   help="pin the whole run (node, model process, publisher) to N CPUs")
    p.add_argument("--burners", type=int, default=0,
                   help="N busy-loop processes on the same CPUs for the whole run (both "
                        "phases): a loaded machine, reproducibly")
    p.add_argument("--answer-tokens", type=int, default=0,
                   help="answer.max_new_tokens of both nodes (the tiny model's random "
                        "weights rarely stop early: longer answers, like a full model on a CPU)")
    a = p.parse_args()
    pinned = pin(a.cpus) if a.cpus else ""
    burners = start_burners(a.burners)
    try:
        import spatial_mllm_ros.srv  # noqa: F401
    except ImportError as err:
        print(f"bench_answering needs the colcon build: {err} (run `make build` and source "
              "install/setup.bash)")
        return 1
    from spatial_mllm_ros.demo import ros_env

    env = ros_env(216 + os.getpid() % 16)  # FastDDS: domain ids above 232 have no ports
    seconds = 3.0 if a.quick else 8.0
    print(f"== ingestion while answering: node cpu_tiny, reliable QoS depth 100, "
          f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}, {os.cpu_count()} CPUs"
          + (f" (this run pinned to CPU {pinned})" if pinned else "")
          + (f", {a.burners} busy-loop process(es) beside it" if a.burners else "")
          + f", load average {load_average()} (other processes compete for the cores)")
    print("node 1: model.num_threads 1 (the profile)")
    a1, b1 = run_node(env, None, [("A: stream only", False),
                                  ("B: stream + answering, 1 thread", True)], seconds,
                      a.answer_tokens)
    pairs = [(a1, b1)]
    if not a.no_threads_run:
        print("node 2: model.num_threads 0 (torch default: every core)")
        a2, b2 = run_node(env, 0, [("A': stream only (node 2)", False),
                                   ("B': stream + answering, all cores", True)], seconds,
                          a.answer_tokens)
        pairs.append((a2, b2))
    for pair in pairs:
        for r in pair:
            print_phase(r, a.timeline)
    print_summary(pairs)
    print_target(a1, b1)
    print(f"  load average at the end: {load_average()} on {os.cpu_count()} CPUs")
    for proc in burners:
        proc.kill()
    return 0 if all(r.accounted for pair in pairs for r in pair) else 1


if __name__ == "__main__":
    sys.exit(main())
