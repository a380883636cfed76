"""SubscriberQueue: bounded, lagging subscribers get one Resync per source."""

from __future__ import annotations

from collector.fanout import Event, Resync, SubscriberQueue


def drain(queue: SubscriberQueue) -> list[Event | Resync]:
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
