"""ChannelView: a client's copy of a channel, checked against the protocol's resume rules."""

from __future__ import annotations

from bench.chaos_view import ChannelView, History
from metrics_bridge.v1 import bridge_pb2

CHANNEL = "c1/chaos"


def snapshot(epoch: int, seq: int, values: dict[int, float]) -> bridge_pb2.ServerMessage:
    message = bridge_pb2.ServerMessage(channel=CHANNEL)
    message.snapshot.epoch, message.snapshot.seq = epoch, seq
    for series_id, value in values.items():
        message.snapshot.series.add(id=series_id, name=f"m{series_id}")
        message.snapshot.values.ids.append(series_id)
        message.snapshot.values.numbers.append(value)
    return message


def update(epoch: int, seq: int, values: dict[int, float]) -> bridge_pb2.ServerMessage:
    message = bridge_pb2.ServerMessage(channel=CHANNEL)
    message.update.epoch, message.update.seq = epoch, seq
    message.update.values.ids.extend(values)
    message.update.values.numbers.extend(values.values())
    return message


def subscribed(recovered: bool) -> bridge_pb2.ServerMessage:
    return bridge_pb2.ServerMessage(
        channel=CHANNEL, subscribed=bridge_pb2.Subscribed(recovered=recovered)
    )


def test_updates_that_continue_the_position_apply() -> None:
    view = ChannelView(CHANNEL)
    view.take(snapshot(7, 0, {1: 1.0}))
    view.take(update(7, 1, {1: 2.0}))
    assert (view.position, view.state, view.gaps) == ((7, 1), {1: 2.0}, 0)


def test_a_merged_update_continues_the_position_before_its_first_seq() -> None:
    view = ChannelView(CHANNEL)
    view.take(snapshot(7, 0, {1: 1.0}))
    merged = update(7, 3, {1: 4.0})
    merged.first_seq = 1
    view.take(merged)
    assert (view.position, view.state, view.gaps) == ((7, 3), {1: 4.0}, 0)
    late = update(7, 5, {1: 6.0})
    late.first_seq = 5
    view.take(late)
    assert view.gaps == 1, "a merged update from seq 5 does not continue (7, 3)"


def test_whole_number_changes_add_to_the_held_value() -> None:
    view = ChannelView(CHANNEL)
    view.take(snapshot(7, 0, {1: 10.0, 2: 5.0}))
    message = update(7, 1, {})
    message.update.values.delta_ids.extend([1, 2])
    message.update.values.deltas.extend([3, -5])
    view.take(message)
    assert view.state == {1: 13.0, 2: 0.0}


def test_a_gap_a_duplicate_or_another_epoch_is_counted_and_not_applied() -> None:
    for bad in (update(7, 3, {1: 9.0}), update(7, 1, {1: 9.0}), update(8, 2, {1: 9.0})):
        view = ChannelView(CHANNEL)
        view.take(snapshot(7, 1, {1: 1.0}))
        view.take(bad)
        assert view.gaps == 1
        assert view.state == {1: 1.0}
        assert view.resume_from() is None  # resubscribe from scratch
        view.take(update(7, 2, {1: 5.0}))
        assert view.gaps == 1  # nothing more is applied until a snapshot


def test_resumes_count_recoveries_and_fallbacks_by_epoch() -> None:
    view = ChannelView(CHANNEL)
    view.take(snapshot(7, 0, {1: 1.0}))
    view.take(subscribed(True))
    view.take(update(7, 1, {1: 2.0}))
    view.take(subscribed(False))
    view.take(snapshot(7, 9, {1: 3.0}))
    view.take(subscribed(False))
    view.take(snapshot(8, 0, {1: 4.0}))
    assert (view.resumes, view.recovered) == (3, 1)
    assert (view.fallbacks_same_epoch, view.fallbacks_new_epoch) == (1, 1)


def test_a_final_state_is_compared_with_the_reference_at_the_same_position() -> None:
    history = History()
    reference = ChannelView(CHANNEL, history=history)
    reference.take(snapshot(7, 0, {1: 1.0, 2: 1.0}))
    reference.take(update(7, 1, {1: 2.0}))
    reference.take(update(7, 2, {2: 3.0}))
    client = ChannelView(CHANNEL)
    client.take(snapshot(7, 1, {1: 2.0, 2: 1.0}))
    assert history.check(client) is True
    wrong = ChannelView(CHANNEL)
    wrong.take(snapshot(7, 2, {1: 2.0, 2: 1.0}))
    assert history.check(wrong) is False
    elsewhere = ChannelView(CHANNEL)
    elsewhere.take(snapshot(7, 40, {}))
    assert history.check(elsewhere) is None
