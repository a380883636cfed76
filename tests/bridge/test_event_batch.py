"""The bridge unpacks CollectorEvent{batch} and passes single events on untouched."""

from __future__ import annotations

import pytest

from bridge.errors import BadUpstreamEvent
from bridge.event_batch import events_of
from collector.event_batch import encode_batch
from metrics_bridge.v1 import collector_pb2, metrics_pb2


def update(seq: int) -> bytes:
    event = collector_pb2.CollectorEvent(update=metrics_pb2.Update(source="s", seq=seq))
    return event.SerializeToString()


def test_a_batch_yields_its_events_in_order() -> None:
    events = [update(seq) for seq in range(1, 6)]
    assert events_of(encode_batch(events)) == events


def test_a_single_event_is_handed_on_as_it_came() -> None:
    removed = collector_pb2.CollectorEvent(
        source_removed=collector_pb2.SourceRemoved(source="s", epoch=1)
    ).SerializeToString()
    assert events_of(update(1)) == [update(1)]
    assert events_of(removed) == [removed]


def test_an_undecodable_batch_restarts_the_stream() -> None:
    with pytest.raises(BadUpstreamEvent, match="undecodable"):
        events_of(b"\x6a\x05\x0a\x09ab")
