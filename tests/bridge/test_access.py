"""Access control on a real bridge process: Origin, tokens and claims, over real TLS (wss://).

One collector and one bridge (`--auth jwt --tls-cert ...`, certificates made
by trustme) serve every test here; each test opens its own connections, so the
later ones also show that nothing was lost: after every refusal the bridge
keeps serving its other clients.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
import trustme
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bridge.errors import CloseCode
from metrics_bridge.v1 import bridge_pb2
from tests.bridge.stack import Client, Pusher, RawClient, bridge, collector
from tests.support.processes import REPO, ServerProcess
from tests.support.secure_bridge import SecureBridgeFiles
from tests.support.timing import async_wait_until, scaled
from tests.support.tokens import token

CHANNEL = "c1/svc"
HOST = "c1/host"


class Stack(SecureBridgeFiles):
    @property
    def args(self) -> list[str]:
        return [*super().args, "--token-timeout", "3"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, ServerProcess]]:
    files = Stack(tmp_path_factory.mktemp("access"))
    with collector() as col:
        pusher = Pusher(col.addresses["grpc"])
        pusher.push(0.0)
        with bridge(col.addresses["grpc"], *files.args) as br:
            yield files, br
        pusher.close()


@pytest.fixture
def url(stack: tuple[Stack, ServerProcess]) -> str:
    return stack[1].addresses["url"]


@pytest.fixture
def tls(stack: tuple[Stack, ServerProcess]) -> ssl.SSLContext:
    return stack[0].client_ssl()


async def open_with(url: str, tls: ssl.SSLContext, text: str | None) -> Client:
    client = await Client.open(url, ssl=tls)
    if text is not None:
        await client.send(bridge_pb2.ClientMessage(connect=bridge_pb2.Connect(token=text)))
    return client


async def greeted(url: str, tls: ssl.SSLContext, **claims: object) -> Client:
    client = await open_with(url, tls, token(**claims))  # type: ignore[arg-type]
    catalog = await client.greeted()
    if CHANNEL not in [c.channel for c in catalog.channels] and claims.get("channels") is None:
        await client.wait_for_channel(CHANNEL)
    return client


async def closed_with(client: Client, within: float = 15) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosed):
        while True:
            await client.recv(within)
    return client.ws.close_code, client.ws.close_reason


async def test_the_ready_file_names_a_wss_url(url: str) -> None:
    assert url.startswith("wss://127.0.0.1:")


async def test_a_foreign_origin_is_refused_with_403_before_the_upgrade(
    url: str, tls: ssl.SSLContext
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await Client.open(url, ssl=tls, origin="https://evil.example")
    assert refused.value.response.status_code == 403
    host = url.removeprefix("wss://").rstrip("/")
    own = await open_with(url, tls, token())
    await own.close()
    same_origin = await Client.open(url, ssl=tls, origin=f"https://{host}")
    await same_origin.close()


async def test_a_valid_token_gets_hello_then_catalog_and_data(
    url: str, tls: ssl.SSLContext
) -> None:
    client = await greeted(url, tls)
    await client.subscribe(CHANNEL)
    assert (await client.next("snapshot")).channel == CHANNEL
    await client.close()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (None, CloseCode.TOKEN_REQUIRED),
        (token(b"another-secret-of-at-least-32-bytes"), CloseCode.TOKEN_INVALID),
        (token(ttl=-60), CloseCode.TOKEN_EXPIRED),
        (token(aud="another-service"), CloseCode.TOKEN_INVALID),
    ],
    ids=["no-token", "bad-signature", "expired", "wrong-aud"],
)
async def test_refused_tokens_close_with_their_codes_and_nothing_else_is_sent(
    url: str, tls: ssl.SSLContext, text: str | None, code: int
) -> None:
    client = await open_with(url, tls, text)
    if text is None:
        await client.subscribe(CHANNEL)  # anything but Connect first
    messages: list[bridge_pb2.ServerMessage] = []
    with pytest.raises(ConnectionClosed):
        while True:
            messages.append(await client.recv())
    assert messages == []
    assert client.ws.close_code == code, client.ws.close_reason


async def test_silence_after_the_upgrade_closes_with_4500_after_the_token_timeout(
    url: str, tls: ssl.SSLContext
) -> None:
    client = await open_with(url, tls, None)
    code, reason = await closed_with(client)
    assert code == CloseCode.TOKEN_REQUIRED and "Connect" in (reason or "")


async def test_claims_filter_the_catalog_and_a_subscribe_outside_them_looks_unknown(
    url: str, tls: ssl.SSLContext
) -> None:
    client = await open_with(url, tls, token(channels=["*/host"]))
    catalog = await client.greeted()
    assert [c.channel for c in catalog.channels] == [HOST]
    await client.subscribe(CHANNEL)
    outside = await client.next("error")
    await client.subscribe("c1/no-such-source")
    unknown = await client.next("error")
    assert outside.channel == CHANNEL
    assert (outside.error.code, outside.error.message) == (
        unknown.error.code,
        unknown.error.message,
    )
    assert outside.error.code == bridge_pb2.ERROR_CODE_UNKNOWN_CHANNEL
    await client.subscribe(HOST)
    assert (await client.next("snapshot")).channel == HOST
    await client.close()


async def test_refresh_keeps_the_connection_and_expiry_without_it_closes_with_4001(
    url: str, tls: ssl.SSLContext
) -> None:
    # The bridge allows 5 s of clock skew past exp.
    refreshed = await greeted(url, tls, ttl=1)
    lapsing = await greeted(url, tls, ttl=1)
    for client in (refreshed, lapsing):
        await client.subscribe(CHANNEL)
        await client.next("snapshot")
    await refreshed.send(bridge_pb2.ClientMessage(refresh=bridge_pb2.Refresh(token=token())))
    code, reason = await closed_with(lapsing, within=20)
    assert code == CloseCode.TOKEN_EXPIRED and "expired" in (reason or "")
    # The refreshed connection outlived the first token and still gets its channel.
    await asyncio.sleep(0)
    assert (await refreshed.next("heartbeat")).heartbeat.positions[0].channel == CHANNEL
    await refreshed.close()


async def test_https_serves_health_and_counts_refusals_by_reason(
    url: str, tls: ssl.SSLContext
) -> None:
    base = "https://" + url.removeprefix("wss://").rstrip("/")

    def get(path: str) -> str:
        with urllib.request.urlopen(base + path, context=tls, timeout=scaled(10)) as reply:
            body: bytes = reply.read()
            return body.decode()

    # Earlier tests refused an origin and several tokens; the order of tests may vary,
    # so make one of each here.
    with pytest.raises(InvalidStatus):
        await Client.open(url, ssl=tls, origin="https://evil.example")
    bad = await open_with(url, tls, "not-a-jwt")
    await closed_with(bad)
    assert await asyncio.to_thread(get, "/healthz")
    metrics = await asyncio.to_thread(get, "/metrics")
    assert 'metrics_bridge_refusals_total{reason="origin"}' in metrics
    assert 'metrics_bridge_refusals_total{reason="malformed"}' in metrics


async def test_sighup_reloads_the_certificate_without_dropping_connections(
    stack: tuple[Stack, ServerProcess], url: str, tls: ssl.SSLContext
) -> None:
    files, process = stack
    before = await greeted(url, tls)
    await before.subscribe(CHANNEL)
    await before.next("snapshot")
    new_ca = trustme.CA()
    files.issue(new_ca)
    process.signal(signal.SIGHUP)

    async def new_certificate_served() -> bool:
        try:
            client = await open_with(url, files.client_ssl(new_ca), token())
        except (OSError, ssl.SSLError):
            return False
        await client.close()
        return True

    await async_wait_until(new_certificate_served, 15, "the reloaded certificate")
    assert (await before.next("heartbeat")).heartbeat.positions[0].channel == CHANNEL
    await before.close()
    files.issue(files.ca)
    process.signal(signal.SIGHUP)

    async def old_certificate_served() -> bool:
        try:
            client = await open_with(url, tls, token())
        except (OSError, ssl.SSLError):
            return False
        await client.close()
        return True

    await async_wait_until(old_certificate_served, 15, "the first certificate again")


def test_a_bridge_on_a_public_address_without_auth_refuses_to_start() -> None:
    command = [sys.executable, "-m", "bridge", "--listen", "0.0.0.0:0"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--allow-anonymous" in result.stderr and "--auth jwt" in result.stderr


def test_a_client_written_from_the_docs_connects_with_a_token(
    stack: tuple[Stack, ServerProcess],
) -> None:
    """RawClient speaks only the WebSocket RFC and proto/ (no bridge code): over plain
    ws:// on loopback, Connect{token} first, then Hello, Catalog and a subscription."""
    files = stack[0]
    with collector() as col, bridge(col.addresses["grpc"], *files.token_args) as plain:
        raw = RawClient(plain.addresses["url"])
        try:
            raw.send(bridge_pb2.ClientMessage(connect=bridge_pb2.Connect(token=token())))
            greeting = raw.read_for(scaled(1.5))
            assert [m.WhichOneof("body") for m in greeting[:2]] == ["hello", "catalog"]
            raw.subscribe(HOST)
            bodies = [m.WhichOneof("body") for m in raw.read_for(scaled(1.5))]
            assert "subscribed" in bodies and "snapshot" in bodies
        finally:
            raw.close()
