"""SubscriberQueue: bounded, lagging subscribers get one Resync per source;
removed sources leave one Removed marker."""

from __future__ import annotations

from collector.fanout import Event, Removed, Resync, SubscriberQueue


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
    assert drain(queue) == [Resync("b"), Resync("a"), Resync("c")]
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
    assert drain(queue) == [Removed("a", b"gone"), Resync("b")]


def test_more_undelivered_removals_than_capacity_ends_the_queue_as_lost() -> None:
    queue = SubscriberQueue(2)
    queue.remove("a", b"a gone")
    queue.remove("b", b"b gone")
    assert not queue.closed
    queue.remove("c", b"c gone")
    assert queue.closed and queue.lost and "subscribe again" in queue.lost
    assert queue.pop() is None
