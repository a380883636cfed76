"""Glue for a `dns:///HOST:PORT` collector target: resolve, then start and stop upstreams.

The decisions are `DnsCollectors`' (bridge/discovery.py); this task only looks
the name up every `interval` seconds, starts an `Upstream` for each address
that appears, and for each address dropped cancels its upstream, removes its
channels (clients get Status REMOVED) and releases its name.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace

from bridge.config import CollectorTarget
from bridge.discovery import DnsCollectors
from bridge.hub import Hub
from bridge.upstream import Upstream
from bridge.upstream_rules import CollectorNames
from metrics_shared.address import Address

__all__ = ["DnsUpstreams", "Resolver", "resolve_addresses"]

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve_addresses(host: str, port: int) -> list[str]:
    """Every IP address `host` resolves to (the system resolver: /etc/hosts, DNS)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class DnsUpstreams:
    """The upstreams of one `dns:///` target, kept in `upstreams` (shared with the server)."""

    def __init__(
        self,
        target: CollectorTarget,
        hub: Hub,
        names: CollectorNames,
        clock: Callable[[], float],
        upstreams: list[Upstream],
        interval: float,
        resolve: Resolver = resolve_addresses,
    ) -> None:
        self.target = target
        self.hub = hub
        self.names = names
        self.clock = clock
        self.upstreams = upstreams
        self.interval = interval
        self.resolve = resolve
        self.rules = DnsCollectors(target.address)
        self._running: dict[Address, tuple[Upstream, asyncio.Task[None]]] = {}

    async def run(self) -> None:
        try:
            while True:
                await self.refresh()
                await asyncio.sleep(self.interval)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop every upstream of this target and remove their channels."""
        for address in list(self._running):
            await self._stop(address)

    async def refresh(self) -> None:
        """One lookup, and the upstreams it starts or stops."""
        host, port = self.target.address.host, self.target.address.port
        try:
            hosts = await self.resolve(host, port)
        except OSError as exc:
            log.warning(
                "dns:///%s: lookup failed (%s); keeping %d collectors",
                host,
                exc,
                len(self._running),
            )
            return
        if not hosts:
            log.warning("dns:///%s: empty answer; keeping %d collectors", host, len(self._running))
        changes = self.rules.answer(hosts)
        for address in changes.added:
            upstream = Upstream(
                replace(self.target, address=address, resolve=False),
                self.hub,
                self.names,
                self.clock,
            )
            self.upstreams.append(upstream)
            task = asyncio.get_running_loop().create_task(upstream.run())
            self._running[address] = (upstream, task)
            log.info("dns:///%s: following the collector at %s", self.target.address, address)
        for address in changes.removed:
            log.info(
                "dns:///%s: %s is gone from the answers; dropping it", self.target.address, address
            )
            await self._stop(address)

    async def _stop(self, address: Address) -> None:
        upstream, task = self._running.pop(address)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self.upstreams.remove(upstream)
        if upstream.name:
            self.hub.retain_sources(upstream.name, set(), self.clock())
            self.names.release(upstream.name)
