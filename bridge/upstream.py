"""Follow one collector over gRPC and feed its raw events to the hub.

One task per collector:
1. ListSources: learns the collector's name (unless configured) and which
   sources it still has; channels of sources it lost are removed.
2. Subscribe to every source, resuming each known channel from its last
   (epoch, seq); the stream's messages stay raw bytes (identity deserializer)
   and the hub parses each once. The channels are marked live.
3. When the stream breaks (the gRPC channel reconnects by itself, a stream
   does not), or the hub reports a gap, the channels are marked stale and the
   task retries after `Backoff.delay(attempt)`; attempts reset once a
   ListSources succeeds again.

Default collector name: the name the collector reports (its host source), so
every bridge replica names channels alike; if two collectors report the same
name, the later one is named "<name>@<host:port>" and a warning is logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import grpc

from bridge.backoff import Backoff
from bridge.config import CollectorTarget
from bridge.errors import UpstreamError
from bridge.hub import Hub
from metrics_bridge.v1 import bridge_pb2, collector_pb2, collector_pb2_grpc

log = logging.getLogger(__name__)

SUBSCRIBE_METHOD = "/metrics_bridge.v1.MetricsCollector/Subscribe"
LIST_TIMEOUT = 5.0
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 1000),
    ("grpc.max_reconnect_backoff_ms", 120_000),
]

LIVE = bridge_pb2.UPSTREAM_STATE_LIVE
STALE = bridge_pb2.UPSTREAM_STATE_STALE


class Upstream:
    """The stream from one collector, restarted with backoff and resumed."""

    def __init__(
        self,
        target: CollectorTarget,
        hub: Hub,
        names_in_use: set[str],
        clock: Callable[[], float],
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.target = target
        self.address = str(target.address)
        self.name = target.name
        self.hub = hub
        self.names_in_use = names_in_use
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()
        self.live = False
        if self.name:
            names_in_use.add(self.name)

    async def run(self) -> None:
        async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as channel:
            stub = collector_pb2_grpc.MetricsCollectorStub(channel)
            subscribe = channel.unary_stream(
                SUBSCRIBE_METHOD,
                request_serializer=collector_pb2.SubscribeRequest.SerializeToString,
                response_deserializer=None,
            )
            attempt = 0
            while True:
                try:
                    reason = await self._follow(stub, subscribe)
                    attempt = 0
                except grpc.aio.AioRpcError as exc:
                    reason = f"{exc.code().name}: {exc.details()}"
                    if self.live:
                        attempt = 0
                except UpstreamError as exc:
                    reason = str(exc)
                    attempt = 0
                self._mark_stale(reason)
                delay = self.backoff.delay(attempt, self.rng)
                attempt += 1
                log.warning(
                    "collector %s (%s): %s; retrying in %.1fs",
                    self.name or "?",
                    self.address,
                    reason,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _follow(
        self,
        stub: collector_pb2_grpc.MetricsCollectorStub,
        subscribe: grpc.aio.UnaryStreamMultiCallable,
    ) -> str:
        listing = await stub.ListSources(collector_pb2.ListSourcesRequest(), timeout=LIST_TIMEOUT)
        if not self.name:
            self.name = self._claim_name(listing.collector or self.address)
        now = self.clock()
        self.hub.retain_sources(self.name, {source.name for source in listing.sources}, now)
        request = collector_pb2.SubscribeRequest()
        for source, position in self.hub.positions(self.name).items():
            request.resume[source].CopyFrom(position.to_proto())
        call = subscribe(request)
        try:
            self.live = True
            self.hub.set_collector_state(self.name, LIVE, "", now)
            log.info("following collector %s at %s", self.name, self.address)
            async for data in call:
                self.hub.apply_event(self.name, data, self.clock())
        finally:
            call.cancel()
        return "collector ended the stream"

    def _claim_name(self, reported: str) -> str:
        name = reported.replace("/", "_")
        if name in self.names_in_use:
            unique = f"{name}@{self.address}"
            log.warning(
                "collector %s reports the name %r already in use; naming it %r",
                self.address,
                name,
                unique,
            )
            name = unique
        self.names_in_use.add(name)
        return name

    def _mark_stale(self, reason: str) -> None:
        self.live = False
        if self.name:
            detail = f"collector {self.name} unreachable: {reason}"
            self.hub.set_collector_state(self.name, STALE, detail, self.clock())
