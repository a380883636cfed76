"""Drives the collector through Push with realistic service metrics at a set rate.

The source has `series` series (request counters by route and status, latency
and queue gauges); each batch changes about half of them plus the gauge
`bench_publish_time_ms`, the wall-clock time in ms (float) at which the batch
was handed to gRPC. Load clients subtract it from their receive time: that is
the publish-to-receive latency, through collector and server, on one host clock.
The batch's `time_unix_ms` is the same time, or with `stamp=False` left to the
collector, which then stamps the update with its own clock when it applies it
(so a client can tell the Push hop from the rest).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import grpc

from bench.load import PUBLISH_SERIES
from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc, metrics_pb2

ROUTES = ("/api/orders", "/api/users", "/api/search", "/api/cart", "/healthz")
STATUSES = ("200", "404", "500")


def _label(name: str, value: str) -> metrics_pb2.Label:
    return metrics_pb2.Label(name=name, value=value)


class Pusher:
    def __init__(
        self, address: str, source: str, series: int = 40, seed: int = 1, stamp: bool = True
    ) -> None:
        self.address = address
        self.source = source
        self.stamp = stamp
        self.rng = random.Random(seed)
        self.totals: list[float] = []
        self.samples: list[collector_pb2.Sample] = []
        for i in range(series):
            route, status = ROUTES[i % len(ROUTES)], STATUSES[(i // len(ROUTES)) % 3]
            if i % 4 == 3:
                sample = collector_pb2.Sample(
                    name="queue_depth",
                    labels=[_label("queue", f"q{i}")],
                    kind=metrics_pb2.METRIC_KIND_GAUGE,
                    unit="1",
                )
            else:
                sample = collector_pb2.Sample(
                    name="http_server_requests_total",
                    labels=[
                        _label("route", route),
                        _label("shard", str(i)),
                        _label("status", status),
                    ],
                    kind=metrics_pb2.METRIC_KIND_COUNTER,
                    unit="1",
                )
            self.samples.append(sample)
            self.totals.append(0.0)
        self.sent = 0

    def batch(self) -> collector_pb2.PushRequest:
        chosen = []
        for i, template in enumerate(self.samples):
            if self.rng.random() < 0.5:
                continue
            sample = collector_pb2.Sample()
            sample.CopyFrom(template)
            if template.kind == metrics_pb2.METRIC_KIND_COUNTER:
                self.totals[i] += self.rng.randint(1, 50)
            else:
                self.totals[i] = float(self.rng.randint(0, 500))
            sample.number = self.totals[i]
            chosen.append(sample)
        now = time.time()
        chosen.append(
            collector_pb2.Sample(
                name=PUBLISH_SERIES,
                kind=metrics_pb2.METRIC_KIND_GAUGE,
                unit="ms",
                number=now * 1000,
            )
        )
        return collector_pb2.PushRequest(
            source=self.source, samples=chosen, time_unix_ms=int(now * 1000) if self.stamp else 0
        )

    async def push(self, rate: float, seconds: float) -> float:
        """Push `rate` batches per second for `seconds`; returns the rate achieved."""

        async def requests() -> AsyncIterator[collector_pb2.PushRequest]:
            start = time.monotonic()
            count = 0
            while (now := time.monotonic()) - start < seconds:
                due = start + count / rate
                if due > now:
                    await asyncio.sleep(due - now)
                yield self.batch()
                count += 1

        began = time.monotonic()
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = collector_pb2_grpc.MetricsCollectorStub(channel)
            response = await stub.Push(requests())
        self.sent += response.batches
        return float(response.batches) / max(1e-9, time.monotonic() - began)
