"""core.pairing: deterministic stamp pairing with jitter, drops and out-of-order arrival."""

from __future__ import annotations

import random

import pytest

from spatial_mllm_ros.core.pairing import PairingConfig, PartnerSpec, Synchroniser

MS = 1_000_000
PERIOD = 33 * MS


#: the synchroniser is generic: these tests pair three partner streams of every mode
PARTNERS = (
    PartnerSpec("depth", "consume"),
    PartnerSpec("pose", "reuse"),
    PartnerSpec("camera_info", "latest", wait=False),
)


def make(slop_ms=10, wait_ms=100, queue=30, partners=PARTNERS, gates=()) -> Synchroniser[str]:
    return Synchroniser(PairingConfig(slop_ns=slop_ms * MS, wait_ns=wait_ms * MS,
                                      queue_size=queue, partners=partners), gates)


def identity_holds(s: Synchroniser[str]) -> None:
    c = s.counters()
    assert c["colour.pushed"] == c["colour.emitted"] + c["colour.dropped"] + c["colour.pending"]
    for p in s.config.partners:
        n = p.name
        assert c[f"{n}.pushed"] == c[f"{n}.paired"] + c[f"{n}.unused"] + c[f"{n}.pending"], n


def test_in_order_stream_pairs_every_frame_exactly():
    s = make()
    out = []
    for i in range(20):
        t = i * PERIOD
        now = t + 5 * MS
        out += s.push_colour(t, f"c{i}", now)
        out += s.push("depth", t + 1 * MS, f"d{i}", now)
        out += s.push("camera_info", t, f"k{i}", now)
        out += s.push("pose", t + 2 * MS, f"p{i}", now)
    assert [f.colour.value for f in out] == [f"c{i}" for i in range(20)]
    for i, f in enumerate(out):
        assert f.partners["depth"].value == f"d{i}"
        assert f.partners["pose"].value == f"p{i}"
        assert f.partners["camera_info"].value == f"k{i}"
    identity_holds(s)


def test_frame_waits_for_partners_then_is_emitted_colour_only_after_the_delay():
    s = make(wait_ms=100)
    assert s.push_colour(0, "c0", now_ns=0) == []
    assert s.poll(99 * MS) == []
    out = s.poll(100 * MS)
    assert len(out) == 1
    assert out[0].partners == {"depth": None, "pose": None, "camera_info": None}
    identity_holds(s)


def test_early_partner_is_not_final_until_a_later_one_arrives():
    """A pose stamped before the colour image may not be the nearest: the frame waits."""
    s = make(slop_ms=10, wait_ms=100)
    s.push_colour(0, "c0", 0)
    s.push("depth", 0, "d0", 0)
    assert s.push("pose", -2 * MS, "p-early", 0) == []
    (f,) = s.push("pose", 8 * MS, "p-late", 1 * MS)  # resolves: the early one is nearer
    assert f.partners["pose"].value == "p-early"


def test_depth_without_pose_is_kept():
    s = make(wait_ms=50)
    s.push_colour(0, "c0", 0)
    s.push("depth", 0, "d0", 1 * MS)
    (f,) = s.poll(50 * MS)
    assert f.partners["depth"].value == "d0" and f.partners["pose"] is None


def test_partner_outside_slop_is_not_used_and_counted_unused():
    s = make(slop_ms=10, wait_ms=50)
    s.push("depth", 15 * MS, "far", 0)
    s.push("pose", 0, "p", 0)
    out = s.push_colour(0, "c0", 1 * MS)  # depth resolved (15 ms >= 0) but out of slop
    assert len(out) == 1 and out[0].partners["depth"] is None
    s.push_colour(100 * MS, "c1", 2 * MS)
    s.flush()
    assert s.counters()["depth.unused"] == 1
    identity_holds(s)


def test_nearest_wins_and_depth_is_consumed_once():
    s = make(slop_ms=20, wait_ms=1000)
    for t, v in [(-15, "a"), (-3, "b"), (4, "c")]:
        s.push("depth", t * MS, v, 0)
    s.push("pose", 50 * MS, "p", 0)
    (f0,) = s.push_colour(0, "c0", 0)
    assert f0.partners["depth"].value == "b"
    # a second colour frame at the same stamp may not reuse "b": it gets the next nearest
    (f1,) = s.push_colour(0, "c1", 0)
    assert f1.partners["depth"].value == "c"
    # pose is reusable
    assert f0.partners["pose"] is None  # 50 ms away: outside slop


def test_out_of_order_arrival_across_streams():
    """Depth and pose arrive before or after their colour image, in any interleaving."""
    rng = random.Random(3)
    s = make(slop_ms=8, wait_ms=200)
    events = []
    for i in range(40):
        t = i * PERIOD
        events += [("colour", t, f"c{i}"), ("depth", t + rng.randint(-3, 3) * MS, f"d{i}"),
                   ("pose", t + rng.randint(-3, 3) * MS, f"p{i}")]
    # shuffle within windows of one frame period: per-stream order is kept, streams interleave
    blocks = [events[i:i + 3] for i in range(0, len(events), 3)]
    out = []
    now = 0
    for b in blocks:
        rng.shuffle(b)
        for stream, t, v in b:
            now += MS
            out += (s.push_colour(t, v, now) if stream == "colour" else s.push(stream, t, v, now))
    out += s.flush()
    assert [f.colour.value for f in out] == [f"c{i}" for i in range(40)]
    for i, f in enumerate(out):
        assert f.partners["depth"].value == f"d{i}"
        assert f.partners["pose"].value == f"p{i}"
    identity_holds(s)


def test_jitter_and_drops_are_accounted():
    rng = random.Random(7)
    s = make(slop_ms=10, wait_ms=60)
    out = []
    dropped_depth = set()
    for i in range(200):
        t = i * PERIOD
        now = t + rng.randint(0, 5) * MS
        out += s.push_colour(t, f"c{i}", now)
        if rng.random() < 0.2:
            dropped_depth.add(i)
        else:
            out += s.push("depth", t + rng.randint(-4, 4) * MS, f"d{i}", now + MS)
        out += s.push("pose", t + rng.randint(-4, 4) * MS, f"p{i}", now + 2 * MS)
        out += s.poll(now + 3 * MS)
    out += s.flush()
    assert len(out) == 200
    for i, f in enumerate(out):
        d = f.partners["depth"]
        if i in dropped_depth:
            assert d is None
        else:
            assert d is not None and d.value == f"d{i}"
    identity_holds(s)


def test_bounded_colour_queue_drops_oldest():
    s = make(queue=3, wait_ms=10_000)
    for i in range(5):
        s.push_colour(i * PERIOD, f"c{i}", 0)
    c = s.counters()
    assert c["colour.dropped"] == 2 and c["colour.pending"] == 3
    assert [f.colour.value for f in s.flush()] == ["c2", "c3", "c4"]
    identity_holds(s)


def test_bounded_partner_queue_drops_oldest():
    s = make(queue=4)
    for i in range(10):
        s.push("depth", i * PERIOD, f"d{i}", 0)
    c = s.counters()
    assert c["depth.pending"] == 4 and c["depth.unused"] == 6
    identity_holds(s)


def test_latest_camera_info_is_reused_regardless_of_stamp():
    s = make(partners=(PartnerSpec("camera_info", "latest", wait=False),))
    s.push("camera_info", 0, "k-old", 0)
    s.push("camera_info", 5 * 10**9, "k", 0)
    (f0,) = s.push_colour(10 * 10**9, "c0", 0)  # nothing waited: emitted at once
    (f1,) = s.push_colour(11 * 10**9, "c1", 0)
    assert f0.partners["camera_info"].value == "k" and f1.partners["camera_info"].value == "k"
    assert f0.fresh == frozenset({"camera_info"}) and f1.fresh == frozenset()
    c = s.counters()
    assert c["camera_info.paired"] == 1 and c["camera_info.unused"] == 1
    identity_holds(s)


def test_deterministic():
    def run() -> list[tuple[str, str | None]]:
        rng = random.Random(11)
        s = make(slop_ms=12, wait_ms=40)
        out = []
        for i in range(60):
            t = i * PERIOD + rng.randint(-2, 2) * MS
            out += s.push_colour(t, f"c{i}", t)
            out += s.push("depth", t + rng.randint(-15, 15) * MS, f"d{i}", t + 20 * MS)
        out += s.flush()
        return [(f.colour.value, f.partners["depth"] and f.partners["depth"].value) for f in out]

    assert run() == run()


def test_config_validation():
    with pytest.raises(ValueError):
        PairingConfig(slop_ns=-1)
    with pytest.raises(ValueError):
        PairingConfig(queue_size=0)
    with pytest.raises(ValueError):
        PairingConfig(partners=(PartnerSpec("depth"), PartnerSpec("depth")))
    with pytest.raises(KeyError):
        make().push("nope", 0, "x", 0)


class _Gate:
    """A gate opened by hand, with its own wait."""

    def __init__(self, name: str, wait_ns: int) -> None:
        self.name, self.wait_ns, self.open = name, wait_ns, False

    def ready(self, colour) -> bool:
        return self.open


def test_a_gate_holds_frames_for_its_own_wait_and_names_itself_when_late():
    gate = _Gate("camera_info", 500 * MS)
    s = make(partners=(PartnerSpec("depth", "consume"),), gates=[gate])
    assert s.push_colour(0, "c0", 0) == []
    assert s.push("depth", 0, "d0", MS) == []  # depth resolved, the gate still closed
    assert s.poll(400 * MS) == []  # past the partner wait (100 ms), within the gate's
    assert s.oldest_wait_deadline() == 500 * MS
    (late,) = s.poll(500 * MS)
    assert late.late == {"camera_info"} and not late.flushed
    gate.open = True
    s.push_colour(PERIOD, "c1", 600 * MS)
    (on_time,) = s.push("depth", PERIOD, "d1", 601 * MS)
    assert on_time.late == frozenset() and on_time.get("depth").value == "d1"
    s.push_colour(2 * PERIOD, "c2", 700 * MS)
    (flushed,) = s.flush()
    assert flushed.flushed and flushed.late == {"depth"}
    identity_holds(s)
