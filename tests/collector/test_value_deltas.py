"""Whole-number changes as Values.delta_ids/deltas: the compact form of an Update,
encoded once, exact, and what a subscriber that takes deltas gets (resume too)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.fanout import Event, Resync
from collector.hub import CollectorHub, HubLimits
from collector.series import GAUGE, Descriptor, SeriesKey, SeriesSample
from collector.source import Position, SourceState, _ChangedNumbers
from metrics_bridge.v1 import collector_pb2, metrics_pb2
from tests.collector.replica import SourceReplica

PUSH = metrics_pb2.SOURCE_KIND_PUSH


def gauge(name: str, value: float) -> SeriesSample:
    return SeriesSample(SeriesKey(name), Descriptor(GAUGE), value)


def values_of(data: bytes) -> metrics_pb2.Values:
    return collector_pb2.CollectorEvent.FromString(data).update.values


def test_whole_number_changes_travel_as_deltas_in_the_compact_form_only() -> None:
    source = SourceState("svc", PUSH, epoch=1)
    source.apply([gauge("bytes", 1_000_000.0), gauge("cpu", 1.5)], 1)
    plain = source.apply([gauge("bytes", 1_000_300.0), gauge("cpu", 2.0)], 2)
    assert plain is not None
    assert list(values_of(plain).ids) == [1, 2] and not values_of(plain).delta_ids
    compact = values_of(source.compact)
    assert (list(compact.ids), list(compact.numbers)) == ([2], [2.0])
    assert (list(compact.delta_ids), list(compact.deltas)) == ([1], [300])
    assert len(source.compact) < len(plain)


def test_no_delta_when_either_value_is_not_a_whole_number_or_the_new_one_is_minus_zero() -> None:
    source = SourceState("svc", PUSH, epoch=1)
    source.apply([gauge("a", 1.5), gauge("b", 2.0), gauge("c", 3.0), gauge("d", 2.0**53)], 1)
    plain = source.apply([gauge("a", 3.0), gauge("b", 2.5), gauge("c", -0.0), gauge("d", 1.0)], 2)
    assert plain is not None
    assert source.compact is plain, "nothing to gain: the same bytes"


def test_new_and_redeclared_series_carry_their_value_in_full() -> None:
    source = SourceState("svc", PUSH, epoch=1)
    source.apply([gauge("a", 1.0)], 1)
    source.apply([gauge("a", 2.0), gauge("b", 5.0)], 2)
    compact = values_of(source.compact)
    assert list(compact.delta_ids) == [1] and list(compact.ids) == [2]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(-(2**60), 2**60) | st.floats(allow_nan=False), min_size=3, max_size=3),
        min_size=1,
        max_size=12,
    )
)
def test_a_replica_fed_compact_updates_matches_the_source_exactly(
    rounds: list[list[float]],
) -> None:
    source = SourceState("svc", PUSH, epoch=1)
    replica = SourceReplica()
    replica.apply_snapshot(collector_pb2.CollectorEvent.FromString(source.snapshot()).snapshot)
    for t, numbers in enumerate(rounds):
        data = source.apply([gauge(f"s{i}", float(n)) for i, n in enumerate(numbers)], t)
        if data is not None:
            replica.apply_update(collector_pb2.CollectorEvent.FromString(source.compact).update)
    for i in range(3):
        want = source.value(SeriesKey(f"s{i}"))
        got = replica.get(f"s{i}")
        assert isinstance(want, float) and isinstance(got, float)
        assert got == want and math.copysign(1, got) == math.copysign(1, want)


def test_a_subscriber_that_takes_deltas_gets_the_compact_form_also_on_resume() -> None:
    hub = CollectorHub(HubLimits(16, 100, 10, 100, 10, 0, 0), epochs=lambda: 9)
    hub.apply("svc", PUSH, [gauge("n", 1.0)], 1, received=0)
    hub.apply("svc", PUSH, [gauge("n", 4.0)], 2, received=0)
    live_plain, live_compact = hub.subscribe(), hub.subscribe(deltas=True)
    for sub in (live_plain, live_compact):
        assert isinstance(sub.pop(), Resync)  # the snapshot comes first
    resumed = hub.subscribe(resume={"svc": hub.get("svc").position}, deltas=True)
    hub.apply("svc", PUSH, [gauge("n", 6.0)], 3, received=0)
    behind = hub.subscribe(resume={"svc": Position(9, 1)}, deltas=True)
    plain, compact, again = live_plain.pop(), live_compact.pop(), resumed.pop()
    assert isinstance(plain, Event) and isinstance(compact, Event) and isinstance(again, Event)
    assert list(values_of(plain.data).numbers) == [6.0]
    assert list(values_of(compact.data).deltas) == [2]
    assert again.data == compact.data
    replayed = [behind.pop(), behind.pop()]
    assert [list(values_of(e.data).deltas) for e in replayed if isinstance(e, Event)] == [[3], [2]]


_number = (
    st.integers(-(2**54), 2**54).map(float)
    | st.sampled_from([0.0, -0.0, 2.0**53, -(2.0**53), 2.0**48, 0.5])
    | st.floats(allow_nan=False, allow_infinity=False)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_number, _number | st.none()), max_size=12))
def test_the_whole_list_shortcuts_answer_as_the_rule_does_number_by_number(
    pairs: list[tuple[float, float | None]],
) -> None:
    changed = _ChangedNumbers()
    for i, (new, old) in enumerate(pairs):
        changed.add(i + 1, new, old)
    assert repr(changed.compact()) == repr(changed.split())  # repr: -0.0 is not 0.0
