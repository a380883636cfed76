"""The collector over TLS and mTLS (trustme certificates made here), and the
startup rules: a collector exposed beyond loopback without protection, or
given bad TLS files, refuses to start and says why."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc
from tests.collector.conftest import FAST, recording
from tests.support.certs import Certificates
from tests.support.processes import REPO, ServerProcess, running
from tests.support.timing import scaled

TOKEN = "payments-secret-0123456789"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def mtls_collector(
    certs: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    tokens.write_text(f"{TOKEN} payments\n")
    args = [*FAST, "--otlp-listen", "127.0.0.1:0", *certs.server_args(client_ca=True)]
    with running("collector", [*args, "--push-tokens", str(tokens)]) as server:
        yield server


async def list_sources(address: str, credentials: grpc.ChannelCredentials | None) -> str:
    channel = (
        grpc.aio.secure_channel(address, credentials)
        if credentials is not None
        else grpc.aio.insecure_channel(address)
    )
    async with channel:
        stub = collector_pb2_grpc.MetricsCollectorStub(channel)
        listing = await stub.ListSources(collector_pb2.ListSourcesRequest(), timeout=scaled(10))
        return str(listing.collector)


async def test_a_tls_collector_serves_clients_that_trust_its_ca(certs: Certificates) -> None:
    with running("collector", [*FAST, *certs.server_args()]) as server:
        address = server.addresses["grpc"]
        assert await list_sources(address, certs.credentials()) == "testhost"
        with pytest.raises(grpc.aio.AioRpcError) as plaintext:
            await list_sources(address, None)
        assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "(TLS)" in server.log()


async def test_mtls_refuses_a_client_without_a_certificate_and_serves_one_with(
    certs: Certificates, mtls_collector: ServerProcess
) -> None:
    address = mtls_collector.addresses["grpc"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await list_sources(address, certs.credentials())
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    stranger = Certificates(certs.directory / "stranger")
    with pytest.raises(grpc.aio.AioRpcError):
        await list_sources(address, certs.credentials(stranger.issue("stranger")))
    assert await list_sources(address, certs.credentials(certs.issue("reader"))) == "testhost"


async def test_the_otel_exporter_pushes_over_mtls_on_the_otlp_listener(
    certs: Certificates, mtls_collector: ServerProcess
) -> None:
    exporter = OTLPMetricExporter(
        endpoint=mtls_collector.addresses["otlp"],
        credentials=certs.credentials(certs.issue("payments")),
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "payments"}), metric_readers=[reader]
    )
    credentials = certs.credentials(certs.issue("subscriber"))
    async with (
        grpc.aio.secure_channel(mtls_collector.addresses["grpc"], credentials) as ch,
        recording(ch, ["payments"]) as rec,
    ):
        try:
            provider.get_meter("tests").create_gauge("queue.depth").set(7)
            assert await asyncio.to_thread(provider.force_flush)
        finally:
            await asyncio.to_thread(provider.shutdown)
        await rec.wait_for(lambda: "payments" in rec.replicas, 10, "the exported source")
        assert list(rec.replicas["payments"].values.values()) == [7.0]


def start_and_fail(*args: str) -> subprocess.CompletedProcess[str]:
    """Runs a collector expected to refuse to start; its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=False,
    )


def test_an_exposed_collector_without_protection_refuses_to_start_saying_what_is_missing(
    certs: Certificates,
) -> None:
    bare = start_and_fail("--listen", "0.0.0.0:0")
    assert bare.returncode == 1
    assert "cannot start: listening on 0.0.0.0:0 (not loopback) without TLS" in bare.stderr
    assert "--client-ca" in bare.stderr and "--allow-insecure" in bare.stderr
    tls_only = start_and_fail("--listen", "0.0.0.0:0", *certs.server_args())
    assert tls_only.returncode == 1
    assert "without client certificates (--client-ca)" in tls_only.stderr
    assert "without TLS" not in tls_only.stderr


def test_bad_tls_settings_are_refused_naming_the_flag(certs: Certificates) -> None:
    mismatched = start_and_fail(
        *FAST, "--tls-cert", certs.server.cert, "--tls-key", certs.issue("other").key
    )
    assert mismatched.returncode == 1
    assert "--tls-cert" in mismatched.stderr and "not a PEM certificate chain" in mismatched.stderr
    missing = start_and_fail(*FAST, *certs.server_args(), "--client-ca", "/nonexistent/ca.pem")
    assert missing.returncode == 1
    assert "--client-ca /nonexistent/ca.pem: No such file" in missing.stderr
    half = start_and_fail(*FAST, "--tls-cert", certs.server.cert)
    assert half.returncode == 2
    assert "--tls-cert and --tls-key go together" in half.stderr


def test_a_bad_tokens_file_is_refused_naming_the_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("# ok\nshort a\n")
    bad = start_and_fail(*FAST, "--push-tokens", str(tokens))
    assert bad.returncode == 1
    assert f"--push-tokens {tokens}: line 2: a token needs at least 16" in bad.stderr
