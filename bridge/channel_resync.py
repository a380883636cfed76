"""Fetches the snapshots the hub asks for after bad data from a collector.

The hub (bridge/registry.py decides) queues a `Resync` when a collector's
stream sends an update that does not continue its channel, an update of
another epoch mid-stream, or bytes that do not parse. This task answers it:

Rules:
- For each named source: GetSnapshot, applied as if the stream had sent that
  Snapshot (the channel's subscribers get it, then the held updates that
  continue it). NOT_FOUND: the source is gone, its channel is removed.
- No source named (an event that did not parse): ListSources first; channels
  whose source is no longer listed are removed, and every listed source is
  fetched, since any of them may have lost an event.
- Any other failure drops the channel's held updates: its next update finds
  the gap again and asks anew, and a stream restart resumes it anyway.
- Requests run one at a time on a thread (grpc's blocking API, as the stream
  does), over one extra gRPC channel per collector address, opened on first use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

import grpc

from bridge.config import CollectorTarget
from bridge.hub import Hub
from bridge.registry import Resync
from bridge.upstream import LIST_TIMEOUT, channel_options
from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc, metrics_pb2

__all__ = ["ChannelResyncs"]

log = logging.getLogger(__name__)


class Followed(Protocol):
    """What this needs of an `Upstream`."""

    @property
    def name(self) -> str: ...
    @property
    def target(self) -> CollectorTarget: ...


class ChannelResyncs:
    """Answers the hub's `resyncs_wanted`, one GetSnapshot at a time."""

    def __init__(
        self, hub: Hub, upstreams: Callable[[], Iterable[Followed]], clock: Callable[[], float]
    ) -> None:
        self.hub = hub
        self.upstreams = upstreams
        self.clock = clock
        self._wake = asyncio.Event()
        self._channels: dict[str, grpc.Channel] = {}
        hub.on_resync_wanted = self._wake.set

    async def run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self.hub.resyncs_wanted:
                    await self._answer(self.hub.resyncs_wanted.popleft())
        finally:
            for channel in self._channels.values():
                channel.close()

    def _stub(self, collector: str) -> collector_pb2_grpc.MetricsCollectorStub | None:
        for upstream in self.upstreams():
            if upstream.name == collector:
                target = upstream.target
                address = str(target.address)
                channel = self._channels.get(address)
                if channel is None:
                    options = channel_options(target.keepalive)
                    channel = self._channels[address] = (
                        grpc.secure_channel(address, target.tls.credentials(), options=options)
                        if target.tls.enabled
                        else grpc.insecure_channel(address, options=options)
                    )
                return collector_pb2_grpc.MetricsCollectorStub(channel)
        return None

    async def _answer(self, resync: Resync) -> None:
        collector = resync.collector
        stub = self._stub(collector)
        sources = resync.sources
        try:
            if stub is None:
                raise LookupError(f"no upstream named {collector}")
            if sources is None:
                listing = await asyncio.to_thread(
                    stub.ListSources, collector_pb2.ListSourcesRequest(), timeout=LIST_TIMEOUT
                )
                listed = {source.name for source in listing.sources}
                self.hub.retain_sources(collector, listed, self.clock())
                sources = tuple(sorted(listed))
        except (grpc.RpcError, LookupError) as exc:
            log.warning("resync of collector %s failed: %s", collector, exc)
            for name in self.hub.registry.positions(collector):
                self.hub.registry.abandon_resync(f"{collector}/{name}")
            return
        for source in sources:
            await self._fetch(stub, collector, source)

    async def _fetch(
        self, stub: collector_pb2_grpc.MetricsCollectorStub, collector: str, source: str
    ) -> None:
        name = f"{collector}/{source}"
        request = collector_pb2.GetSnapshotRequest(source=source)
        try:
            snapshot: metrics_pb2.Snapshot = await asyncio.to_thread(
                stub.GetSnapshot, request, timeout=LIST_TIMEOUT
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                log.info("resync of %s: the collector no longer has it; removing it", name)
                self.hub.registry.abandon_resync(name)
                self.hub.remove_channel(name, self.clock())
                return
            log.warning("resync of %s failed: %s %s", name, exc.code(), exc.details())
            self.hub.registry.abandon_resync(name)
            return
        event = collector_pb2.CollectorEvent(snapshot=snapshot).SerializeToString()
        self.hub.apply_event(collector, event, self.clock())
        log.info("resynced %s at (%d, %d)", name, snapshot.epoch, snapshot.seq)
