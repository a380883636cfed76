"""ChannelState: folding, gaps and the all-or-nothing resume rule."""

from __future__ import annotations

import pytest

from bridge.channel import ChannelState, Position
from bridge.errors import UpstreamGap
from bridge.frame import FrameKind
from metrics_bridge.v1 import collector_pb2, metrics_pb2
from tests.bridge.events import parse_wire, snapshot_event, snapshot_values, update_event


def make_channel(window: int = 4, epoch: int = 7, seq: int = 10) -> ChannelState:
    event = snapshot_event("svc", epoch, seq, {1: 1.0})
    snapshot = collector_pb2.CollectorEvent.FromString(event).snapshot
    return ChannelState("col", snapshot, event, window)


def apply_update(channel: ChannelState, epoch: int, seq: int, **kwargs: object) -> object:
    event = update_event("svc", epoch, seq, **kwargs)  # type: ignore[arg-type]
    return channel.apply_update(collector_pb2.CollectorEvent.FromString(event).update, event)


def apply_snapshot(channel: ChannelState, epoch: int, seq: int, values: dict[int, float]) -> None:
    event = snapshot_event("svc", epoch, seq, values)
    channel.apply_snapshot(collector_pb2.CollectorEvent.FromString(event).snapshot, event)


def test_channel_is_named_collector_slash_source_and_starts_at_the_snapshot_position() -> None:
    channel = make_channel()
    assert channel.name == "col/svc"
    assert channel.position == Position(7, 10)


def test_update_frame_is_the_collector_event_prefixed_with_the_channel() -> None:
    channel = make_channel()
    event = update_event("svc", 7, 11, {1: 2.0})
    frame = channel.apply_update(collector_pb2.CollectorEvent.FromString(event).update, event)
    assert frame is not None
    assert frame.kind is FrameKind.UPDATE
    assert frame.payload.endswith(event)
    message = parse_wire(frame.wire)
    assert message.channel == "col/svc"
    assert message.update.seq == 11
    assert list(message.update.values.numbers) == [2.0]


def test_update_that_skips_a_seq_is_a_gap_and_leaves_the_state_alone() -> None:
    channel = make_channel()
    with pytest.raises(UpstreamGap):
        apply_update(channel, 7, 12)
    assert channel.position == Position(7, 10)


def test_update_of_another_epoch_is_a_gap() -> None:
    channel = make_channel()
    with pytest.raises(UpstreamGap):
        apply_update(channel, 8, 11)


def test_duplicate_update_is_ignored() -> None:
    channel = make_channel()
    assert apply_update(channel, 7, 10) is None
    assert channel.position == Position(7, 10)


def test_latest_snapshot_folds_in_added_changed_and_removed_series() -> None:
    channel = make_channel()
    apply_update(channel, 7, 11, values={1: 5.0, 2: 9.0}, added=(2,))
    apply_update(channel, 7, 12, values={2: 10.0}, removed=(1,))
    message = parse_wire(channel.snapshot_frame().wire)
    assert message.channel == "col/svc"
    assert (message.snapshot.epoch, message.snapshot.seq) == (7, 12)
    assert snapshot_values(message) == {2: 10.0}
    assert [d.id for d in message.snapshot.series] == [2]


def test_snapshot_frame_is_encoded_once_per_position() -> None:
    channel = make_channel()
    apply_update(channel, 7, 11, values={1: 5.0})
    first = channel.snapshot_frame()
    assert channel.snapshot_frame() is first
    apply_update(channel, 7, 12, values={1: 6.0})
    assert channel.snapshot_frame() is not first


def test_resync_frame_is_the_latest_snapshot_marked_once_per_position_and_reason() -> None:
    channel = make_channel()
    apply_update(channel, 7, 11, values={1: 5.0})
    stale = channel.resync_frame(metrics_pb2.RESYNC_REASON_STALE)
    assert channel.resync_frame(metrics_pb2.RESYNC_REASON_STALE) is stale
    message = parse_wire(stale.wire)
    assert message.resync == metrics_pb2.RESYNC_REASON_STALE
    assert message.snapshot == parse_wire(channel.snapshot_frame().wire).snapshot
    assert parse_wire(channel.snapshot_frame().wire).resync == 0
    apply_update(channel, 7, 12, values={1: 6.0})
    assert parse_wire(channel.resync_frame(metrics_pb2.RESYNC_REASON_STALE).wire).snapshot.seq == 12


def test_a_snapshot_the_collector_marked_is_published_marked_but_not_kept() -> None:
    channel = make_channel()
    marked = collector_pb2.CollectorEvent.FromString(snapshot_event("svc", 7, 20, {1: 9.0}))
    marked.resync = metrics_pb2.RESYNC_REASON_STALE
    event = marked.SerializeToString()
    published = channel.apply_snapshot(marked.snapshot, event, marked=True)
    assert parse_wire(published.wire).resync == metrics_pb2.RESYNC_REASON_STALE
    later = parse_wire(channel.resume(None).frames[0].wire)
    assert (later.resync, later.snapshot.seq) == (0, 20)


def test_resume_within_the_ring_returns_exactly_the_missed_updates_in_order() -> None:
    channel = make_channel(window=4)
    for seq in range(11, 16):
        apply_update(channel, 7, seq, values={1: float(seq)})
    decision = channel.resume(Position(7, 12))
    assert decision.recovered
    assert decision.position == Position(7, 15)
    assert [f.seq for f in decision.frames] == [13, 14, 15]
    assert all(f.kind is FrameKind.UPDATE for f in decision.frames)


def test_resume_at_the_current_position_is_recovered_with_nothing_to_send() -> None:
    channel = make_channel()
    decision = channel.resume(Position(7, 10))
    assert decision.recovered
    assert decision.frames == ()


def test_resume_beyond_the_ring_gets_the_latest_snapshot_not_recovered() -> None:
    channel = make_channel(window=4)
    for seq in range(11, 17):
        apply_update(channel, 7, seq, values={1: float(seq)})
    decision = channel.resume(Position(7, 11))
    assert not decision.recovered
    assert [f.kind for f in decision.frames] == [FrameKind.SNAPSHOT]
    assert snapshot_values(parse_wire(decision.frames[0].wire)) == {1: 16.0}


def test_resume_with_an_old_epoch_gets_a_snapshot_not_recovered() -> None:
    channel = make_channel()
    apply_update(channel, 7, 11)
    decision = channel.resume(Position(6, 11))
    assert not decision.recovered
    assert decision.frames[0].kind is FrameKind.SNAPSHOT


def test_resume_ahead_of_the_bridge_gets_a_snapshot_not_recovered() -> None:
    channel = make_channel()
    decision = channel.resume(Position(7, 50))
    assert not decision.recovered
    assert decision.frames[0].seq == 10


def test_fresh_subscription_gets_the_latest_snapshot() -> None:
    channel = make_channel()
    decision = channel.resume(None)
    assert not decision.recovered
    assert parse_wire(decision.frames[0].wire).snapshot.seq == 10


def test_snapshot_of_a_new_epoch_clears_the_ring() -> None:
    channel = make_channel()
    apply_update(channel, 7, 11)
    apply_snapshot(channel, 99, 0, {3: 3.0})
    assert channel.position == Position(99, 0)
    assert not channel.resume(Position(7, 10)).recovered
    assert snapshot_values(parse_wire(channel.snapshot_frame().wire)) == {3: 3.0}


def test_snapshot_after_skipped_updates_clears_the_ring() -> None:
    channel = make_channel()
    apply_update(channel, 7, 11)
    apply_snapshot(channel, 7, 20, {1: 1.0})
    assert not channel.resume(Position(7, 10)).recovered
    assert channel.resume(Position(7, 20)).recovered


def test_snapshot_at_the_current_position_keeps_the_ring() -> None:
    channel = make_channel()
    apply_update(channel, 7, 11)
    apply_snapshot(channel, 7, 11, {1: 1.0})
    decision = channel.resume(Position(7, 10))
    assert decision.recovered
    assert [f.seq for f in decision.frames] == [11]


def test_zero_resume_window_never_recovers_missed_updates() -> None:
    channel = make_channel(window=0)
    apply_update(channel, 7, 11)
    assert not channel.resume(Position(7, 10)).recovered
