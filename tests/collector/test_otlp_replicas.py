"""Three replicas of one service, each a real OpenTelemetry Python SDK
MeterProvider with its own service.instance.id, exporting over OTLP/gRPC: each
replica's series reach a subscriber under its own `instance`, no counter ever
goes backwards, and a replica that stops has its series removed after
--source-ttl while the others go on (an Update, not a SourceRemoved)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Counter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.collector.conftest import Recorder, recording
from tests.collector.replicas_check import counters_never_go_back, instances
from tests.support.processes import running

TTL = 2.0
ARGS = ["--listen", "127.0.0.1:0", "--interval", "0.2", "--host-source", "testhost"]
ARGS += ["--source-ttl", str(TTL)]
PODS = ("pod-a", "pod-b", "pod-c")


def replica(endpoint: str, pod: str) -> MeterProvider:
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=200
    )
    resource = Resource.create({"service.name": "checkout", "service.instance.id": pod})
    return MeterProvider(resource=resource, metric_readers=[reader])


@contextlib.asynccontextmanager
async def counting(counters: dict[str, tuple[Counter, int]]) -> AsyncIterator[None]:
    """Adds each replica's step to its counter every 0.1 s."""

    async def run() -> None:
        while True:
            for counter, step in list(counters.values()):
                counter.add(step)
            await asyncio.sleep(0.1)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_python_sdk_replicas_keep_their_own_series_and_a_stopped_one_expires() -> None:
    with running("collector", ARGS) as server:
        address = server.addresses["grpc"]
        providers = {pod: replica(address, pod) for pod in PODS}
        counters: dict[str, tuple[Counter, int]] = {}
        try:
            for k, (pod, provider) in enumerate(providers.items()):
                meter = provider.get_meter("shop")
                meter.create_gauge("inflight_requests").set(111 * (k + 1))
                counters[pod] = (meter.create_counter("requests_total"), 10 ** (k + 1))
            async with (
                grpc.aio.insecure_channel(address) as ch,
                recording(ch, ["checkout"]) as rec,
                counting(counters),
            ):
                await everyone_reports(rec)
                counters.pop("pod-c")
                await asyncio.to_thread(providers.pop("pod-c").shutdown)
                await rec.wait_for(
                    lambda: (
                        set(instances(rec.replicas["checkout"], "requests_total"))
                        == {"pod-a", "pod-b"}
                    ),
                    TTL + 15,
                    "pod-c's series to expire",
                )
                live = instances(rec.replicas["checkout"], "inflight_requests")
                assert live == {"pod-a": 111, "pod-b": 222}
                before = instances(rec.replicas["checkout"], "requests_total")
                await rec.wait_for(
                    lambda: all(
                        value > before[pod]  # type: ignore[operator]
                        for pod, value in instances(
                            rec.replicas["checkout"], "requests_total"
                        ).items()
                    ),
                    10,
                    "pod-a and pod-b to go on counting",
                )
                assert rec.of("checkout", "source_removed") == []
                assert counters_never_go_back(rec.events, "checkout") > 10
        finally:
            for provider in providers.values():
                await asyncio.to_thread(provider.shutdown)


async def everyone_reports(rec: Recorder) -> None:
    def reported() -> bool:
        source = rec.replicas.get("checkout")
        if source is None:
            return False
        gauges = instances(source, "inflight_requests")
        return gauges == {"pod-a": 111, "pod-b": 222, "pod-c": 333} and set(
            instances(source, "requests_total")
        ) == set(PODS)

    await rec.wait_for(reported, 15, "every replica's gauge and counter")
