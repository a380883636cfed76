"""`python -m bench.tiers`: what history and rate tiers cost the bridge.

Real collector events first: a collector samples its host every 20 ms and a
service pushes 40 gauges (about half changing each time); their Subscribe
stream is recorded. Then, in this process, without sockets:

- memory per channel (`tracemalloc`) holding 0, 256 and 900 updates, and 900
  once every frame has a compressed copy (as after a deflate client got it);
- the hub's CPU per delivery over 60 s of simulated time of the host channel at
  10 updates/s: 1,000 clients at full rate against 1,000 split over the 1, 5
  and 10 s tiers (sinks that only count; socket writes are not included).

Prints two Markdown tables (docs/protocol.md quotes them).
"""

from __future__ import annotations

import gc
import random
import threading
import time
import tracemalloc
from dataclasses import replace

import grpc

from bench.processes import Server
from bridge.channel import ChannelState
from bridge.config import BridgeConfig
from bridge.frame import Frame, deflated_wire
from bridge.history import HistoryBudget, HistoryLimits
from bridge.hub import Hub
from metrics_bridge.v1 import bridge_pb2, collector_pb2, collector_pb2_grpc, metrics_pb2

__all__ = ["main", "record_events"]

EVENTS = 1001


def _samples(rng: random.Random) -> list[collector_pb2.Sample]:
    return [
        collector_pb2.Sample(
            name=f"m{j}",
            labels=[metrics_pb2.Label(name="route", value=f"/r{j}")],
            kind=metrics_pb2.METRIC_KIND_GAUGE,
            number=rng.random() * 100,
        )
        for j in range(40)
        if j < 5 or rng.random() < 0.5
    ]


def record_events() -> dict[str, list[bytes]]:
    """EVENTS raw CollectorEvents of a host source and of a pushed one."""
    collector = Server.module(
        "collector", ["--listen", "127.0.0.1:0", "--interval", "0.02", "--host-source", "host"]
    )
    try:
        address = collector.addresses["grpc"]
        with grpc.insecure_channel(address) as channel:
            stub = collector_pb2_grpc.MetricsCollectorStub(channel)
            rng = random.Random(14)
            stub.Push(iter([collector_pb2.PushRequest(source="svc", samples=_samples(rng))]))
            done = threading.Event()

            def pushing() -> None:
                while not done.is_set():
                    request = collector_pb2.PushRequest(source="svc", samples=_samples(rng))
                    stub.Push(iter([request]), timeout=10)

            thread = threading.Thread(target=pushing, daemon=True)
            thread.start()
            events: dict[str, list[bytes]] = {"host": [], "svc": []}
            call = stub.Subscribe(collector_pb2.SubscribeRequest(sources=["host", "svc"]))
            for event in call:
                source = event.snapshot.source or event.update.source
                events[source].append(event.SerializeToString())
                if min(len(v) for v in events.values()) >= EVENTS:
                    break
            call.cancel()
            done.set()
            thread.join(timeout=10)
            return {name: items[:EVENTS] for name, items in events.items()}
    finally:
        collector.stop()


def channel_memory(events: list[bytes], window: int, deflate: bool = False) -> int:
    """Python heap bytes of one channel after every event, holding `window` updates."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    first = collector_pb2.CollectorEvent.FromString(events[0])
    limits = HistoryLimits(window, 1 << 40, HistoryBudget(1 << 40))
    channel = ChannelState("c1", first.snapshot, events[0], limits)
    for raw in events[1:]:
        frame = channel.apply_update(collector_pb2.CollectorEvent.FromString(raw).update, raw)
        if deflate and frame is not None:
            deflated_wire(frame, 15)
    channel.snapshot_frame()
    if window:
        channel.resume(None, history=True)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del channel
    return used


class CountingSink:
    """A client connection that takes every frame (deflated, as browsers negotiate)."""

    __slots__ = ("bytes", "frames")

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0

    def buffered(self) -> int:
        return 0

    def write(self, frame: Frame) -> int:
        wire = deflated_wire(frame, 15)
        self.frames += 1
        self.bytes += len(wire)
        return len(wire)

    def ping(self, payload: bytes) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        pass


def hub_cost(events: list[bytes], intervals: list[int], seconds: float = 60.0) -> tuple[float, int]:
    """(hub CPU seconds, frames delivered) for clients at these min intervals."""
    config = BridgeConfig()
    hub = Hub(
        limits=replace(config.limits(), max_subscriptions=10),
        timers=replace(config.timers(), heartbeat_interval=15.0, ping_interval=1e9),
        policy=config.client_policy(),
        max_connections=len(intervals) + 1,
        server_version="bench",
        history=config.history_limits(),
    )
    hub.apply_event("c1", events[0], 0.0)
    sinks = []
    for interval in intervals:
        sink = CountingSink()
        client = hub.connect(sink, 0.0)
        request = bridge_pb2.ChannelRequest(channel="c1/host", min_interval_ms=interval)
        message = bridge_pb2.ClientMessage(subscribe=bridge_pb2.Subscribe(channels=[request]))
        hub.receive(client, message.SerializeToString(), 0.0)
        sinks.append(sink)
    before = sum(s.frames for s in sinks)
    now, tick = 0.0, 0.25
    started = time.process_time()
    for k in range(1, min(len(events), int(seconds * 10) + 1)):
        now = k / 10
        hub.apply_event("c1", events[k], now)
        while tick <= now:
            hub.tick(tick)
            tick += 0.25
    return time.process_time() - started, sum(s.frames for s in sinks) - before


def main() -> int:
    events = record_events()
    print("| held per channel | host | pushed service |")
    print("|------------------|-----:|---------------:|")
    for label, window, deflate in [
        ("no updates", 0, False),
        ("256 updates", 256, False),
        ("900 updates", 900, False),
        ("900 updates with compressed copies", 900, True),
    ]:
        host = channel_memory(events["host"], window, deflate) / 1024
        svc = channel_memory(events["svc"], window, deflate) / 1024
        print(f"| {label} | {host:.0f} KiB | {svc:.0f} KiB |")
    print()
    print("| clients | deliveries | hub CPU | per delivery | share of a core |")
    print("|---------|-----------:|--------:|-------------:|----------------:|")
    for label, intervals in [
        ("1,000 at full rate", [0] * 1000),
        ("1,000 over the 1, 5 and 10 s tiers", ([1000, 5000, 10000] * 334)[:1000]),
    ]:
        cpu, frames = hub_cost(events["host"], intervals)
        print(
            f"| {label} | {frames:,} | {cpu:.2f} s | {cpu / frames * 1e6:.1f} µs |"
            f" {cpu / 60 * 100:.1f} % |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
