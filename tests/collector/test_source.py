"""SourceState: interning, change-only updates, snapshots, the resume ring, limits."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import SeriesLimitExceeded
from collector.series import (
    COUNTER,
    GAUGE,
    Descriptor,
    HistogramData,
    NumberBatch,
    SeriesKey,
    SeriesSample,
)
from collector.source import MAX_CHECKPOINTS, SourceState, _ChangedNumbers
from metrics_bridge.v1 import collector_pb2, metrics_pb2
from tests.collector.replica import SourceReplica

PUSH = metrics_pb2.SOURCE_KIND_PUSH


def gauge(name: str, value: float, **labels: str) -> SeriesSample:
    return SeriesSample(SeriesKey.of(name, labels.items()), Descriptor(GAUGE), value)


def update(data: bytes | None) -> metrics_pb2.Update:
    assert data is not None
    event = collector_pb2.CollectorEvent.FromString(data)
    assert event.WhichOneof("event") == "update"
    return event.update


def snapshot(source: SourceState) -> metrics_pb2.Snapshot:
    return collector_pb2.CollectorEvent.FromString(source.snapshot()).snapshot


def test_first_batch_declares_every_series_with_fresh_ids() -> None:
    source = SourceState("svc", PUSH, epoch=7)
    u = update(source.apply([gauge("a", 1), gauge("b", 2, x="1")], 1000))
    assert (u.epoch, u.seq, u.source, u.time_unix_ms) == (7, 1, "svc", 1000)
    assert [(d.id, d.name) for d in u.added] == [(1, "a"), (2, "b")]
    assert list(u.values.ids) == [1, 2] and list(u.values.numbers) == [1, 2]


def test_unchanged_series_are_not_resent() -> None:
    source = SourceState("svc", PUSH, epoch=7)
    source.apply([gauge("a", 1), gauge("b", 2)], 1000)
    u = update(source.apply([gauge("a", 1), gauge("b", 3)], 2000))
    assert not u.added and list(u.values.ids) == [2] and list(u.values.numbers) == [3]


def test_a_batch_that_changes_nothing_produces_no_update() -> None:
    source = SourceState("svc", PUSH, epoch=7)
    source.apply([gauge("a", 1)], 1000)
    assert source.apply([gauge("a", 1)], 2000) is None
    assert source.seq == 1


def test_replace_removes_absent_series_and_ids_are_never_reused() -> None:
    source = SourceState("host", metrics_pb2.SOURCE_KIND_HOST, epoch=7)
    source.apply([gauge("a", 1), gauge("b", 2)], 1000, replace=True)
    u = update(source.apply([gauge("a", 1)], 2000, replace=True))
    assert list(u.removed) == [2]
    back = update(source.apply([gauge("a", 1), gauge("b", 2)], 3000, replace=True))
    assert [d.id for d in back.added] == [3]


def test_a_changed_start_time_redeclares_the_series() -> None:
    source = SourceState("svc", PUSH, epoch=7)
    key = SeriesKey.of("requests_total")
    source.apply([SeriesSample(key, Descriptor(COUNTER, start_time_unix_ms=10), 5.0)], 1000)
    u = update(
        source.apply([SeriesSample(key, Descriptor(COUNTER, start_time_unix_ms=20), 1.0)], 2000)
    )
    assert [(d.id, d.start_time_unix_ms) for d in u.added] == [(1, 20)]


def test_accumulated_deltas_keep_the_first_start_time() -> None:
    source = SourceState("svc", PUSH, epoch=7)
    key = SeriesKey.of("requests_total")
    for start, delta in ((10, 2.0), (20, 3.0), (30, 4.0)):
        sample = SeriesSample(
            key, Descriptor(COUNTER, start_time_unix_ms=start), delta, accumulate=True
        )
        source.apply([sample], start)
    assert source.value(key) == 9.0
    assert snapshot(source).series[0].start_time_unix_ms == 10


def test_histogram_deltas_add_bucket_by_bucket() -> None:
    source = SourceState("svc", PUSH, epoch=7)
    key = SeriesKey.of("latency")
    one = HistogramData((1.0,), (1, 2), 3, 4.0, 0.5, 3.0)
    two = HistogramData((1.0,), (0, 1), 1, 2.0, 2.0, 5.0)
    descriptor = Descriptor(metrics_pb2.METRIC_KIND_HISTOGRAM)
    for h in (one, two):
        source.apply([SeriesSample(key, descriptor, h, accumulate=True)], 1)
    assert source.value(key) == HistogramData((1.0,), (1, 3), 4, 6.0, 0.5, 5.0)


def test_snapshot_carries_every_live_series_at_the_current_seq() -> None:
    source = SourceState("svc", PUSH, epoch=7)
    source.apply([gauge("a", 1), gauge("b", 2)], 1000)
    source.apply([gauge("a", 5)], 2000)
    snap = snapshot(source)
    assert (snap.epoch, snap.seq, snap.time_unix_ms, snap.kind) == (7, 2, 2000, PUSH)
    assert dict(zip(snap.values.ids, snap.values.numbers, strict=True)) == {1: 5, 2: 2}


def test_snapshot_bytes_are_cached_until_the_next_update() -> None:
    source = SourceState("svc", PUSH, epoch=7)
    source.apply([gauge("a", 1)], 1000)
    assert source.snapshot() is source.snapshot()
    before = source.snapshot()
    source.apply([gauge("a", 2)], 2000)
    assert source.snapshot() is not before


def test_snapshot_bytes_are_protobufs_own_encoding_and_follow_redeclared_series() -> None:
    source = SourceState("svc", PUSH, epoch=7)
    key = SeriesKey.of("requests_total", [("path", "/")])
    latency = SeriesSample(
        SeriesKey.of("latency"),
        Descriptor(metrics_pb2.METRIC_KIND_HISTOGRAM, unit="s"),
        HistogramData((1.0,), (1, 2), 3, 4.0, 0.5, 3.0),
    )
    source.apply([SeriesSample(key, Descriptor(COUNTER, start_time_unix_ms=10), 5.0)], 1)
    source.apply([latency, gauge("a", 1), gauge("b", -0.0)], 2)
    source.snapshot()
    source.apply([SeriesSample(key, Descriptor(COUNTER, start_time_unix_ms=20), 1.0)], 3)
    source.apply([SeriesSample(SeriesKey.of("a"), Descriptor(GAUGE), remove=True)], 4)
    data = source.snapshot()
    event = collector_pb2.CollectorEvent.FromString(data)
    assert event.SerializeToString() == data
    snap = event.snapshot
    assert [(d.name, d.start_time_unix_ms) for d in snap.series] == [
        ("requests_total", 20),
        ("latency", 0),
        ("b", 0),
    ]
    assert [h.id for h in snap.values.histograms] == [2]
    assert list(snap.values.ids) == [1, 4] and list(snap.values.numbers) == [1.0, -0.0]


def test_resume_within_the_ring_returns_exactly_the_missing_updates() -> None:
    source = SourceState("svc", PUSH, epoch=7, resume_window=4)
    sent = [source.apply([gauge("a", i)], i) for i in range(1, 7)]
    decision = source.resume(7, 3)
    assert decision.recovered and list(decision.updates) == sent[3:]
    assert source.resume(7, 6).recovered and source.resume(7, 6).updates == ()


def test_the_ring_also_stops_at_its_byte_budget() -> None:
    source = SourceState("svc", PUSH, epoch=7, resume_window=100, resume_bytes=100)
    # Halves: no whole-number changes, so no compact form is held besides.
    sizes = [len(source.apply([gauge("a", i + 0.5)], i) or b"") for i in range(1, 11)]
    held = 100 // sizes[-1]
    assert source.resume(7, 10 - held).recovered
    assert not source.resume(7, 9 - held).recovered


@pytest.mark.parametrize(
    ("epoch", "seq", "why"),
    [(7, 1, "older than the ring"), (8, 5, "another epoch"), (7, 9, "ahead of the source")],
)
def test_resume_outside_the_ring_needs_a_snapshot(epoch: int, seq: int, why: str) -> None:
    source = SourceState("svc", PUSH, epoch=7, resume_window=4)
    for i in range(1, 7):
        source.apply([gauge("a", i)], i)
    assert not source.resume(epoch, seq).recovered, why


def test_series_limit_refuses_the_whole_batch() -> None:
    source = SourceState("svc", PUSH, epoch=7, max_series=2)
    source.apply([gauge("a", 1)], 1)
    with pytest.raises(SeriesLimitExceeded, match="limit of 2"):
        source.apply([gauge("a", 9), gauge("b", 1), gauge("c", 1)], 2)
    assert source.value(SeriesKey.of("a")) == 1 and source.seq == 1
    source.apply([gauge("b", 1)], 3)
    assert source.series_count == 2


values = st.floats(allow_nan=False, allow_infinity=False, width=32)
batches = st.lists(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.one_of(values, st.just("remove")),
        max_size=5,
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(batches, st.integers(min_value=0, max_value=12))
def test_snapshot_then_updates_reproduce_the_source(
    batches: list[dict[str, float | str]], snapshot_after: int
) -> None:
    source = SourceState("svc", PUSH, epoch=7)
    replica = SourceReplica()
    replica.apply_snapshot(snapshot(source))
    for i, batch in enumerate(batches):
        samples = [
            SeriesSample(SeriesKey.of(name), Descriptor(GAUGE), remove=True)
            if value == "remove"
            else gauge(name, float(value))
            for name, value in batch.items()
        ]
        data = source.apply(samples, i)
        if i < snapshot_after and data is not None:
            replica.apply_update(update(data))
        if i + 1 == snapshot_after:
            replica.apply_snapshot(snapshot(source))
        elif i >= snapshot_after and data is not None:
            replica.apply_update(update(data))
    expected = {key: source.value(key) for key in source.series_keys()}
    assert replica.by_key() == expected
    assert replica.seq == source.seq


def held_updates(source: SourceState) -> int:
    """How many updates the ring holds (the furthest position resume still serves)."""
    count = 0
    while count < source.seq and source.resume(source.epoch, source.seq - count - 1).recovered:
        count += 1
    return count


def replayed(source: SourceState, limit: int, deltas: bool = False) -> SourceReplica:
    """A replica rebuilt from `source.replay(limit)`: its snapshot, then its updates."""
    held = source.replay(limit, deltas)
    assert held is not None
    replica = SourceReplica()
    replica.apply_snapshot(collector_pb2.CollectorEvent.FromString(held.snapshot).snapshot)
    assert replica.seq == held.seq
    for data in held.updates:
        replica.apply_update(update(data))
    return replica


def test_replay_is_a_snapshot_at_a_checkpoint_then_exactly_the_updates_after_it() -> None:
    source = SourceState("svc", PUSH, epoch=7, resume_window=8)
    sent = {}
    for i in range(1, 21):
        sent[i] = source.apply([gauge("a", i), gauge("b", i % 3)], i)
    held = source.replay(8)
    assert held is not None and 20 - 8 <= held.seq < 20
    start = collector_pb2.CollectorEvent.FromString(held.snapshot).snapshot
    assert (start.epoch, start.seq, start.time_unix_ms) == (7, held.seq, held.seq)
    assert list(held.updates) == [sent[s] for s in range(held.seq + 1, 21)]
    assert replayed(source, 8).by_key() == {k: source.value(k) for k in source.series_keys()}


def test_replay_in_the_compact_form_for_a_subscriber_that_takes_deltas() -> None:
    source = SourceState("svc", PUSH, epoch=7, resume_window=8)
    compact = {}
    for i in range(1, 13):
        source.apply([gauge("a", i), gauge("b", 0.5 * i)], i)
        compact[source.seq] = source.compact
    held = source.replay(8, deltas=True)
    assert held is not None
    assert list(held.updates) == [compact[s] for s in range(held.seq + 1, 13)]
    assert any(update(data).values.delta_ids for data in held.updates)
    replica = replayed(source, 8, deltas=True)
    assert replica.by_key() == {k: source.value(k) for k in source.series_keys()}


def test_a_young_source_replays_from_seq_0() -> None:
    source = SourceState("svc", PUSH, epoch=7, resume_window=1024)
    for i in range(1, 6):
        source.apply([gauge("a", i)], i)
    held = source.replay(1024)
    assert held is not None and held.seq == 0 and len(held.updates) == 5


def test_replay_goes_back_at_most_the_limit_and_never_offers_the_current_state() -> None:
    source = SourceState("svc", PUSH, epoch=7, resume_window=8)
    for i in range(1, 21):
        source.apply([gauge("a", i)], i)
        for limit in range(0, 10):
            held = source.replay(limit)
            assert held is None or 0 < source.seq - held.seq <= limit
        newest = source.checkpoint_seqs[-1]
        assert newest == source.seq or source.replay(source.seq - newest - 1) is None
    assert SourceState("svc", PUSH, resume_window=0).replay(10) is None


def test_checkpoints_rotate_one_per_half_ring_and_the_ring_always_continues_one() -> None:
    window = 100
    source = SourceState("svc", PUSH, epoch=7, resume_window=window)
    taken: set[int] = set()
    for i in range(1, 2001):
        source.apply([gauge("a", i)], i)
        seqs = source.checkpoint_seqs
        taken.update(seqs)
        assert len(seqs) <= MAX_CHECKPOINTS
        assert seqs[0] >= source.seq - min(source.seq, window)
        held = source.replay(window)
        assert held is not None and held.seq >= source.seq - window
        if source.seq >= window:
            assert source.seq - held.seq >= window // 2 - 1
    steady = [s for s in taken if s > window]
    assert len(steady) <= 2000 // (window // 2)
    assert len(taken) < 2000 // (window // 2) + 20


def test_a_ring_shortened_by_its_byte_budget_still_continues_a_checkpoint() -> None:
    source = SourceState("svc", PUSH, epoch=7, resume_window=100, resume_bytes=300)
    for i in range(1, 60):
        source.apply([gauge("a", i + 0.5)], i)
        held = source.replay(100)
        if held is not None:
            assert source.resume(7, held.seq).recovered
        assert source.resume(7, source.checkpoint_seqs[0]).recovered
    assert replayed(source, 100).by_key() == {k: source.value(k) for k in source.series_keys()}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=80),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=200, max_value=3000),
)
def test_every_checkpoint_is_continued_by_the_ring_whatever_the_sizes(
    sizes: list[int], window: int, budget: int
) -> None:
    source = SourceState("svc", PUSH, epoch=7, resume_window=window, resume_bytes=budget)
    ring = 0
    for i, size in enumerate(sizes, 1):
        source.apply([gauge(f"s{j}", i + 0.5) for j in range(size)], i)
        seqs = source.checkpoint_seqs
        assert 0 < len(seqs) <= MAX_CHECKPOINTS and seqs[-1] >= source.seq - window
        assert all(source.resume(7, seq).recovered for seq in seqs)
        before, ring = ring, held_updates(source)
        held = source.replay(window)
        if ring >= max(2, before):  # the ring did not shrink: a checkpoint inside it is kept
            assert held is not None
        if held is not None:
            assert replayed(source, window).by_key() == {
                k: source.value(k) for k in source.series_keys()
            }


_KEYS = tuple(SeriesKey.of(f"s{i}") for i in range(4))
_GAUGES = tuple(Descriptor(GAUGE) for _ in _KEYS)

_step = st.one_of(
    st.tuples(st.just("numbers"), st.lists(st.integers(0, 3).map(float), min_size=4, max_size=4)),
    st.tuples(st.just("remove"), st.integers(0, 3)),
    st.tuples(st.just("redeclare"), st.integers(0, 3)),
    st.tuples(st.just("instance"), st.sampled_from(["a", "b"])),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(_step, min_size=1, max_size=25))
def test_a_number_batch_applies_exactly_as_the_samples_it_stands_for(
    steps: list[tuple[str, Any]],
) -> None:
    """The bound-series path (a matched Push template) against the general one,
    through removals, re-declarations and instance removals in between; and a
    source encoding the compact form only (`encode_plain` off) against both."""
    fast, general = SourceState("svc", PUSH, epoch=1), SourceState("svc", PUSH, epoch=1)
    lean = SourceState("svc", PUSH, epoch=1)
    lean.encode_plain = False
    instance = "a"
    for t, (kind, arg) in enumerate(steps):
        if kind == "numbers":
            batch = NumberBatch(_KEYS, _GAUGES, tuple(arg))
            got, _ = (
                fast.apply(batch, t, instance=instance),
                lean.apply(batch, t, instance=instance),
            )
            want = general.apply(list(batch), t, instance=instance)
        elif kind == "remove":
            removal = [SeriesSample(_KEYS[arg], Descriptor(GAUGE), remove=True)]
            got, want, _ = fast.apply(removal, t), general.apply(removal, t), lean.apply(removal, t)
        elif kind == "redeclare":
            sample = SeriesSample(_KEYS[arg], Descriptor(COUNTER), 5.0)
            got, want, _ = (
                fast.apply([sample], t),
                general.apply([sample], t),
                lean.apply([sample], t),
            )
        else:
            got, want = fast.remove_instance(instance, t), general.remove_instance(instance, t)
            lean.remove_instance(instance, t)
            instance = str(arg)
        assert (got, fast.compact) == (want, general.compact)
        assert lean.compact == fast.compact and lean.seq == fast.seq
        assert lean.latest == (None if fast.compact != fast.latest else fast.latest)
    assert fast.snapshot() == general.snapshot() == lean.snapshot()


def test_a_number_batch_sets_only_numbers_once_its_series_are_bound() -> None:
    source = SourceState("svc", PUSH, epoch=1)
    first = NumberBatch(_KEYS, _GAUGES, (1.0, 2.0, 3.0, 4.0))
    assert update(source.apply(first, 1)).added  # new series: the general path
    again = NumberBatch(_KEYS, _GAUGES, (1.0, 2.0, 3.0, 9.0))
    changed = update(source.apply(again, 2, instance="b"))
    assert list(changed.values.ids) == [4] and list(changed.values.numbers) == [9.0]
    assert not changed.added
    assert source.instances() == {"b"}
    assert source.apply(again, 3) is None and source.position.seq == 2


_bound = st.sampled_from([2**47, 2**48, 2**52, 2**53]).flatmap(lambda b: st.integers(b - 2, b + 2))
_whole = st.tuples(_bound | st.integers(1, 9), st.booleans()).map(
    lambda v: float(-v[0] if v[1] else v[0])
)
_pair = st.tuples(_whole, _whole).map(lambda p: (p[0], p[0] - p[1]))  # (new, new - difference)
_odd = st.tuples(
    _whole | st.sampled_from([0.0, -0.0, 0.5]), _whole | st.sampled_from([-0.0]) | st.none()
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_pair, min_size=1, max_size=3), st.lists(_odd, max_size=1))
def test_the_all_deltas_shortcut_answers_as_the_rule_at_its_bounds(
    pairs: list[tuple[float, float | None]], odd: list[tuple[float, float | None]]
) -> None:
    """Whole values and differences around 2^47, 2^48, 2^52 and 2^53 (the shortcut's
    bounds and the rule's); now and then a zero of either sign, a new series or a
    fraction."""
    changed = _ChangedNumbers()
    for i, (new, old) in enumerate(pairs + odd):
        changed.add(i + 1, new, old)
    assert repr(changed.compact()) == repr(changed.split())  # repr: -0.0 is not 0.0
