"""Push and OTLP Export with bearer tokens (--push-tokens), on a real collector: each
refusal has its gRPC status, a token writes only its own sources, the OTel SDK
exporter sends the token with its `headers` setting, and a refused caller
costs the other pushers and subscribers nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc, metrics_pb2
from tests.collector.conftest import FAST, recording
from tests.support.processes import ServerProcess, running
from tests.support.timing import scaled

CHECKOUT = "checkout-secret-0123456789"
WEB = "web-secret-abcdefghijklmno"
TOKENS = f"""# token  sources
{CHECKOUT} checkout,checkout-*
{WEB} web-*
"""


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tokens = tmp_path_factory.mktemp("tokens") / "push-tokens.txt"
    tokens.write_text(TOKENS)
    with running("collector", [*FAST, "--push-tokens", str(tokens)]) as server:
        yield server


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def gauge(value: float) -> collector_pb2.Sample:
    return collector_pb2.Sample(name="load", kind=metrics_pb2.METRIC_KIND_GAUGE, number=value)


async def push(
    ch: grpc.aio.Channel, source: str, value: float, metadata: tuple[tuple[str, str], ...] = ()
) -> collector_pb2.PushResponse:
    stub = collector_pb2_grpc.MetricsCollectorStub(ch)
    request = collector_pb2.PushRequest(source=source, samples=[gauge(value)])
    response: collector_pb2.PushResponse = await stub.Push(
        iter([request]), metadata=metadata, timeout=scaled(10)
    )
    return response


async def refused(
    ch: grpc.aio.Channel, source: str, metadata: tuple[tuple[str, str], ...]
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await push(ch, source, 1.0, metadata)
    return caught.value


async def test_push_without_a_token_or_with_a_wrong_one_is_unauthenticated(
    collector: ServerProcess,
) -> None:
    async with grpc.aio.insecure_channel(collector.addresses["grpc"]) as ch:
        missing = await refused(ch, "checkout", ())
        assert missing.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "authorization: Bearer" in (missing.details() or "")
        wrong = await refused(ch, "checkout", bearer("checkout-secret-9999999999"))
        assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED
        assert wrong.details() == "unknown push token"
        assert (await push(ch, "checkout", 1.0, bearer(CHECKOUT))).batches == 1


async def test_a_service_cannot_push_another_services_source_or_the_host_source(
    collector: ServerProcess,
) -> None:
    async with grpc.aio.insecure_channel(collector.addresses["grpc"]) as ch:
        await push(ch, "web-1", 1.0, bearer(WEB))
        other = await refused(ch, "web-1", bearer(CHECKOUT))
        assert other.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "may not push source 'web-1'" in (other.details() or "")
        assert CHECKOUT not in (other.details() or "")
        host = await refused(ch, "testhost", bearer(CHECKOUT))
        assert host.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "'testhost' is the collector's host source" in (host.details() or "")
        stub = collector_pb2_grpc.MetricsCollectorStub(ch)
        snapshot = await stub.GetSnapshot(collector_pb2.GetSnapshotRequest(source="web-1"))
        assert list(snapshot.values.numbers) == [1.0]  # web-1 kept its own value
    assert "Push from" in collector.log() and CHECKOUT not in collector.log()


async def test_after_refusals_other_pushers_and_subscribers_carry_on(
    collector: ServerProcess,
) -> None:
    async with (
        grpc.aio.insecure_channel(collector.addresses["grpc"]) as ch,
        recording(ch, ["checkout-eu", "testhost"]) as rec,
    ):
        await push(ch, "checkout-eu", 1.0, bearer(CHECKOUT))
        await rec.wait_for(lambda: "checkout-eu" in rec.replicas, 10, "checkout-eu")
        for metadata in ((), bearer("nope-nope-nope-nope"), bearer(WEB)):
            await refused(ch, "checkout-eu", metadata)
        await push(ch, "checkout-eu", 2.0, bearer(CHECKOUT))
        await rec.wait_for(
            lambda: rec.replicas["checkout-eu"].get("load") == 2.0, 10, "the value pushed after"
        )
        host_updates = len(rec.of("testhost", "update"))
        await rec.wait_for(
            lambda: len(rec.of("testhost", "update")) > host_updates, 10, "host updates"
        )
        assert not rec.ended


class RecordingExporter(OTLPMetricExporter):
    """The SDK's OTLP/gRPC exporter, keeping the result of each export."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[MetricExportResult] = []

    def export(self, *args: Any, **kwargs: Any) -> MetricExportResult:
        result: MetricExportResult = super().export(*args, **kwargs)
        self.results.append(result)
        return result


def export_once(endpoint: str, service: str, headers: dict[str, str]) -> MetricExportResult:
    """One gauge exported by the SDK with these `headers`; the result of the export."""
    exporter = RecordingExporter(endpoint=endpoint, insecure=True, headers=headers)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": service}), metric_readers=[reader]
    )
    try:
        provider.get_meter("tests").create_gauge("queue.depth").set(4)
        provider.force_flush()
    finally:
        provider.shutdown()
    return exporter.results[0]


async def test_the_otel_sdk_exporter_sends_its_token_with_the_headers_setting(
    collector: ServerProcess,
) -> None:
    address = collector.addresses["grpc"]
    right = {"authorization": f"Bearer {CHECKOUT}"}
    wrong = {"authorization": "Bearer not-a-known-token-at-all"}
    async with (
        grpc.aio.insecure_channel(address) as ch,
        recording(ch, ["checkout-otel", "web-otel"]) as rec,
    ):
        failed = MetricExportResult.FAILURE
        assert await asyncio.to_thread(export_once, address, "checkout-otel", wrong) == failed
        assert "OTLP Export from" in collector.log()
        assert "refused: unknown push token" in collector.log()
        assert await asyncio.to_thread(export_once, address, "web-otel", right) == failed
        assert "may not push source 'web-otel'" in collector.log()
        success = MetricExportResult.SUCCESS
        assert await asyncio.to_thread(export_once, address, "checkout-otel", right) == success
        await rec.wait_for(lambda: "checkout-otel" in rec.replicas, 10, "the exported source")
        assert list(rec.replicas["checkout-otel"].values.values()) == [4.0]
        assert "web-otel" not in rec.replicas
