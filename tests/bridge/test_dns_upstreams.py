"""A dns:/// collector target with real collectors: addresses that come and go in the answers."""

from __future__ import annotations

import asyncio
import socket

from bridge.config import BridgeConfig, CollectorTarget
from bridge.dns_upstreams import DnsUpstreams, resolve_addresses
from bridge.hub import Hub
from bridge.upstream import Upstream
from bridge.upstream_rules import CollectorNames
from metrics_shared.address import Address
from tests.support.processes import running
from tests.support.timing import async_wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_hub() -> Hub:
    config = BridgeConfig()
    return Hub(
        limits=config.limits(),
        timers=config.timers(),
        policy=config.client_policy(),
        max_connections=10,
        server_version="test",
    )


async def test_the_system_resolver_answers_ip_addresses() -> None:
    assert "127.0.0.1" in await resolve_addresses("127.0.0.1", 50051)


async def test_every_address_in_the_answer_is_followed_and_a_dropped_one_removed() -> None:
    port = free_port()
    answer = ["127.0.0.1", "127.0.0.2"]

    async def resolve(host: str, _port: int) -> list[str]:
        assert host == "collectors.test"
        return list(answer)

    with (
        running("collector", ["--listen", f"127.0.0.1:{port}", "--host-source", "one"]),
        running("collector", ["--listen", f"127.0.0.2:{port}", "--host-source", "two"]),
    ):
        hub = new_hub()
        names = CollectorNames()
        upstreams: list[Upstream] = []
        loop = asyncio.get_running_loop()
        target = CollectorTarget(Address("collectors.test", port), resolve=True)
        dns = DnsUpstreams(target, hub, names, loop.time, upstreams, interval=3600, resolve=resolve)
        try:
            await dns.refresh()
            await async_wait_until(
                lambda: {"one/one", "two/two"} <= set(hub.channels), 20, "both collectors' channels"
            )
            assert all(u.live for u in upstreams)

            answer.remove("127.0.0.2")
            await dns.refresh()
            assert "two/two" in hub.channels, "one answer without it removes nothing"
            await dns.refresh()
            assert "two/two" not in hub.channels
            assert "one/one" in hub.channels
            assert [str(u.address) for u in upstreams] == [f"127.0.0.1:{port}"]
            assert "two" not in names

            answer.append("127.0.0.2")
            await dns.refresh()
            await async_wait_until(lambda: "two/two" in hub.channels, 20, "two/two back")
        finally:
            await dns.close()


async def test_a_failed_lookup_keeps_what_is_followed() -> None:
    calls = 0

    async def resolve(_host: str, _port: int) -> list[str]:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise socket.gaierror("Temporary failure in name resolution")
        return ["127.0.0.1"]

    loop = asyncio.get_running_loop()
    upstreams: list[Upstream] = []
    target = CollectorTarget(Address("collectors.test", free_port()), resolve=True)
    dns = DnsUpstreams(
        target, new_hub(), CollectorNames(), loop.time, upstreams, interval=3600, resolve=resolve
    )
    await dns.refresh()
    for _ in range(3):
        await dns.refresh()
    assert len(upstreams) == 1
    await dns.close()
    assert upstreams == []
