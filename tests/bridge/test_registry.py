"""ChannelRegistry: channels built from raw collector events, and the catalog that lists them."""

from __future__ import annotations

import pytest

from bridge.channel import Position
from bridge.errors import BadUpstreamEvent, UpstreamGap
from bridge.registry import ChannelRegistry, Published, Removed
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


def test_an_update_before_any_snapshot_is_a_gap() -> None:
    registry = ChannelRegistry(resume_window=4)
    with pytest.raises(UpstreamGap, match="update before any snapshot"):
        registry.apply("col", update_event("svc", 7, 1))


def test_a_snapshot_of_a_known_channel_is_published_as_revived() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 0))
    outcome = registry.apply("col", snapshot_event("svc", 8, 0))
    assert isinstance(outcome, Published)
    assert outcome.revived
    assert registry.channels["col/svc"].position == Position(8, 0)


def test_source_removed_takes_the_channel_out_marked_removed() -> None:
    registry = ChannelRegistry(resume_window=4)
    registry.apply("col", snapshot_event("svc", 7, 0))
    outcome = registry.apply("col", removed_event("svc", 7))
    assert isinstance(outcome, Removed)
    assert outcome.channel.state == REMOVED
    assert "col/svc" not in registry.channels
    assert catalog_names(registry) == []


def test_undecodable_or_empty_events_are_refused() -> None:
    registry = ChannelRegistry(resume_window=4)
    with pytest.raises(BadUpstreamEvent, match="undecodable"):
        registry.apply("col", b"\xff\xff")
    with pytest.raises(BadUpstreamEvent, match="no known event"):
        registry.apply("col", b"")


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
