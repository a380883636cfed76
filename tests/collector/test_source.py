"""SourceState: interning, change-only updates, snapshots, the resume ring, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import SeriesLimitExceeded
from collector.series import COUNTER, GAUGE, Descriptor, HistogramData, SeriesKey, SeriesSample
from collector.source import SourceState
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


def test_resume_within_the_ring_returns_exactly_the_missing_updates() -> None:
    source = SourceState("svc", PUSH, epoch=7, resume_window=4)
    sent = [source.apply([gauge("a", i)], i) for i in range(1, 7)]
    decision = source.resume(7, 3)
    assert decision.recovered and list(decision.updates) == sent[3:]
    assert source.resume(7, 6).recovered and source.resume(7, 6).updates == ()


def test_the_ring_also_stops_at_its_byte_budget() -> None:
    source = SourceState("svc", PUSH, epoch=7, resume_window=100, resume_bytes=100)
    sizes = [len(source.apply([gauge("a", i)], i) or b"") for i in range(1, 11)]
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
