"""Drives the collector through Push with realistic service metrics at a set rate.

The source has `series` series (request counters by route and status, latency
and queue gauges); each batch changes about half of them plus the gauge
`bench_publish_time_ms`, the wall-clock time in ms (float) at which the batch
was handed to gRPC. Load clients subtract it from their receive time: that is
the publish-to-receive latency, through collector and server, on one host clock.
The batch's `time_unix_ms` is the same time, or with `stamp=False` left to the
collector, which then stamps the update with its own clock when it applies it
(so a client can tell the Push hop from the rest).

ServicePusher pushes what one HTTP service exports instead (32 series, every
series in every batch, as a cumulative OTLP or Prometheus push does): request
counters by method, route and status that grow by small integers, latency sums
and CPU seconds that grow by fractions, integer gauges (memory bytes, in-flight
requests, pool and queue sizes) and gauges with decimals (ratios, lag in ms).
Counters start where a service up for a while has them. It carries no
publish-time gauge (it stands for a service, not a stopwatch) and no
histogram (the naive JSON baseline serves numbers only).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import grpc

from bench.load import PUBLISH_SERIES
from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc, metrics_pb2

__all__ = ["Pusher", "ServicePusher"]

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


SERVICE_ROUTES = (
    ("GET", "/api/orders"),
    ("POST", "/api/orders"),
    ("GET", "/api/users/{id}"),
    ("GET", "/api/search"),
    ("POST", "/api/cart"),
    ("GET", "/healthz"),
)


class ServicePusher(Pusher):
    """One HTTP service's metrics, all of them in every batch; seeded, so runs repeat."""

    def __init__(self, address: str, source: str, seed: int = 1, stamp: bool = True) -> None:
        super().__init__(address, source, series=0, seed=seed, stamp=stamp)
        self.series: list[tuple[str, dict[str, str], metrics_pb2.MetricKind.ValueType, str]] = []
        self.values: list[float] = []
        counter, gauge = metrics_pb2.METRIC_KIND_COUNTER, metrics_pb2.METRIC_KIND_GAUGE
        for method, route in SERVICE_ROUTES:
            for status in ("200", "500"):
                labels = {"method": method, "route": route, "status": status}
                served = self.rng.randint(1_000, 500_000) // (1 if status == "200" else 1_000)
                self._add("http_server_requests_total", labels, counter, "1", float(served))
        for method, route in SERVICE_ROUTES:
            labels = {"method": method, "route": route}
            spent = round(self.rng.uniform(50.0, 20_000.0), 6)
            self._add("http_server_request_duration_seconds_sum", labels, counter, "s", spent)
        self._add("http_server_active_requests", {}, gauge, "1", 3.0)
        self._add("process_resident_memory_bytes", {}, gauge, "By", 187_392_000.0)
        self._add("process_cpu_seconds_total", {}, counter, "s", 3_614.27)
        self._add("process_open_fds", {}, gauge, "1", 42.0)
        for state, start in (("idle", 8.0), ("used", 2.0)):
            self._add("db_pool_connections", {"state": state}, gauge, "1", start)
        self._add("db_query_duration_ms", {}, gauge, "ms", 4.2)
        self._add("cache_hit_ratio", {}, gauge, "1", 0.95)
        self._add("event_loop_lag_ms", {}, gauge, "ms", 0.8)
        for queue in ("email", "webhooks"):
            self._add("queue_depth", {"queue": queue}, gauge, "1", 0.0)
        for generation in ("0", "1", "2"):
            collections = float(40_000 // 10 ** int(generation))
            labels = {"generation": generation}
            self._add("runtime_gc_collections_total", labels, counter, "1", collections)

    def _add(
        self,
        name: str,
        labels: dict[str, str],
        kind: metrics_pb2.MetricKind.ValueType,
        unit: str,
        start: float,
    ) -> None:
        self.series.append((name, labels, kind, unit))
        self.values.append(start)

    def _next(self, name: str, labels: dict[str, str], value: float) -> float:
        rng = self.rng
        if name == "http_server_requests_total":
            busy = labels["route"] != "/healthz" or rng.random() < 0.1
            if labels["status"] == "500":
                return value + (1 if rng.random() < 0.05 else 0)
            return value + (rng.randint(0, 6) if busy else 1)
        if name == "http_server_request_duration_seconds_sum":
            return round(value + rng.randint(0, 6) * rng.uniform(0.004, 0.12), 6)
        if name == "process_cpu_seconds_total":
            return round(value + rng.choice((0.01, 0.02, 0.03)), 2)
        if name == "process_resident_memory_bytes":
            return value + 4096 * rng.randint(-8, 10)
        if name == "runtime_gc_collections_total":
            return value + (1 if rng.random() < 0.3 / (1 + 4 * int(labels["generation"])) else 0)
        if name in ("http_server_active_requests", "process_open_fds", "queue_depth"):
            return max(0.0, value + rng.randint(-2, 2))
        if name == "db_pool_connections":
            return float(rng.randint(0, 10))
        if name == "cache_hit_ratio":
            return round(min(1.0, max(0.0, value + rng.uniform(-0.01, 0.01))), 4)
        return round(max(0.0, value + rng.uniform(-0.5, 0.5)), 3)

    def batch(self) -> collector_pb2.PushRequest:
        samples = []
        for i, (name, labels, kind, unit) in enumerate(self.series):
            self.values[i] = self._next(name, labels, self.values[i])
            samples.append(
                collector_pb2.Sample(
                    name=name,
                    labels=[_label(k, v) for k, v in labels.items()],
                    kind=kind,
                    unit=unit,
                    number=self.values[i],
                )
            )
        now_ms = int(time.time() * 1000)
        return collector_pb2.PushRequest(
            source=self.source, samples=samples, time_unix_ms=now_ms if self.stamp else 0
        )
