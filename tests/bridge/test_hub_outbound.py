"""Hub: the per-client staleness bound (budget from the drain rate, resyncs marked with why),
with sinks that drain a set number of bytes per tick and a fake clock."""

from __future__ import annotations

from bridge.hub import ClientPolicy, Hub
from metrics_bridge.v1 import bridge_pb2, metrics_pb2
from tests.bridge.test_hub import BufferSink, bodies, connected, make_hub, subscribe
from tests.bridge.test_hub import push_updates as push

STALE = metrics_pb2.RESYNC_REASON_STALE
OVERFLOW = metrics_pb2.RESYNC_REASON_OVERFLOW
TICK = 0.25


class DrainingSink(BufferSink):
    """A connection that counts every byte queued, and drains only as many as the test says."""

    def __init__(self) -> None:
        super().__init__()
        self.queued_total = 0
        self.credit = 0
        self.messages: list[bridge_pb2.ServerMessage] = []

    def write(self, frame: object) -> int:
        size = super().write(frame)  # type: ignore[arg-type]
        self.queued_total += size
        return size

    def drain_bytes(self, count: int) -> None:
        """Let the peer read `count` more bytes: whole frames, the rest of the count carries
        over to the next call while a frame waits (an idle reader banks nothing)."""
        self.credit += count
        taken = 0
        while taken < len(self.pending) and len(self.pending[taken]) <= self.credit:
            self.credit -= len(self.pending[taken])
            taken += 1
        if taken == len(self.pending):
            self.credit = 0
        kept = self.pending[taken:]
        self.pending = self.pending[:taken]
        self.messages += self.drain()
        self.pending = kept


def timed_hub(max_staleness: float = 1.0) -> Hub:
    policy = ClientPolicy(
        buffer_bytes=4000, slow_timeout=30, max_staleness=max_staleness, budget_floor=400
    )
    return make_hub(policy=policy)


def overload(
    hub: Hub, slow: DrainingSink, fast: DrainingSink, ticks: int, start: int = 1
) -> list[int]:
    """Ten updates (440 bytes) per tick; the slow client reads 200 bytes (800 B/s), the fast
    one everything. Returns the slow client's buffered bytes after each tick."""
    held = []
    for tick in range(start, start + ticks):
        now = tick * TICK
        seq = 10 * (tick - 1) + 1
        push(hub, range(seq, seq + 10), now=now)
        slow.drain_bytes(200)
        fast.drain_bytes(10**9)
        hub.tick(now)
        held.append(slow.buffered())
    return held


def two_clients(hub: Hub) -> tuple[object, DrainingSink, object, DrainingSink]:
    slow, fast = DrainingSink(), DrainingSink()
    slow_client, fast_client = hub.connect(slow, 0), hub.connect(fast, 0)
    for client in (slow_client, fast_client):
        subscribe(hub, client)
    slow.drain_bytes(10**9)
    fast.drain_bytes(10**9)
    return slow_client, slow, fast_client, fast


def test_a_slow_clients_budget_shrinks_to_its_drain_rate_times_the_bound() -> None:
    hub = timed_hub()
    slow_client, slow, _, fast = two_clients(hub)
    held = overload(hub, slow, fast, ticks=12)
    outbound = slow_client.outbound  # type: ignore[attr-defined]
    assert 700 < outbound.rate < 900  # 800 B/s, read in whole 44-byte frames
    assert outbound.budget == int(outbound.rate)
    assert max(held[4:]) <= outbound.budget
    assert hub.counters.drops == {("client", "stale"): hub.counters.updates_skipped}
    assert hub.counters.updates_skipped > 0


def test_a_slow_client_is_resynced_with_a_stale_marked_snapshot_once_drained() -> None:
    hub = timed_hub()
    slow_client, slow, _, fast = two_clients(hub)
    overload(hub, slow, fast, ticks=12)
    for tick in range(13, 20):
        slow.drain_bytes(200)
        hub.tick(tick * TICK)
    slow.drain_bytes(10**9)
    resyncs = [m for m in slow.messages[4:] if m.HasField("snapshot")]
    assert resyncs and all(m.resync == STALE for m in resyncs)
    assert resyncs[-1].snapshot.seq == 120
    assert not slow_client.outbound.is_owed("col/svc")  # type: ignore[attr-defined]
    assert hub.counters.stage_resyncs == {("client", "stale"): len(resyncs)}
    assert hub.counters.resyncs == len(resyncs)


def test_a_fast_client_gets_every_update_and_has_no_rate() -> None:
    hub = timed_hub()
    _, slow, fast_client, fast = two_clients(hub)
    overload(hub, slow, fast, ticks=12)
    seqs = [m.update.seq for m in fast.messages if m.HasField("update")]
    assert seqs == list(range(1, 121))
    assert fast_client.outbound.rate is None  # type: ignore[attr-defined]


def test_without_max_staleness_a_slow_client_fills_its_byte_limit() -> None:
    hub = timed_hub(max_staleness=0)
    slow_client, slow, _, fast = two_clients(hub)
    held = overload(hub, slow, fast, ticks=12)
    assert slow_client.outbound.rate is None  # type: ignore[attr-defined]
    assert max(held) > 3000
    assert ("client", "stale") not in hub.counters.drops


def test_over_the_byte_limit_the_resync_is_marked_overflow() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    subscribe(hub, client)
    push(hub, range(1, 200))
    sink.drain()
    hub.tick(0.5)
    (resync,) = sink.drain()
    assert bodies([resync]) == ["snapshot"] and resync.resync == OVERFLOW
    skipped = hub.counters.updates_skipped
    assert hub.counters.drops == {("client", "overflow"): skipped}
    assert hub.counters.stage_resyncs == {("client", "overflow"): 1}


def test_client_queue_ages_estimate_buffered_over_the_drain_rate() -> None:
    hub = timed_hub()
    slow_client, slow, _, fast = two_clients(hub)
    overload(hub, slow, fast, ticks=12)
    rate = slow_client.outbound.rate  # type: ignore[attr-defined]
    ages = hub.client_queue_ages()
    assert ages == {"col/svc": slow.buffered() / rate}
    assert 0 < ages["col/svc"] <= 1


def test_a_client_that_stopped_reading_has_an_infinite_queue_age() -> None:
    hub = timed_hub()
    _, slow, _, fast = two_clients(hub)
    overload(hub, DrainingSink(), fast, ticks=4)
    assert slow.buffered() > 0
    assert hub.client_queue_ages() == {"col/svc": float("inf")}
