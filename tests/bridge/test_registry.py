"""ChannelRegistry: channels built from raw collector events, and the catalog that lists them."""

from __future__ import annotations

from unittest.mock import ANY

from bridge.channel import Position
from bridge.registry import MAX_HELD, ChannelRegistry, Published, Removed, Resync
from metrics_bridge.v1 import bridge_pb2, collector_pb2
from tests.bridge.events import parse_wire, snapshot_event, update_event

REMOVED = bridge_pb2.UPSTREAM_STATE_REMOVED
STALE = bridge_pb2.UPSTREAM_STATE_STALE


def removed_event(source: str, epoch: int) -> bytes:
    event = collector_pb2.CollectorEvent()
    event.source_removed.source = source
    event.source_removed.epoch = epoch
    return event.SerializeToString()


def catalog_names(registry: ChannelRegistry) -> list[str]:
    return [c.channel for c in parse_wire(registry.catalog_frame().wire).catalog.channels]


def test_the_first_snapshot_creates_the_channel_and_publishes_nothing() -> None:
    registry = ChannelRegistry(resume_window=4)
    assert registry.apply("col", snapshot_event("svc", 7, 0, {1: 1.0})) is None
    assert registry.channels["col/svc"].position == Position(7, 0)
    assert catalog_names(registry) == ["col/svc"]


def test_an_update_that_continues_is_published_once_encoded() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 0, {1: 1.0}))
    outcome = registry.apply("col", update_event("svc", 7, 1, {1: 2.0}))
    assert isinstance(outcome, Published)
    assert not outcome.revived
    assert parse_wire(outcome.frame.wire).update.seq == 1


def test_a_duplicate_update_publishes_nothing() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 3))
    assert registry.apply("col", update_event("svc", 7, 3)) is None


def test_an_update_before_any_snapshot_asks_for_that_source_s_snapshot() -> None:
    registry = ChannelRegistry(resume_window=4)
    outcome = registry.apply("col", update_event("svc", 7, 1))
    assert outcome == Resync("col", ("svc",), "unknown_channel", ANY)
    assert "before any snapshot" in outcome.detail
    assert registry.apply("col", snapshot_event("svc", 7, 0)) is None
    assert registry.channels["col/svc"].position == Position(7, 1)  # the held update replayed


def test_a_seq_jump_resyncs_that_channel_and_holds_its_updates_until_the_snapshot() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 3))
    registry.apply("col", snapshot_event("other", 7, 0))
    outcome = registry.apply("col", update_event("svc", 7, 9))
    assert isinstance(outcome, Resync)
    assert (outcome.sources, outcome.reason) == (("svc",), "seq_jump")
    assert registry.channels["col/svc"].position == Position(7, 3)  # nothing passed on
    assert registry.apply("col", update_event("svc", 7, 10)) is None  # held
    assert registry.resyncing("col/svc")
    other = registry.apply("col", update_event("other", 7, 1))
    assert isinstance(other, Published)  # the other channels go on
    resynced = registry.apply("col", snapshot_event("svc", 7, 8))
    assert isinstance(resynced, Published) and resynced.revived
    assert [parse_wire(f.wire).update.seq for f in resynced.then] == [9, 10]
    assert registry.channels["col/svc"].position == Position(7, 10)
    assert not registry.resyncing("col/svc")


def test_another_epoch_mid_stream_resyncs_and_held_updates_of_the_old_epoch_are_dropped() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 3))
    outcome = registry.apply("col", update_event("svc", 8, 4))
    assert isinstance(outcome, Resync) and outcome.reason == "epoch_changed"
    registry.apply("col", update_event("svc", 7, 4))
    resynced = registry.apply("col", snapshot_event("svc", 8, 4))
    assert isinstance(resynced, Published)
    assert resynced.then == ()
    assert registry.channels["col/svc"].position == Position(8, 4)


def test_held_updates_are_bounded() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 0))
    registry.apply("col", update_event("svc", 7, 5))
    for seq in range(6, 6 + MAX_HELD + 10):
        registry.apply("col", update_event("svc", 7, seq))
    resynced = registry.apply("col", snapshot_event("svc", 7, MAX_HELD + 14))
    assert isinstance(resynced, Published)
    assert len(resynced.then) == 1  # the rest were older than the snapshot


def test_an_abandoned_resync_drops_the_held_updates_and_the_next_gap_asks_again() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 0))
    registry.apply("col", update_event("svc", 7, 5))
    registry.abandon_resync("col/svc")
    outcome = registry.apply("col", update_event("svc", 7, 6))
    assert isinstance(outcome, Resync) and outcome.reason == "seq_jump"


def test_a_snapshot_of_a_known_channel_is_published_as_revived() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 0))
    outcome = registry.apply("col", snapshot_event("svc", 8, 0))
    assert isinstance(outcome, Published)
    assert outcome.revived
    assert registry.channels["col/svc"].position == Position(8, 0)


def test_a_snapshot_behind_the_channel_is_outdated_and_ignored() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 0, {1: 1.0}))
    for seq in (1, 2, 3):
        registry.apply("col", update_event("svc", 7, seq, {1: float(seq)}))
    # Fetched after bad data at seq 1, answered after the stream's 2 and 3.
    assert registry.apply("col", snapshot_event("svc", 7, 1, {1: 1.0})) is None
    assert registry.channels["col/svc"].position == Position(7, 3)
    assert registry.apply("col", snapshot_event("svc", 8, 1, {1: 9.0})) is not None


def test_source_removed_takes_the_channel_out_marked_removed() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 0))
    outcome = registry.apply("col", removed_event("svc", 7))
    assert isinstance(outcome, Removed)
    assert outcome.channel.state == REMOVED
    assert "col/svc" not in registry.channels
    assert catalog_names(registry) == []


def test_undecodable_bytes_reconcile_every_source_and_empty_events_are_skipped() -> None:
    registry = ChannelRegistry(resume_window=4)
    garbage = registry.apply("col", b"\xff\xff")
    assert garbage == Resync("col", None, "undecodable", ANY)
    assert registry.apply("col", b"") == Resync("col", (), "unknown_event", ANY)


def test_lost_sources_and_positions_are_per_collector() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("a", snapshot_event("x", 1, 5))
    registry.apply("a", snapshot_event("y", 1, 6))
    registry.apply("b", snapshot_event("x", 2, 7))
    assert registry.lost_sources("a", {"x"}) == ["a/y"]
    assert registry.positions("b") == {"x": Position(2, 7)}


def test_a_change_is_reported_once_with_the_new_catalog() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 0))
    first = registry.take_change()
    assert first is not None
    assert registry.take_change() is None
    channel = registry.channels["col/svc"]
    assert registry.set_state(channel, STALE, "down")
    assert not registry.set_state(channel, STALE, "down")
    second = registry.take_change()
    assert second is not None
    assert parse_wire(second.wire).catalog.channels[0].state == STALE
