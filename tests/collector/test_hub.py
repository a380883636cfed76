"""CollectorHub: sources created on first batch, limits, fan-out, resume on subscribe."""

from __future__ import annotations

import itertools

import pytest

from collector.errors import (
    SeriesLimitExceeded,
    SourceConflict,
    TooManySources,
    TooManySubscribers,
    UnknownSource,
)
from collector.fanout import Event, Resync, SubscriberQueue
from collector.hub import CollectorHub, HubLimits
from collector.series import GAUGE, Descriptor, SeriesKey, SeriesSample
from collector.source import Position
from metrics_bridge.v1 import metrics_pb2

PUSH = metrics_pb2.SOURCE_KIND_PUSH
OTLP = metrics_pb2.SOURCE_KIND_OTLP


def gauge(name: str, value: float) -> SeriesSample:
    return SeriesSample(SeriesKey.of(name), Descriptor(GAUGE), value)


def hub(**limits: int) -> CollectorHub:
    counter = itertools.count(100)
    return CollectorHub(HubLimits(**limits), epochs=lambda: next(counter))


def drain(queue: SubscriberQueue) -> list[Event | Resync]:
    items = []
    while (item := queue.pop()) is not None:
        items.append(item)
    return items


def test_every_subscriber_gets_the_same_update_bytes() -> None:
    h = hub()
    h.apply("svc", PUSH, [gauge("a", 1)], 1)
    one, two = h.subscribe(), h.subscribe()
    drain(one), drain(two)
    h.apply("svc", PUSH, [gauge("a", 2)], 2)
    [a], [b] = drain(one), drain(two)
    assert isinstance(a, Event) and isinstance(b, Event) and a.data is b.data


def test_a_source_appearing_later_is_announced_with_a_snapshot() -> None:
    h = hub()
    everything, named, other = h.subscribe(), h.subscribe(["svc"]), h.subscribe(["nope"])
    h.apply("svc", PUSH, [gauge("a", 1)], 1)
    assert drain(everything) == [Resync("svc")]
    assert drain(named) == [Resync("svc")]
    assert drain(other) == []


def test_each_source_gets_its_own_epoch() -> None:
    h = hub()
    first = h.apply("one", PUSH, [gauge("a", 1)], 1)
    second = h.apply("two", PUSH, [gauge("a", 1)], 1)
    assert first.epoch != second.epoch and first.seq == second.seq == 1


def test_subscribe_with_a_held_position_replays_without_a_snapshot() -> None:
    h = hub()
    for i in range(5):
        position = h.apply("svc", PUSH, [gauge("a", i)], i)
    sub = h.subscribe(["svc"], {"svc": Position(position.epoch, 3)})
    items = drain(sub)
    assert len(items) == 2 and all(isinstance(i, Event) for i in items)


def test_subscribe_with_an_old_epoch_gets_a_snapshot() -> None:
    h = hub()
    h.apply("svc", PUSH, [gauge("a", 1)], 1)
    assert drain(h.subscribe(["svc"], {"svc": Position(1, 1)})) == [Resync("svc")]


def test_source_limit_refuses_new_sources_only() -> None:
    h = hub(max_sources=1)
    h.apply("one", PUSH, [gauge("a", 1)], 1)
    with pytest.raises(TooManySources):
        h.apply("two", PUSH, [gauge("a", 1)], 1)
    h.apply("one", PUSH, [gauge("a", 2)], 2)
    assert list(h.sources) == ["one"]


def test_a_refused_first_batch_leaves_no_source_behind() -> None:
    h = hub(max_series_per_source=1)
    with pytest.raises(SeriesLimitExceeded):
        h.apply("svc", PUSH, [gauge("a", 1), gauge("b", 1)], 1)
    assert "svc" not in h.sources


def test_a_source_keeps_its_kind() -> None:
    h = hub()
    h.apply("svc", PUSH, [gauge("a", 1)], 1)
    with pytest.raises(SourceConflict, match="SOURCE_KIND_PUSH"):
        h.apply("svc", OTLP, [gauge("a", 1)], 1)


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
