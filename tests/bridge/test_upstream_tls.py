"""The bridge following collectors over TLS and mTLS (trustme certificates made
here): live data end to end, and a bridge refused by an mTLS collector says why,
in its log and in its channels' status detail, while the collector keeps
serving the bridges it trusts."""

from __future__ import annotations

import argparse

import grpc
import pytest

from bridge.config import CollectorTarget, parse_collector, parse_config
from bridge.upstream import failure_reason
from metrics_bridge.v1 import bridge_pb2
from metrics_shared.address import Address
from metrics_shared.tls import ClientTls
from tests.bridge.stack import bridge, collector, ready_client
from tests.support.certs import Certificates
from tests.support.processes import running
from tests.support.timing import wait_until

STALE = bridge_pb2.UPSTREAM_STATE_STALE
LIVE = bridge_pb2.UPSTREAM_STATE_LIVE
KEEPALIVE = CollectorTarget(Address("h", 1)).keepalive
# What grpcio 1.85 reports when a connection cannot be made (seen in these tests).
CLOSED = (
    "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:1: Socket closed"
)
UNVERIFIED = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Tls handshake "
    "failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL routines:"
    "OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate"
)
PLAINTEXT = "... Tls handshake failed ... WRONG_VERSION_NUMBER: ... failed to connect ..."


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


def test_a_collector_may_carry_its_own_tls_files_after_its_address() -> None:
    target = parse_collector("c2=10.0.0.2:50051;ca=/etc/c2/ca.pem;cert=/etc/b.pem;key=/etc/b.key")
    assert target.name == "c2" and target.address == Address("10.0.0.2", 50051)
    assert target.tls == ClientTls("/etc/c2/ca.pem", "/etc/b.pem", "/etc/b.key")
    assert parse_collector("127.0.0.1:50051").tls == ClientTls()
    for bad in ("h:1;ca", "h:1;pem=/x", "h:1;ca=/a;ca=/b", "h:1;ca="):
        with pytest.raises(argparse.ArgumentTypeError, match="expected ';ca=PATH'"):
            parse_collector(bad)


def test_a_collectors_own_files_lie_over_the_bridge_wide_ones(certs: Certificates) -> None:
    client = certs.issue("bridge-wide")
    config = parse_config(
        [
            "--collector",
            f"c1=127.0.0.1:1;ca={certs.ca}",
            "--collector",
            "c2=127.0.0.1:2",
            "--collector-cert",
            client.cert,
            "--collector-key",
            client.key,
        ]
    )
    assert [c.tls for c in config.collectors] == [
        ClientTls(certs.ca, client.cert, client.key),
        ClientTls(None, client.cert, client.key),
    ]
    assert not parse_config([]).collectors[0].tls.enabled


def test_missing_or_half_tls_files_are_usage_errors(
    certs: Certificates, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_config(["--collector-ca", "/nonexistent/ca.pem"])
    assert (
        "collector 127.0.0.1:50051: --collector-ca /nonexistent/ca.pem" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        parse_config(["--collector-cert", certs.server.cert])
    assert "needs both cert and key" in capsys.readouterr().err


def test_failed_handshakes_are_said_in_words() -> None:
    unavailable = grpc.StatusCode.UNAVAILABLE
    no_cert = failure_reason(unavailable, CLOSED, KEEPALIVE, ClientTls("ca.pem"))
    assert "requires a client certificate (mTLS) and this bridge presents none" in no_cert
    with_cert = failure_reason(unavailable, CLOSED, KEEPALIVE, ClientTls("ca.pem", "c", "k"))
    assert "does not trust this bridge's client certificate" in with_cert
    unverified = failure_reason(unavailable, UNVERIFIED, KEEPALIVE, ClientTls("ca.pem"))
    assert "certificate that --collector-ca does not verify" in unverified
    assert "does not speak TLS" in failure_reason(
        unavailable, PLAINTEXT, KEEPALIVE, ClientTls("ca.pem")
    )
    plaintext = failure_reason(unavailable, CLOSED, KEEPALIVE)
    assert plaintext.startswith("unreachable:") and "give --collector-ca" in plaintext
    assert failure_reason(unavailable, "Socket closed", KEEPALIVE, ClientTls("ca.pem")).startswith(
        "unreachable:"
    )  # a stream that broke after connecting is no handshake failure


async def test_a_bridge_follows_a_tls_collector_end_to_end(certs: Certificates) -> None:
    with (
        collector(*certs.server_args()) as col,
        bridge(col.addresses["grpc"], "--collector-ca", certs.ca) as br,
    ):
        client = await ready_client(br.addresses["url"], "c1/host")
        await client.subscribe("c1/host")
        snapshot = (await client.next("snapshot")).snapshot
        update = (await client.next("update")).update
        assert update.epoch == snapshot.epoch and update.seq > snapshot.seq
        await client.close()


async def test_mtls_refuses_a_bridge_without_a_client_certificate_saying_why(
    certs: Certificates,
) -> None:
    trusted = certs.issue("trusted-bridge")
    with collector(*certs.server_args()) as tls_only:
        address = tls_only.addresses["grpc"]
        with bridge(address, "--collector-ca", certs.ca) as no_cert:
            client = await ready_client(no_cert.addresses["url"], "c1/host")
            await client.subscribe("c1/host")
            await client.next("snapshot")
            tls_only.kill()
            assert (await client.next("status")).status.state == STALE
            with running(
                "collector",
                [
                    *("--listen", address, "--interval", "0.1", "--host-source", "host"),
                    *certs.server_args(client_ca=True),
                ],
            ):
                why = "requires a client certificate (mTLS) and this bridge presents none"
                while True:  # "unreachable" while the collector restarts, then the refusal
                    status = await client.next("status", within=30)
                    assert status.status.state == STALE
                    if why in status.status.detail:
                        break
                assert status.status.detail.startswith(f"collector c1 at {address} refused")
                wait_until(lambda: why in no_cert.log(), 10, "the bridge to log the refusal")
                own = f"{address};cert={trusted.cert};key={trusted.key}"
                with bridge(own, "--collector-ca", certs.ca) as with_cert:
                    other = await ready_client(with_cert.addresses["url"], "c1/host")
                    await other.subscribe("c1/host")
                    snapshot = (await other.next("snapshot")).snapshot
                    update = (await other.next("update")).update
                    assert update.epoch == snapshot.epoch
                    await other.close()
                # the refused bridge still serves its own client
                await client.send(bridge_pb2.ClientMessage(ping=bridge_pb2.Ping(nonce=5)))
                assert (await client.next("pong")).pong.nonce == 5
            await client.close()
