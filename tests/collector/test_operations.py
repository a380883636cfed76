"""Health, reflection, slow subscribers and shutdown of a real collector process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc, metrics_pb2
from tests.collector.conftest import Recorder, recording
from tests.support.processes import ServerProcess, running
from tests.support.timing import scaled

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_health_is_serving_then_not_serving_on_shutdown(collector: ServerProcess) -> None:
    async with grpc.aio.insecure_channel(collector.addresses["grpc"]) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for service in ("", "metrics_bridge.v1.MetricsCollector"):
            response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == SERVING
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == SERVING
        collector.signal(signal.SIGTERM)
        update = await asyncio.wait_for(watch.read(), scaled(10))
        assert update.status == NOT_SERVING
        watch.cancel()
    assert collector.wait(10) == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stop_signal_ends_subscribe_streams_with_ok_and_exits_zero(
    collector: ServerProcess, stop: signal.Signals
) -> None:
    async with grpc.aio.insecure_channel(collector.addresses["grpc"]) as ch:
        stub = collector_pb2_grpc.MetricsCollectorStub(ch)
        call = stub.Subscribe(collector_pb2.SubscribeRequest())
        assert (await call.read()).WhichOneof("event") == "snapshot"
        started = time.monotonic()
        collector.signal(stop)
        while await asyncio.wait_for(call.read(), scaled(10)) is not grpc.aio.EOF:
            pass
        assert await call.code() == grpc.StatusCode.OK
    assert collector.wait(10) == 0
    assert time.monotonic() - started < scaled(5)
    assert "Traceback" not in collector.log() and "KeyboardInterrupt" not in collector.log()
    assert "stopped" in collector.log()


async def test_reflection_lists_the_services(shared_collector: ServerProcess) -> None:
    async with grpc.aio.insecure_channel(shared_collector.addresses["grpc"]) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        response = await call.read()
        names = {s.name for s in response.list_services_response.service}
    assert {
        "metrics_bridge.v1.MetricsCollector",
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
        "grpc.health.v1.Health",
    } <= names


def big_batch(i: int, series: int = 100) -> collector_pb2.PushRequest:
    """Every batch re-declares its series (new description), ~100 KB per update."""
    text = f"batch {i} " + "x" * 1000
    return collector_pb2.PushRequest(
        source="firehose",
        samples=[
            collector_pb2.Sample(
                name="load",
                kind=metrics_pb2.METRIC_KIND_GAUGE,
                description=text,
                number=i,
                labels=[metrics_pb2.Label(name="n", value=str(n))],
            )
            for n in range(series)
        ],
    )


async def test_slow_subscriber_is_resynced_with_a_snapshot_and_memory_stays_bounded() -> None:
    args = ["--listen", "127.0.0.1:0", "--interval", "5", "--subscriber-queue", "4"]
    args += ["--resume-window", "4"]
    batches = 500
    with running("collector", args) as server:
        process = psutil.Process(server.proc.pid if server.proc else 0)
        async with (
            grpc.aio.insecure_channel(server.addresses["grpc"]) as pusher,
            grpc.aio.insecure_channel(server.addresses["grpc"]) as reader,
        ):
            stub = collector_pb2_grpc.MetricsCollectorStub(pusher)

            async def requests(start: int, stop: int) -> AsyncIterator[collector_pb2.PushRequest]:
                for i in range(start, stop):
                    yield big_batch(i)

            await stub.Push(requests(0, 1))
            call = collector_pb2_grpc.MetricsCollectorStub(reader).Subscribe(
                collector_pb2.SubscribeRequest(sources=["firehose"])
            )
            assert (await call.read()).WhichOneof("event") == "snapshot"  # then stop reading
            await stub.Push(requests(1, 20))
            baseline = process.memory_info().rss
            await stub.Push(requests(20, batches))
            grown = process.memory_info().rss - baseline
            print(f"collector RSS grew by {grown / 1e6:.1f} MB over {batches - 20} pushed updates")
            assert grown < 20 * 1024 * 1024, f"collector grew by {grown} bytes"
            # Now read again: the stream resyncs with a snapshot, and ends current.
            recorder = Recorder(call)
            task = asyncio.create_task(recorder.run())
            await recorder.wait_for(
                lambda: (
                    "firehose" in recorder.replicas and recorder.replicas["firehose"].seq == batches
                ),
                20,
                "the subscriber to catch up",
            )
            snapshots = [e.snapshot.seq for e in recorder.of("firehose", "snapshot")]
            assert snapshots and all(0 < seq <= batches for seq in snapshots)
            reasons = {e.resync for e in recorder.of("firehose", "snapshot")}
            assert reasons <= {metrics_pb2.RESYNC_REASON_OVERFLOW, metrics_pb2.RESYNC_REASON_STALE}
            assert metrics_pb2.RESYNC_REASON_OVERFLOW in reasons
            assert len(recorder.of("firehose", "update")) < batches - 1
            assert recorder.replicas["firehose"].get("load", n="7") == batches - 1
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert "fell behind" in server.log()


async def test_otlp_rejections_are_reported_in_partial_success(
    shared_collector: ServerProcess,
) -> None:
    from opentelemetry.proto.collector.metrics.v1 import (
        metrics_service_pb2,
        metrics_service_pb2_grpc,
    )
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as otlp

    request = metrics_service_pb2.ExportMetricsServiceRequest(
        resource_metrics=[
            otlp.ResourceMetrics(
                scope_metrics=[
                    otlp.ScopeMetrics(
                        metrics=[
                            otlp.Metric(
                                name="s",
                                sum=otlp.Sum(data_points=[otlp.NumberDataPoint(as_int=1)]),
                            ),
                            otlp.Metric(
                                name="g",
                                gauge=otlp.Gauge(data_points=[otlp.NumberDataPoint(as_int=4)]),
                            ),
                        ]
                    )
                ]
            )
        ]
    )
    async with grpc.aio.insecure_channel(shared_collector.addresses["grpc"]) as ch:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(ch)  # type: ignore[no-untyped-call]
        response = await stub.Export(request)
        assert response.partial_success.rejected_data_points == 1
        assert "unspecified aggregation temporality" in response.partial_success.error_message
        snapshot = await collector_pb2_grpc.MetricsCollectorStub(ch).GetSnapshot(
            collector_pb2.GetSnapshotRequest(source="unknown_service")
        )
        assert [s.name for s in snapshot.series] == ["g"]


async def test_subscribing_to_a_source_before_it_exists_waits_for_it(
    channel: grpc.aio.Channel,
) -> None:
    async with recording(channel, ["latecomer"]) as rec:
        await asyncio.sleep(0)
        assert rec.events == []
        stub = collector_pb2_grpc.MetricsCollectorStub(channel)

        async def one() -> AsyncIterator[collector_pb2.PushRequest]:
            yield collector_pb2.PushRequest(
                source="latecomer",
                samples=[
                    collector_pb2.Sample(name="a", kind=metrics_pb2.METRIC_KIND_GAUGE, number=1)
                ],
            )

        await stub.Push(one())
        await rec.wait_for(lambda: "latecomer" in rec.replicas, 10, "the new source")
    assert rec.events[0].WhichOneof("event") == "snapshot"


def test_a_taken_port_is_a_clear_error_and_exit_code_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "collector", "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=scaled(30),
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
