"""The real OpenTelemetry SDK and its OTLP/gRPC exporter push to the collector
unchanged; a subscriber sees gauges, counters and histograms."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from collector.series import HistogramData
from tests.collector.conftest import recording
from tests.support.processes import ServerProcess, running

SCOPE = {"otel_scope_name": "tests", "instance": "i-1"}
"""The labels every series of `meter_provider` gets: its scope and instance."""


@contextmanager
def meter_provider(
    endpoint: str, service: str, delta: bool = False
) -> Iterator[tuple[MeterProvider, Meter]]:
    exporter = OTLPMetricExporter(
        endpoint=endpoint,
        insecure=True,
        preferred_temporality={Counter: AggregationTemporality.DELTA} if delta else None,
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": service, "service.instance.id": "i-1"}),
        metric_readers=[reader],
    )
    try:
        yield provider, provider.get_meter("tests")
    finally:
        provider.shutdown()


async def test_sdk_gauge_counter_and_histogram_reach_a_subscriber(
    shared_collector: ServerProcess,
) -> None:
    address = shared_collector.addresses["grpc"]
    async with (
        grpc.aio.insecure_channel(address) as ch,
        recording(ch, ["payments"]) as rec,
    ):
        with meter_provider(address, "payments") as (provider, meter):
            meter.create_gauge("queue.depth", unit="1").set(4, {"queue": "high"})
            meter.create_counter("http.requests", unit="{request}").add(3, {"route": "/pay"})
            latency = meter.create_histogram("http.server.duration", unit="ms")
            for value in (3, 30, 300):
                latency.record(value)
            assert await asyncio.to_thread(provider.force_flush)
        await rec.wait_for(lambda: "payments" in rec.replicas, 10, "the payments source")
        replica = rec.replicas["payments"]
        scope = SCOPE
        assert replica.get("queue_depth", queue="high", **scope) == 4
        assert replica.get("http_requests", route="/pay", **scope) == 3
        histogram = replica.get("http_server_duration", **scope)
        assert isinstance(histogram, HistogramData)
        assert histogram.count == 3 and histogram.sum == 333
        assert histogram.min == 3 and histogram.max == 300
        kinds = {d.name: d.kind for d in replica.descriptors.values()}
        assert kinds == {"queue_depth": 1, "http_requests": 2, "http_server_duration": 3}


async def test_delta_counters_accumulate_on_the_otlp_port() -> None:
    args = ["--listen", "127.0.0.1:0", "--otlp-listen", "127.0.0.1:0", "--interval", "5"]
    with running("collector", args) as server:
        assert set(server.addresses) == {"grpc", "otlp"}
        async with (
            grpc.aio.insecure_channel(server.addresses["grpc"]) as ch,
            recording(ch, ["jobs"]) as rec,
        ):
            with meter_provider(server.addresses["otlp"], "jobs", delta=True) as (provider, meter):
                done = meter.create_counter("jobs.done")
                done.add(2)
                assert await asyncio.to_thread(provider.force_flush)
                await rec.wait_for(lambda: "jobs" in rec.replicas, 10, "the jobs source")
                done.add(5)
                assert await asyncio.to_thread(provider.force_flush)
                await rec.wait_for(
                    lambda: rec.replicas["jobs"].get("jobs_done", **SCOPE) == 7,
                    10,
                    "the running total 7",
                )
