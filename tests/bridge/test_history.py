"""A channel's history ring: the snapshot at its start, its bounds, merged updates."""

from __future__ import annotations

import random
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.channel import ChannelState, Position
from bridge.history import HistoryBudget, HistoryLimits, SourceState, update_of
from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2
from tests.bridge.events import parse_wire, snapshot_event, snapshot_values, update_event


def channel(limits: HistoryLimits | int = 3, source: str = "svc") -> ChannelState:
    event = snapshot_event(source, 7, 0, {1: 0.0, 2: 0.0})
    snapshot = bridge_pb2.ServerMessage.FromString(event).snapshot
    return ChannelState("col", snapshot, event, limits)


def push(state: ChannelState, seq: int, **kwargs: object) -> None:
    event = update_event(state.source, 7, seq, **kwargs)  # type: ignore[arg-type]
    state.apply_update(bridge_pb2.ServerMessage.FromString(event).update, event)


def state_of(snapshot: metrics_pb2.Snapshot) -> SourceState:
    return SourceState.of_snapshot(snapshot)


def comparable(state: SourceState) -> tuple[object, ...]:
    return (
        state.epoch,
        state.seq,
        sorted((i, d.SerializeToString()) for i, d in state.series.items()),
        sorted(state.numbers.items()),
        sorted((i, h.SerializeToString()) for i, h in state.histograms.items()),
    )


def test_history_is_the_snapshot_at_the_ring_start_then_every_held_update() -> None:
    state = channel(3)
    for seq in range(1, 6):
        push(state, seq, values={1: float(seq)})
    decision = state.resume(None, history=True)
    assert decision.history and not decision.recovered
    start, *updates = [parse_wire(f.wire) for f in decision.frames]
    assert (start.snapshot.seq, [u.update.seq for u in updates]) == (2, [3, 4, 5])
    assert snapshot_values(start) == {1: 2.0, 2: 0.0}
    replayed = state_of(start.snapshot)
    for message in updates:
        replayed.apply(message.update)
    latest = parse_wire(state.snapshot_frame().wire).snapshot
    assert comparable(replayed) == comparable(state_of(latest))


def test_the_start_snapshot_is_encoded_once_per_start_position() -> None:
    state = channel(3)
    for seq in range(1, 5):
        push(state, seq, values={1: float(seq)})
    first = state.resume(None, history=True).frames[0]
    assert state.resume(None, history=True).frames[0] is first
    push(state, 5, values={1: 5.0})
    moved = state.resume(None, history=True).frames[0]
    assert moved is not first and parse_wire(moved.wire).snapshot.seq == 2


def test_without_history_or_with_an_empty_ring_a_subscriber_gets_the_latest_snapshot() -> None:
    state = channel(3)
    decision = state.resume(None, history=True)
    assert not decision.history and decision.frames == (state.snapshot_frame(),)
    push(state, 1, values={1: 1.0})
    assert state.resume(None).frames == (state.snapshot_frame(),)


def test_resume_still_wins_over_history() -> None:
    state = channel(3)
    for seq in range(1, 4):
        push(state, seq, values={1: float(seq)})
    decision = state.resume(Position(7, 2), history=True)
    assert decision.recovered and not decision.history
    assert [parse_wire(f.wire).update.seq for f in decision.frames] == [3]


def test_the_ring_is_bounded_by_bytes_per_channel() -> None:
    state = channel(HistoryLimits(100, 200, HistoryBudget(10_000)))
    for seq in range(1, 30):
        push(state, seq, values={1: float(seq)})
    assert 0 < state.history_bytes <= 200
    assert state.history_start.seq == 29 - state.history_len
    assert state.resume(Position(7, state.history_start.seq)).recovered
    assert not state.resume(Position(7, state.history_start.seq - 1)).recovered


def test_the_budget_is_shared_by_every_channel() -> None:
    budget = HistoryBudget(1000)
    limits = HistoryLimits(100, 10_000, budget)
    one, two = channel(limits, "a"), channel(limits, "b")
    for seq in range(1, 40):
        push(one, seq, values={1: float(seq)})
        push(two, seq, values={1: float(seq)})
    assert budget.used == one.history_bytes + two.history_bytes <= 1000
    assert one.history_len > 0 and two.history_len > 0


def test_a_snapshot_of_a_new_epoch_starts_the_history_over_and_frees_its_bytes() -> None:
    budget = HistoryBudget(10_000)
    state = channel(HistoryLimits(100, 10_000, budget))
    for seq in range(1, 5):
        push(state, seq, values={1: float(seq)})
    event = snapshot_event("svc", 8, 3, {1: 9.0})
    state.apply_snapshot(bridge_pb2.ServerMessage.FromString(event).snapshot, event)
    assert (budget.used, state.history_len, state.history_start) == (0, 0, Position(8, 3))


def test_a_merged_update_takes_any_held_position_to_the_latest_state() -> None:
    rng = random.Random(14)
    state = channel(40)
    states = {0: state_of(parse_wire(state.snapshot_frame().wire).snapshot)}
    live = {1, 2}
    next_id = 3
    for seq in range(1, 30):
        added = tuple(range(next_id, next_id + rng.randrange(2)))
        next_id += len(added)
        removed = tuple(i for i in live if rng.random() < 0.1)
        live = (live | set(added)) - set(removed)
        values = {i: rng.random() for i in live if rng.random() < 0.5}
        push(state, seq, values=values, added=added, removed=removed)
        states[seq] = state_of(parse_wire(state.snapshot_frame().wire).snapshot)
    latest = comparable(states[29])
    for after in range(0, 29):
        frame = state.merged_frame(Position(7, after))
        assert frame is not None
        message = parse_wire(frame.wire)
        assert message.first_seq == (0 if after == 28 else after + 1)
        replayed = states[after].copy()
        replayed.apply(message.update)
        assert comparable(replayed) == latest, after


def test_merged_updates_are_encoded_once_per_position_and_one_missing_update_is_its_own_frame() -> (
    None
):
    state = channel(10)
    for seq in range(1, 6):
        push(state, seq, values={1: float(seq)})
    merged = state.merged_frame(Position(7, 2))
    assert merged is not None and state.merged_frame(Position(7, 2)) is merged
    assert update_of(merged).seq == 5
    assert state.merged_frame(Position(7, 4)) is state.resume(Position(7, 4)).frames[0]
    assert state.merged_frame(Position(7, 5)) is None  # up to date
    assert state.merged_frame(Position(6, 2)) is None  # another epoch
    push(state, 6, values={1: 6.0})
    assert state.merged_frame(Position(7, 2)) is not merged


def test_a_position_the_ring_no_longer_holds_gets_no_merged_update() -> None:
    state = channel(3)
    for seq in range(1, 8):
        push(state, seq, values={1: float(seq)})
    assert state.merged_frame(Position(7, 3)) is None
    assert state.merged_frame(Position(7, 4)) is not None


_update = st.tuples(
    st.dictionaries(st.integers(1, 3), st.integers(0, 9).map(float), max_size=3),
    st.dictionaries(st.integers(4, 6), st.integers(-5, 5), max_size=3),
    st.lists(st.integers(5, 6), max_size=1),
)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 9),
    st.lists(_update, min_size=1, max_size=40),
    st.sets(st.integers(0, 39)),
    st.booleans(),
    st.sampled_from([1 << 62, 400, 150]),
)
def test_the_ring_start_is_the_state_before_its_first_update_whichever_way_it_was_made(
    window: int,
    updates: list[tuple[dict[int, float], dict[int, int], list[int]]],
    asks: set[int],
    large: bool,
    channel_bytes: int,
) -> None:
    """By checkpoints (a small source) or by folding every update that leaves
    (`large`: over CHECKPOINT_SERIES), asked for at any point or never; with
    the ring held by its count or by its bytes."""
    state = channel(HistoryLimits(window, channel_bytes, HistoryBudget(1 << 62)))
    reference = [state_of(parse_wire(state.snapshot_frame().wire).snapshot)]
    with patch("bridge.history.CHECKPOINT_SERIES", 0 if large else 1000):
        for seq, (values, deltas, removed) in enumerate(updates, start=1):
            push(state, seq, values=values, deltas=deltas, removed=tuple(removed))
            latest = state_of(parse_wire(state.snapshot_frame().wire).snapshot)
            reference.append(latest)
            ring = state._ring
            assert len(ring._pending) <= ring.checkpoint_every
            if len(ring) < min(window, seq):  # the ring gave updates up for its bytes
                assert not ring._pending, "nothing the byte bound released stays held"
            if seq not in asks:
                continue
            decision = state.resume(None, history=True)
            start = parse_wire(decision.frames[0].wire).snapshot
            assert start.seq == seq - len(decision.frames) + 1 == state.history_start.seq
            assert comparable(state_of(start)) == comparable(reference[start.seq])


def merged_by_reparsing(state: ChannelState, after: int) -> bytes:
    """The merged update as folding the held updates again makes it (the first way)."""
    decision = state.resume(Position(state.epoch, after))
    assert decision.recovered
    added: set[int] = set()
    touched: set[int] = set()
    removed: set[int] = set()
    for frame in decision.frames:
        update = update_of(frame)
        added.update(d.id for d in update.added)
        touched.update(update.values.ids, update.values.delta_ids)
        touched.update(h.id for h in update.values.histograms)
        removed.update(update.removed)
    now = state._now
    merged = metrics_pb2.Update(
        source=state.source, epoch=now.epoch, seq=now.seq, time_unix_ms=now.time_unix_ms
    )
    merged.added.extend(now.series[i] for i in sorted(added) if i in now.series)
    numbers = sorted(i for i in touched | added if i in now.numbers)
    merged.values.ids.extend(numbers)
    merged.values.numbers.extend(now.numbers[i] for i in numbers)
    for series_id in sorted(i for i in touched | added if i in now.histograms):
        merged.values.histograms.add(id=series_id, histogram=now.histograms[series_id])
    merged.removed.extend(sorted(i for i in removed if i not in now.series))
    message = bridge_pb2.ServerMessage(channel=state.name, update=merged, first_seq=after + 1)
    return message.SerializeToString()


_churn = st.tuples(
    st.dictionaries(st.integers(1, 12), st.integers(0, 9).map(float), max_size=4),
    st.dictionaries(st.integers(1, 12), st.integers(-5, 5), max_size=3),
    st.lists(st.integers(1, 12), max_size=2),
    st.lists(st.integers(1, 12), max_size=2),
    st.lists(st.integers(1, 12), max_size=2),
    st.integers(0, 9),
)


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 30), st.lists(_churn, min_size=1, max_size=60), st.booleans())
def test_a_merged_update_is_byte_for_byte_what_folding_the_held_updates_again_makes(
    window: int,
    updates: list[tuple[dict[int, float], dict[int, int], list[int], list[int], list[int], int]],
    small: bool,
) -> None:
    """Values, deltas, histograms, series declared, removed and declared again,
    updates of the same series in a row (`ValuesRun`), snapshots in place
    (which keep the ring) and of a new epoch (which clear it); `small`: the
    noted changes are bounded after every update, so dropping what no merge
    needs is checked too."""
    state = channel(window)
    epoch = 7
    previous: tuple[list[int], list[int]] = ([], [])
    with patch("bridge.channel.CHANGES_CHECK_EVERY", 1 if small else 64):
        for seq, (values, deltas, histograms, added, removed, kind) in enumerate(updates, start=1):
            if kind == 0:  # the latest state again, at the same position
                event = collector_pb2.CollectorEvent(
                    snapshot=state._now.snapshot(state.source, state.kind)
                ).SerializeToString()
                state.apply_snapshot(bridge_pb2.ServerMessage.FromString(event).snapshot, event)
            elif kind == 1:
                epoch += 1  # its seqs start over, below those noted before
                event = snapshot_event(state.source, epoch, seq // 2, values)
                state.apply_snapshot(bridge_pb2.ServerMessage.FromString(event).snapshot, event)
            elif kind >= 5:  # the series of the previous update again (a run)
                values = dict.fromkeys(previous[0], float(seq))
                deltas = dict.fromkeys(previous[1], seq)
            previous = (list(values), list(deltas))
            update = metrics_pb2.Update(
                source=state.source, epoch=epoch, seq=state.seq + 1, removed=removed
            )
            for series_id in added:
                update.added.add(
                    id=series_id, name=f"m{series_id}", kind=metrics_pb2.METRIC_KIND_GAUGE
                )
            update.values.ids.extend(values)
            update.values.numbers.extend(values.values())
            update.values.delta_ids.extend(deltas)
            update.values.deltas.extend(deltas.values())
            for series_id in histograms:
                item = update.values.histograms.add(id=series_id)
                item.histogram.count = seq
            event = collector_pb2.CollectorEvent(update=update).SerializeToString()
            if small:
                state._changes_limit = 0  # everything before the ring's start is dropped
            state.apply_update(bridge_pb2.ServerMessage.FromString(event).update, event)
            start = state.history_start.seq
            for after in range(start, state.seq - 1):
                frame = state.merged_frame(Position(epoch, after))
                assert frame is not None
                assert frame.payload == merged_by_reparsing(state, after), (seq, after)
