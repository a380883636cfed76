"""CollectorHub: sources created on first batch, limits, fan-out, resume on subscribe,
idle expiry, the staleness bound and marked snapshots."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from collector.config import CollectorConfig
from collector.errors import (
    SeriesLimitExceeded,
    SourceConflict,
    TooManySources,
    TooManySubscribers,
    UnknownSource,
)
from collector.fanout import Event, Removed, Resync, SubscriberQueue
from collector.hub import CollectorHub, RemovedSource, with_resync
from collector.series import GAUGE, Descriptor, SeriesKey, SeriesSample
from collector.source import Position
from metrics_bridge.v1 import collector_pb2, metrics_pb2

PUSH = metrics_pb2.SOURCE_KIND_PUSH
OTLP = metrics_pb2.SOURCE_KIND_OTLP
HOST = metrics_pb2.SOURCE_KIND_HOST


def gauge(name: str, value: float) -> SeriesSample:
    return SeriesSample(SeriesKey.of(name), Descriptor(GAUGE), value)


def hub(clock: Callable[[], float] | None = None, **limits: Any) -> CollectorHub:
    """A hub with the collector's default limits, except those given."""
    counter = itertools.count(100)
    limits_ = CollectorConfig(**limits).hub_limits()
    return CollectorHub(limits_, epochs=lambda: next(counter), clock=clock)


def drain(queue: SubscriberQueue) -> list[Event | Resync | Removed]:
    items = []
    while (item := queue.pop()) is not None:
        items.append(item)
    return items


def test_every_subscriber_gets_the_same_update_bytes() -> None:
    h = hub()
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    one, two = h.subscribe(), h.subscribe()
    drain(one), drain(two)
    h.apply("svc", PUSH, [gauge("a", 2)], 2, received=0)
    [a], [b] = drain(one), drain(two)
    assert isinstance(a, Event) and isinstance(b, Event) and a.data is b.data


def test_a_source_appearing_later_is_announced_with_a_snapshot() -> None:
    h = hub()
    everything, named, other = h.subscribe(), h.subscribe(["svc"]), h.subscribe(["nope"])
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    assert drain(everything) == [Resync("svc")]
    assert drain(named) == [Resync("svc")]
    assert drain(other) == []


def test_each_source_gets_its_own_epoch() -> None:
    h = hub()
    first = h.apply("one", PUSH, [gauge("a", 1)], 1, received=0)
    second = h.apply("two", PUSH, [gauge("a", 1)], 1, received=0)
    assert first.epoch != second.epoch and first.seq == second.seq == 1


def test_subscribe_with_a_held_position_replays_without_a_snapshot() -> None:
    h = hub()
    for i in range(5):
        position = h.apply("svc", PUSH, [gauge("a", i)], i, received=0)
    sub = h.subscribe(["svc"], {"svc": Position(position.epoch, 3)})
    items = drain(sub)
    assert len(items) == 2 and all(isinstance(i, Event) for i in items)


def test_subscribe_with_an_old_epoch_gets_a_snapshot() -> None:
    h = hub()
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    assert drain(h.subscribe(["svc"], {"svc": Position(1, 1)})) == [Resync("svc")]


def test_source_limit_refuses_new_sources_only() -> None:
    h = hub(max_sources=1)
    h.apply("one", PUSH, [gauge("a", 1)], 1, received=0)
    with pytest.raises(TooManySources):
        h.apply("two", PUSH, [gauge("a", 1)], 1, received=0)
    h.apply("one", PUSH, [gauge("a", 2)], 2, received=0)
    assert list(h.sources) == ["one"]


def test_a_refused_first_batch_leaves_no_source_behind() -> None:
    h = hub(max_series_per_source=1)
    with pytest.raises(SeriesLimitExceeded):
        h.apply("svc", PUSH, [gauge("a", 1), gauge("b", 1)], 1, received=0)
    assert "svc" not in h.sources


def test_a_source_keeps_its_kind() -> None:
    h = hub()
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    with pytest.raises(SourceConflict, match="SOURCE_KIND_PUSH"):
        h.apply("svc", OTLP, [gauge("a", 1)], 1, received=0)


def test_subscriber_limit() -> None:
    h = hub(max_subscribers=1)
    sub = h.subscribe()
    with pytest.raises(TooManySubscribers):
        h.subscribe()
    h.unsubscribe(sub)
    h.subscribe()


def test_unknown_source_snapshot() -> None:
    with pytest.raises(UnknownSource):
        hub().snapshot("nope")


def test_close_ends_every_subscription() -> None:
    h = hub()
    subs = [h.subscribe(), h.subscribe(["x"])]
    h.close()
    assert all(s.closed for s in subs)
    assert h.subscribe().closed


@pytest.mark.parametrize("kind", [PUSH, OTLP])
def test_an_idle_source_expires_at_the_ttl_and_not_before(
    kind: metrics_pb2.SourceKind.ValueType,
) -> None:
    h = hub(source_ttl=10)
    position = h.apply("svc", kind, [gauge("a", 1)], 1, received=100)
    assert h.expire(109.9) == [] and "svc" in h.sources
    assert h.expire(110) == [RemovedSource("svc", kind, position.epoch, 10)]
    assert "svc" not in h.sources
    with pytest.raises(UnknownSource):
        h.snapshot("svc")


def test_any_accepted_batch_restarts_the_idle_timer_even_one_that_changes_nothing() -> None:
    h = hub(source_ttl=10)
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    h.apply("svc", PUSH, [gauge("a", 1)], 2, received=8)
    assert h.expire(17) == []
    assert [r.name for r in h.expire(18)] == ["svc"]


def test_a_refused_batch_does_not_restart_the_idle_timer() -> None:
    h = hub(source_ttl=10, max_series_per_source=1)
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    with pytest.raises(SeriesLimitExceeded):
        h.apply("svc", PUSH, [gauge("b", 1)], 2, received=8)
    assert [r.name for r in h.expire(10)] == ["svc"]


def test_the_host_source_never_expires() -> None:
    h = hub(source_ttl=10)
    h.apply("host", HOST, [gauge("a", 1)], 1, received=0, replace=True)
    assert h.expire(1e9) == [] and "host" in h.sources


def test_a_zero_ttl_disables_expiry() -> None:
    h = hub(source_ttl=0)
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    assert h.expire(1e9) == [] and "svc" in h.sources


def test_expiry_frees_the_sources_place_under_the_source_limit() -> None:
    h = hub(source_ttl=10, max_sources=1)
    h.apply("one", PUSH, [gauge("a", 1)], 1, received=0)
    with pytest.raises(TooManySources):
        h.apply("two", PUSH, [gauge("a", 1)], 1, received=5)
    h.expire(10)
    h.apply("two", PUSH, [gauge("a", 1)], 1, received=11)
    assert list(h.sources) == ["two"]


def test_subscribers_of_an_expired_source_get_the_same_source_removed_bytes() -> None:
    h = hub(source_ttl=10)
    position = h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    h.apply("other", PUSH, [gauge("a", 1)], 1, received=5)
    everything, named, elsewhere = h.subscribe(), h.subscribe(["svc"]), h.subscribe(["other"])
    for sub in (everything, named, elsewhere):
        drain(sub)
    h.expire(10)
    [a], [b] = drain(everything), drain(named)
    assert drain(elsewhere) == []
    assert isinstance(a, Removed) and isinstance(b, Removed) and a.data is b.data
    removed = collector_pb2.CollectorEvent.FromString(a.data).source_removed
    assert (removed.source, removed.epoch) == ("svc", position.epoch)


def test_expiry_replaces_a_pending_snapshot_and_queued_updates() -> None:
    h = hub(source_ttl=10)
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    sub = h.subscribe(["svc"])
    h.apply("svc", PUSH, [gauge("a", 2)], 2, received=1)
    behind = h.subscribe(["svc"])
    drain(behind)
    h.apply("svc", PUSH, [gauge("a", 3)], 3, received=2)
    h.expire(12)
    assert [type(i) for i in drain(sub)] == [Removed]
    assert [type(i) for i in drain(behind)] == [Removed]


def test_a_source_pushed_again_after_expiry_starts_a_new_epoch_announced_by_a_snapshot() -> None:
    h = hub(source_ttl=10)
    old = h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    named = h.subscribe(["svc"])
    drain(named)
    h.expire(10)
    drain(named)
    new = h.apply("svc", PUSH, [gauge("a", 1)], 20, received=20)
    assert new.epoch != old.epoch and new.seq == 1
    assert drain(named) == [Resync("svc")]


def test_resuming_from_an_expired_epoch_gets_a_snapshot_of_the_new_one() -> None:
    h = hub(source_ttl=10)
    for i in range(3):
        old = h.apply("svc", PUSH, [gauge("a", i)], i, received=0)
    h.expire(10)
    for i in range(3):
        h.apply("svc", PUSH, [gauge("a", i)], i, received=20)
    assert drain(h.subscribe(["svc"], {"svc": old})) == [Resync("svc")]


def test_a_subscriber_naming_an_expired_source_waits_for_it_to_come_back() -> None:
    h = hub(source_ttl=10)
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    h.expire(10)
    sub = h.subscribe(["svc"])
    assert drain(sub) == [] and not sub.closed
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=20)
    assert drain(sub) == [Resync("svc")]


def test_an_update_left_waiting_past_max_staleness_becomes_a_marked_snapshot() -> None:
    now = [0.0]
    h = hub(clock=lambda: now[0], max_staleness=1.0)
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    sub = h.subscribe(["svc"])
    assert drain(sub) == [Resync("svc")]
    for i in range(2, 5):
        h.apply("svc", PUSH, [gauge("a", i)], i, received=0)
    now[0] = 1.5
    [resync] = drain(sub)
    assert resync == Resync("svc", metrics_pb2.RESYNC_REASON_STALE)
    marked = collector_pb2.CollectorEvent.FromString(h.snapshot("svc", resync.reason))
    assert marked.resync == metrics_pb2.RESYNC_REASON_STALE and marked.snapshot.seq == 4
    assert marked.snapshot == collector_pb2.CollectorEvent.FromString(h.snapshot("svc")).snapshot


def test_marking_appends_exactly_the_field_protobuf_would_encode() -> None:
    snapshot = metrics_pb2.Snapshot(source="svc", seq=3)
    plain = collector_pb2.CollectorEvent(snapshot=snapshot).SerializeToString()
    for reason in (metrics_pb2.RESYNC_REASON_STALE, metrics_pb2.RESYNC_REASON_OVERFLOW):
        marked = collector_pb2.CollectorEvent(snapshot=snapshot, resync=reason)
        assert with_resync(plain, reason) == marked.SerializeToString()
    assert with_resync(plain, metrics_pb2.RESYNC_REASON_UNSPECIFIED) is plain


def test_a_marked_snapshot_leaves_the_shared_encoding_unmarked() -> None:
    h = hub()
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    shared = h.snapshot("svc")
    h.snapshot("svc", metrics_pb2.RESYNC_REASON_OVERFLOW)
    assert h.snapshot("svc") is shared
    assert collector_pb2.CollectorEvent.FromString(shared).resync == 0


def test_without_a_clock_there_is_no_staleness_bound() -> None:
    h = hub(max_staleness=1.0)
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    sub = h.subscribe(["svc"])
    drain(sub)
    for i in range(2, 5):
        h.apply("svc", PUSH, [gauge("a", i)], i, received=0)
    assert [type(i) for i in drain(sub)] == [Event, Event, Event]


def event_of(item: Event | Resync | Removed) -> collector_pb2.CollectorEvent:
    assert isinstance(item, Event), item
    return collector_pb2.CollectorEvent.FromString(item.data)


def replayed_seqs(items: list[Event | Resync | Removed]) -> tuple[int, list[int]]:
    """The snapshot's seq and the updates' seqs of a replay."""
    first, *rest = [event_of(i) for i in items]
    assert first.WhichOneof("event") == "snapshot" and first.resync == 0
    assert all(e.WhichOneof("event") == "update" for e in rest)
    return first.snapshot.seq, [e.update.seq for e in rest]


def test_replay_on_subscribe_queues_an_older_snapshot_then_every_update_since() -> None:
    h = hub(resume_window=8)
    for i in range(1, 21):
        h.apply("svc", PUSH, [gauge("a", i)], i, received=0)
    sub = h.subscribe(["svc"], replay=8)
    start, seqs = replayed_seqs(drain(sub))
    assert 20 - 8 <= start < 20 and seqs == list(range(start + 1, 21))
    h.apply("svc", PUSH, [gauge("a", 21)], 21, received=0)
    assert [event_of(i).update.seq for i in drain(sub)] == [21]


def test_replay_replaces_the_snapshot_for_a_position_the_collector_cannot_resume() -> None:
    h = hub(resume_window=8)
    for i in range(1, 21):
        position = h.apply("svc", PUSH, [gauge("a", i)], i, received=0)
    for lost in (Position(position.epoch ^ 1, 20), Position(position.epoch, 2)):
        start, seqs = replayed_seqs(drain(h.subscribe(["svc"], {"svc": lost}, replay=8)))
        assert start < 20 and seqs == list(range(start + 1, 21))
    held = drain(h.subscribe(["svc"], {"svc": Position(position.epoch, 18)}, replay=8))
    assert [event_of(i).update.seq for i in held] == [19, 20]
    assert drain(h.subscribe(["svc"])) == [Resync("svc")]


def test_replay_sends_the_compact_form_to_a_subscriber_that_takes_deltas() -> None:
    h = hub(resume_window=8)
    for i in range(1, 11):
        h.apply("svc", PUSH, [gauge("a", float(i))], i, received=0)
    items = drain(h.subscribe(["svc"], deltas=True, replay=8))
    updates = [event_of(i).update for i in items[1:]]
    assert updates and all(u.values.delta_ids == [1] and not u.values.ids for u in updates)


def test_replays_take_at_most_half_the_subscriber_queue() -> None:
    h = hub(resume_window=8, subscriber_queue=10)
    for name in ("one", "two"):
        for i in range(1, 21):
            h.apply(name, PUSH, [gauge("a", i)], i, received=0)
    sub = h.subscribe(replay=8)
    items = drain(sub)
    assert sub.overflows == 0
    assert 0 < sum(isinstance(i, Event) for i in items) <= 5
    assert Resync("two") in items
    start, seqs = replayed_seqs([i for i in items if i.source == "one"])
    assert seqs == list(range(start + 1, 21))


def test_replayed_updates_wait_from_the_subscribe_so_they_are_not_stale() -> None:
    now = [0.0]
    h = hub(clock=lambda: now[0], max_staleness=1.0, resume_window=8)
    for i in range(1, 11):
        h.apply("svc", PUSH, [gauge("a", i)], i, received=0)
    now[0] = 60.0
    sub = h.subscribe(["svc"], replay=8)
    now[0] = 60.5
    start, seqs = replayed_seqs(drain(sub))
    assert seqs == list(range(start + 1, 11)) and sub.stale_resyncs == 0


def test_while_every_subscriber_takes_deltas_updates_are_encoded_compact_only() -> None:
    h = hub()
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    bridge = h.subscribe(deltas=True)
    drain(bridge)
    position = h.apply("svc", PUSH, [gauge("a", 2)], 2, received=0)
    assert h.get("svc").latest is None
    [compact] = drain(bridge)
    assert isinstance(compact, Event) and event_of(compact).update.values.delta_ids == [1]
    # One in full cannot resume across an update it has no bytes for: a snapshot.
    in_full = h.subscribe(["svc"], {"svc": Position(position.epoch, 1)})
    assert drain(in_full) == [Resync("svc")]
    # From then on both forms are encoded, and it can resume across them.
    h.apply("svc", PUSH, [gauge("a", 3)], 3, received=0)
    [full] = drain(in_full)
    assert isinstance(full, Event) and event_of(full).update.values.numbers == [3.0]
    h.unsubscribe(in_full)
    later = h.subscribe(["svc"], {"svc": Position(position.epoch, 2)})
    assert [event_of(i).update.seq for i in drain(later)] == [3]


def test_the_last_subscriber_gone_updates_are_encoded_in_full_again() -> None:
    h = hub()
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    bridge = h.subscribe(deltas=True)
    h.apply("svc", PUSH, [gauge("a", 2)], 2, received=0)
    h.unsubscribe(bridge)
    position = h.apply("svc", PUSH, [gauge("a", 3)], 3, received=0)
    assert h.get("svc").latest is not None
    resumed = h.subscribe(["svc"], {"svc": Position(position.epoch, 2)})
    assert [event_of(i).update.values.numbers for i in drain(resumed)] == [[3.0]]


def test_a_replay_in_full_starts_after_the_last_compact_only_update() -> None:
    h = hub(resume_window=64)  # the ring holds all 20: checkpoints at 0, 9 and 17
    bridge = h.subscribe(deltas=True)
    for i in range(1, 5):  # compact only: the bridge is the only subscriber
        h.apply("svc", PUSH, [gauge("a", i)], i, received=0)
    h.subscribe()  # one in full: both forms from here on
    for i in range(5, 21):
        h.apply("svc", PUSH, [gauge("a", i)], i, received=0)
    start, seqs = replayed_seqs(drain(h.subscribe(["svc"], replay=20)))
    assert start >= 4 and seqs == list(range(start + 1, 21))
    assert drain(bridge)


def test_a_feed_applies_and_publishes_each_batch_as_apply_does() -> None:
    fed, applied = hub(), hub()
    fed_sub, applied_sub = fed.subscribe(["svc"], deltas=True), applied.subscribe(["svc"])
    feed = fed.feed("svc", PUSH, received=0)
    for i in range(1, 5):
        feed.apply([gauge("a", i), gauge("b", 0.5 * i)], i)
        applied.apply("svc", PUSH, [gauge("a", i), gauge("b", 0.5 * i)], i, received=0)
    assert feed.close() == applied.sources["svc"].position == Position(100, 4)
    assert drain(fed_sub) == [Resync("svc"), *drain(applied_sub)[1:]]
    assert fed.snapshot("svc") == applied.snapshot("svc")


def test_a_feeds_updates_share_one_clock_reading() -> None:
    now = [5.0]

    def clock() -> float:
        now[0] += 1
        return now[0]

    h = hub(clock=clock)
    h.apply("svc", PUSH, [gauge("a", 0)], 0, received=0)
    sub = h.subscribe(["svc"])
    drain(sub)
    feed = h.feed("svc", PUSH, received=0)
    for i in range(1, 4):
        feed.apply([gauge("a", i)], i)
    feed.close()
    stamps = {item.queued_at for item in drain(sub) if isinstance(item, Event)}
    assert len(stamps) == 1


def test_a_feed_restarts_the_idle_timers_once_on_close_if_a_batch_was_accepted() -> None:
    h = hub(source_ttl=10, max_series_per_source=1)
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=0)
    refused = h.feed("svc", PUSH, received=8)
    with pytest.raises(SeriesLimitExceeded):
        refused.apply([gauge("b", 1)], 2)
    assert refused.close() is None
    assert [r.name for r in h.expire(10)] == ["svc"]

    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=20)
    feed = h.feed("svc", PUSH, received=28)
    feed.apply([gauge("a", 2)], 2)
    assert h.expire(30) != []  # not yet restarted: that is close's job
    h.apply("svc", PUSH, [gauge("a", 1)], 1, received=20)
    feed = h.feed("svc", PUSH, received=28)
    feed.apply([gauge("a", 2)], 2)
    with pytest.raises(SeriesLimitExceeded):
        feed.apply([gauge("b", 1)], 3)  # refused: the batch before it stays applied
    assert feed.close() is not None
    assert h.sources["svc"].seq == 2
    assert h.expire(37) == [] and [r.name for r in h.expire(38)] == ["svc"]
