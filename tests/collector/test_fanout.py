"""SubscriberQueue: bounded, lagging subscribers get one Resync per source;
updates left waiting past the staleness bound give way to a snapshot;
removed sources leave one Removed marker."""

from __future__ import annotations

from collector.fanout import Event, Removed, Resync, SubscriberQueue
from metrics_bridge.v1 import metrics_pb2

STALE = metrics_pb2.RESYNC_REASON_STALE
OVERFLOW = metrics_pb2.RESYNC_REASON_OVERFLOW


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def drain(queue: SubscriberQueue) -> list[Event | Resync | Removed]:
    items = []
    while (item := queue.pop()) is not None:
        items.append(item)
    return items


def test_updates_come_out_in_order_as_the_same_bytes() -> None:
    queue = SubscriberQueue(4)
    data = [b"u1", b"u2"]
    for d in data:
        queue.offer("a", d)
    out = drain(queue)
    assert [i.data for i in out if isinstance(i, Event)] == data
    assert all(a.data is b for a, b in zip(out, data, strict=True) if isinstance(a, Event))


def test_overflow_replaces_queued_updates_with_one_resync_per_source() -> None:
    queue = SubscriberQueue(3)
    for i in range(3):
        queue.offer("a" if i % 2 else "b", b"%d" % i)
    queue.offer("c", b"overflow")
    assert drain(queue) == [Resync("b", OVERFLOW), Resync("a", OVERFLOW), Resync("c", OVERFLOW)]
    assert queue.overflows == 1 and queue.dropped == 4


def test_updates_of_a_source_awaiting_its_snapshot_are_dropped() -> None:
    queue = SubscriberQueue(2)
    queue.resync("a")
    queue.offer("a", b"folded into the snapshot")
    queue.offer("b", b"b1")
    assert drain(queue) == [Resync("a"), Event("b", b"b1")]
    queue.offer("a", b"after the snapshot")
    assert drain(queue) == [Event("a", b"after the snapshot")]


def test_the_queue_never_holds_more_than_capacity_plus_sources() -> None:
    queue = SubscriberQueue(5)
    for i in range(1000):
        queue.offer(f"s{i % 7}", b"x")
        assert len(queue) <= 5 + 7


def test_resync_drops_that_sources_queued_updates_only() -> None:
    queue = SubscriberQueue(4)
    queue.offer("a", b"a1")
    queue.offer("b", b"b1")
    queue.resync("a")
    assert drain(queue) == [Event("b", b"b1"), Resync("a")]


def test_close_drops_everything_and_ends_the_queue() -> None:
    woken = []
    queue = SubscriberQueue(4, on_ready=lambda: woken.append(1))
    queue.offer("a", b"a1")
    queue.close()
    queue.offer("a", b"a2")
    assert queue.closed and queue.pop() is None and woken == [1, 1]


def test_on_ready_is_called_when_an_empty_queue_gets_an_update_or_a_marker_is_queued() -> None:
    woken: list[int] = []
    queue = SubscriberQueue(2, on_ready=lambda: woken.append(len(queue)))
    queue.offer("a", b"a1")
    queue.offer("a", b"a2")
    assert woken == [1]
    queue.pop()
    queue.pop()
    queue.offer("a", b"a3")
    assert woken == [1, 1]
    queue.offer("a", b"a4")
    queue.offer("a", b"overflow")
    queue.resync("b")
    assert woken == [1, 1, 1, 2]


def test_a_named_subscription_wants_only_its_sources() -> None:
    assert SubscriberQueue(1, frozenset({"a"})).wants("a")
    assert not SubscriberQueue(1, frozenset({"a"})).wants("b")
    assert SubscriberQueue(1).wants("anything")


def test_removal_drops_the_sources_queued_items_for_one_removed_marker() -> None:
    queue = SubscriberQueue(4)
    queue.offer("a", b"a1")
    queue.offer("b", b"b1")
    queue.resync("c")
    queue.offer("a", b"a2")
    queue.remove("a", b"gone")
    queue.remove("c", b"c gone")
    assert drain(queue) == [Event("b", b"b1"), Removed("a", b"gone"), Removed("c", b"c gone")]
    assert queue.dropped == 2


def test_a_source_removed_again_before_the_first_removal_is_read_queues_nothing_more() -> None:
    queue = SubscriberQueue(4)
    queue.remove("a", b"epoch 1 gone")
    queue.resync("a")
    queue.remove("a", b"epoch 2 gone")
    assert drain(queue) == [Removed("a", b"epoch 1 gone")]
    queue.resync("a")
    assert drain(queue) == [Resync("a")]
    queue.remove("a", b"epoch 3 gone")
    assert drain(queue) == [Removed("a", b"epoch 3 gone")]


def test_overflow_keeps_removed_markers() -> None:
    queue = SubscriberQueue(2)
    queue.offer("a", b"a1")
    queue.remove("a", b"gone")
    for i in range(3):
        queue.offer("b", b"%d" % i)
    assert drain(queue) == [Removed("a", b"gone"), Resync("b", OVERFLOW)]


def test_more_undelivered_removals_than_capacity_ends_the_queue_as_lost() -> None:
    queue = SubscriberQueue(2)
    queue.remove("a", b"a gone")
    queue.remove("b", b"b gone")
    assert not queue.closed
    queue.remove("c", b"c gone")
    assert queue.closed and queue.lost and "subscribe again" in queue.lost
    assert queue.pop() is None


def stale_queue(capacity: int = 100, bound: float = 1.0) -> tuple[SubscriberQueue, FakeClock]:
    clock = FakeClock()
    return SubscriberQueue(capacity, max_staleness=bound, clock=clock), clock


def test_a_resync_for_a_subscribe_or_a_new_source_has_no_reason() -> None:
    queue = SubscriberQueue(4)
    queue.resync("a")
    [resync] = drain(queue)
    assert isinstance(resync, Resync) and resync.reason == metrics_pb2.RESYNC_REASON_UNSPECIFIED


def test_an_update_waiting_past_the_bound_gives_way_to_one_stale_resync_of_its_source() -> None:
    queue, clock = stale_queue()
    queue.offer("a", b"a1")
    queue.offer("b", b"b1")
    queue.offer("a", b"a2")
    queue.offer("c", b"c1")
    queue.offer("a", b"a3")
    clock.now += 1.5
    queue.offer("d", b"d1")
    assert drain(queue) == [
        Resync("a", STALE),
        Event("b", b"b1"),
        Event("c", b"c1"),
        Event("d", b"d1"),
    ]
    assert (queue.stale_resyncs, queue.stale_drops, queue.dropped) == (1, 3, 3)


def test_a_resync_keeps_the_place_of_the_stale_update_among_other_sources() -> None:
    queue, clock = stale_queue()
    queue.offer("b", b"b1")
    queue.offer("a", b"a1")
    queue.offer("c", b"c1")
    queue.offer("a", b"a2")
    clock.now += 2
    assert drain(queue) == [Event("b", b"b1"), Resync("a", STALE), Event("c", b"c1")]


def test_an_old_update_that_is_the_last_of_its_source_is_delivered_as_it_is() -> None:
    queue, clock = stale_queue()
    queue.offer("a", b"a1")
    queue.offer("b", b"b1")
    queue.offer("b", b"b2")
    clock.now += 5
    assert queue.pop() == Event("a", b"a1")
    # b1 is as old, but b2 waits behind it: b gets a snapshot.
    assert drain(queue) == [Resync("b", STALE)]
    assert queue.stale_drops == 2


def test_updates_within_the_bound_are_untouched() -> None:
    queue, clock = stale_queue()
    for i in range(5):
        queue.offer("a", b"%d" % i)
        clock.now += 0.1
    assert drain(queue) == [Event("a", b"%d" % i) for i in range(5)]
    assert queue.stale_resyncs == queue.dropped == 0


def test_exactly_the_bound_is_not_past_it() -> None:
    queue, clock = stale_queue()
    queue.offer("a", b"a1")
    queue.offer("a", b"a2")
    clock.now += 1.0
    assert drain(queue) == [Event("a", b"a1"), Event("a", b"a2")]


def test_a_bound_of_zero_is_off() -> None:
    queue, clock = stale_queue(bound=0)
    queue.offer("a", b"a1")
    queue.offer("a", b"a2")
    clock.now += 3600
    assert drain(queue) == [Event("a", b"a1"), Event("a", b"a2")]


def test_an_event_shared_by_subscribers_is_judged_by_when_it_was_published() -> None:
    queue, clock = stale_queue()
    old = Event("a", b"a1", queued_at=clock.now - 2)
    queue.offer_event(old)
    queue.offer_event(Event("a", b"a2", queued_at=clock.now))
    assert drain(queue) == [Resync("a", STALE)]


def test_a_replayed_update_waits_from_when_it_is_queued() -> None:
    queue, clock = stale_queue()
    clock.now = 1000.0
    queue.offer("a", b"replayed 1")
    queue.offer("a", b"replayed 2")
    assert drain(queue) == [Event("a", b"replayed 1"), Event("a", b"replayed 2")]


def test_updates_after_a_stale_resync_flow_again_and_are_judged_afresh() -> None:
    queue, clock = stale_queue()
    queue.offer("a", b"a1")
    queue.offer("a", b"a2")
    clock.now += 2
    assert queue.pop() == Resync("a", STALE)
    queue.offer("a", b"a3")
    queue.offer("a", b"a4")
    assert drain(queue) == [Event("a", b"a3"), Event("a", b"a4")]
    assert len(queue) == 0 and queue.stale_resyncs == 1


def test_stale_resyncs_until_the_queue_is_found_empty_are_one_burst() -> None:
    queue, clock = stale_queue()
    for name in "abc":
        queue.offer(name, b"1")
        queue.offer(name, b"2")
    clock.now += 2
    queue.pop()
    queue.pop()
    assert (queue.stale_resyncs, queue.stale_bursts) == (2, 1)
    drain(queue)
    queue.offer("a", b"3")
    queue.offer("a", b"4")
    clock.now += 2
    drain(queue)
    assert (queue.stale_resyncs, queue.stale_bursts) == (4, 2)


def test_the_count_bound_stays_with_the_staleness_bound_on() -> None:
    queue, clock = stale_queue(capacity=2)
    for i in range(3):
        queue.offer("a", b"%d" % i)
    clock.now += 2
    assert drain(queue) == [Resync("a", OVERFLOW)]


def test_staleness_is_judged_against_the_updates_queued_when_popped() -> None:
    queue, clock = stale_queue()
    queue.offer("a", b"a1")
    queue.offer("b", b"b1")
    assert queue.pop() == Event("a", b"a1")
    queue.offer("a", b"a2")
    clock.now += 2
    assert queue.pop() == Event("b", b"b1")  # as old, but the last of b
    queue.offer("a", b"a3")
    queue.offer("b", b"b2")
    assert drain(queue) == [Resync("a", STALE), Event("b", b"b2")]
    queue.offer("a", b"a4")
    clock.now += 2
    assert drain(queue) == [Event("a", b"a4")]
    assert (queue.stale_resyncs, queue.stale_drops) == (1, 2)


def test_removal_after_updates_and_a_resync_of_the_same_source_clears_both() -> None:
    queue, clock = stale_queue()
    queue.offer("a", b"a1")
    queue.offer("b", b"b1")
    queue.offer("a", b"a2")
    queue.remove("a", b"a gone")
    queue.resync("b")
    queue.remove("b", b"b gone")
    queue.offer("a", b"a new epoch")
    clock.now += 2
    assert drain(queue) == [
        Removed("a", b"a gone"),
        Removed("b", b"b gone"),
        Event("a", b"a new epoch"),
    ]
    assert queue.dropped == 3 and len(queue) == 0


def test_markers_queued_and_taken_leave_room_for_exactly_capacity_updates() -> None:
    queue = SubscriberQueue(2)
    queue.resync("a")
    queue.remove("c", b"c gone")
    queue.resync("d")
    queue.remove("d", b"d gone")  # its Resync gives way to the Removed marker
    queue.offer("b", b"b1")
    queue.offer("b", b"b2")
    assert queue.overflows == 0
    assert [queue.pop(), queue.pop(), queue.pop()] == [
        Resync("a"),
        Removed("c", b"c gone"),
        Removed("d", b"d gone"),
    ]
    queue.offer("b", b"b3")
    assert queue.overflows == 1
    assert drain(queue) == [Resync("b", OVERFLOW)]
    queue.offer("b", b"b4")
    queue.offer("b", b"b5")
    assert queue.overflows == 1
    queue.offer("b", b"b6")
    assert queue.overflows == 2
