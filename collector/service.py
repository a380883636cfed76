"""gRPC glue for MetricsCollector: thin handlers around `CollectorHub`.

Subscribe is registered by hand with an identity response serializer: each
update is encoded once by its source and the same bytes are written to every
subscriber, so gRPC never re-serializes per subscriber. A subscriber that
asks for batches (SubscribeRequest.max_batch_events) gets every event waiting
in its queue framed as one CollectorEvent{batch} (collector/event_batch.py):
one gRPC message, one event-loop round, for many events. A source removed for
idling (--source-ttl) reaches its subscribers as CollectorEvent{source_removed}.
A subscriber that asks for it (SubscribeRequest.replay_updates) starts a source
it has no served position for at an older snapshot, followed by the updates
since (collector/hub.py, "Replay on subscribe").
A snapshot sent in place of queued updates says why in CollectorEvent.resync:
OVERFLOW (the queue's count, --subscriber-queue) or STALE (an update waited
over --max-staleness while a newer one of its source was queued).
The stream ends with OK when the collector shuts down, and with
RESOURCE_EXHAUSTED for a subscriber so far behind that it missed more source
removals than its queue holds (it should subscribe again).

PushBatches is Push with several batches per message (gRPC's cost per
message, most of a small batch's, is paid once for many); both run `_push`.

Push, PushBatches and OTLP Export ask `PushAccess` (collector/push_auth.py) first: the
call's `authorization` metadata is checked before any request is read
(UNAUTHENTICATED), and each source before it is written (PERMISSION_DENIED;
an Export writes nothing unless it may write every source in it). Subscribe,
ListSources and GetSnapshot take no token: --client-ca (mTLS) guards them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otlp_service

from collector.errors import CollectorError, InvalidBatch, PermissionDenied
from collector.event_batch import take_batch
from collector.fanout import QueueItem, Resync
from collector.hub import CollectorHub
from collector.otlp_receiver import OtlpReceiver
from collector.push_auth import Grant, PushAccess
from collector.source import Position
from collector.validation import PushCall, encoded_batches
from metrics_bridge.v1 import collector_pb2, metrics_pb2

__all__ = ["SERVICE_NAME", "MetricsCollectorService", "OtlpMetricsService", "now_ms"]

log = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 1024
"""The most events per Subscribe message, whatever a subscriber asks for."""

SERVICE_NAME = collector_pb2.DESCRIPTOR.services_by_name["MetricsCollector"].full_name


def now_ms() -> int:
    return int(time.time() * 1000)


def authorization(context: grpc.aio.ServicerContext) -> str | None:
    """The call's first `authorization` metadata value, if any."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return str(value)
    return None


async def admit(access: PushAccess, context: grpc.aio.ServicerContext, what: str) -> Grant | None:
    """The call's grant; a refused call is aborted (and logged without its token)."""
    try:
        return access.admit(authorization(context))
    except CollectorError as exc:
        log.warning("%s from %s refused: %s", what, context.peer(), exc)
        await context.abort(exc.status, str(exc))
        raise  # abort raises; this keeps type checkers sure


class MetricsCollectorService:
    def __init__(
        self,
        hub: CollectorHub,
        collector_name: str,
        max_batch_samples: int,
        access: PushAccess | None = None,
    ) -> None:
        self.hub = hub
        self.collector_name = collector_name
        self.max_batch_samples = max_batch_samples
        self.access = access or PushAccess.open()

    async def Subscribe(
        self, request: collector_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        ready = asyncio.Event()
        resume = {name: Position(p.epoch, p.seq) for name, p in request.resume.items()}
        try:
            sub = self.hub.subscribe(
                list(request.sources),
                resume,
                on_ready=ready.set,
                deltas=request.value_deltas,
                replay=request.replay_updates,
            )
        except CollectorError as exc:
            await context.abort(exc.status, str(exc))
            return
        peer = context.peer()
        log.info("subscriber %s joined (sources: %s)", peer, list(request.sources) or "all")
        overflows = stale_bursts = 0
        batch_events = min(request.max_batch_events, MAX_BATCH_EVENTS)
        try:
            while not sub.closed:
                item = sub.pop()
                if sub.overflows != overflows:
                    log.warning(
                        "subscriber %s fell behind its queue of %d; resyncing with snapshots "
                        "(%d updates dropped so far)", peer, sub.capacity, sub.dropped,
                    )  # fmt: skip
                    overflows = sub.overflows
                if sub.stale_bursts != stale_bursts:
                    log.warning(
                        "subscriber %s left updates waiting over %g s; resyncing with snapshots "
                        "until it catches up (%d stale updates dropped so far)",
                        peer, sub.max_staleness, sub.stale_drops,
                    )  # fmt: skip
                    stale_bursts = sub.stale_bursts
                if item is None:
                    ready.clear()
                    await ready.wait()
                    continue
                data = self._data(item)
                if batch_events > 1:
                    for message in take_batch(data, sub, self._data, batch_events):
                        yield message
                else:
                    yield data
        finally:
            self.hub.unsubscribe(sub)
            log.info("subscriber %s left%s", peer, f": {sub.lost}" if sub.lost else "")
        if sub.lost:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, sub.lost)

    def _data(self, item: QueueItem) -> bytes:
        """The encoded event for a queue item; a Resync is the snapshot as of now,
        marked with its reason."""
        if isinstance(item, Resync):
            return self.hub.snapshot(item.source, item.reason)
        return item.data

    async def Push(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> collector_pb2.PushResponse:
        """Each message an encoded PushRequest (parsed by PushCall: a batch like the
        last one is checked by its bytes)."""
        return await self._push(requests, context, "Push", _one_batch)

    async def PushBatches(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> collector_pb2.PushResponse:
        """Push with several batches per message: gRPC's cost per message is shared."""
        return await self._push(requests, context, "PushBatches", encoded_batches)

    async def _push(
        self,
        messages: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext,
        method: str,
        batches: Callable[[bytes], Sequence[bytes]],
    ) -> collector_pb2.PushResponse:
        grant = await admit(self.access, context, method)
        call = PushCall(self.max_batch_samples)
        feed_for = self.hub.feed
        push = metrics_pb2.SOURCE_KIND_PUSH
        accepted = samples_accepted = 0
        position = None
        try:
            async for message in messages:
                received, received_ms = time.monotonic(), now_ms()  # for every batch in it
                feed = None
                try:
                    for batch in batches(message):
                        samples, time_unix_ms = call.validate_encoded(batch)
                        if feed is None:
                            if accepted == 0:
                                self.access.check(grant, call.source)
                            feed = feed_for(
                                call.source, push, received=received, instance=call.instance
                            )
                        feed.apply(samples, time_unix_ms or received_ms)
                        accepted += 1
                        samples_accepted += len(samples)
                finally:
                    if feed is not None:
                        position = feed.close() or position
        except InvalidBatch as exc:
            await context.abort(exc.status, f"batch {accepted} (0-based) rejected: {exc}")
        except PermissionDenied as exc:
            log.warning("%s from %s refused: %s", method, context.peer(), exc)
            await context.abort(exc.status, str(exc))
        except CollectorError as exc:
            await context.abort(exc.status, str(exc))
        response = collector_pb2.PushResponse(batches=accepted, samples=samples_accepted)
        if position is not None:
            response.position.epoch, response.position.seq = position
        return response

    async def GetSnapshot(
        self, request: collector_pb2.GetSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> metrics_pb2.Snapshot:
        try:
            data = self.hub.snapshot(request.source)
        except CollectorError as exc:
            await context.abort(exc.status, str(exc))
        return collector_pb2.CollectorEvent.FromString(data).snapshot

    async def ListSources(
        self, request: collector_pb2.ListSourcesRequest, context: grpc.aio.ServicerContext
    ) -> collector_pb2.ListSourcesResponse:
        return collector_pb2.ListSourcesResponse(
            collector=self.collector_name,
            sources=[
                collector_pb2.SourceInfo(
                    name=s.name,
                    kind=s.kind,
                    position=metrics_pb2.Position(epoch=s.epoch, seq=s.seq),
                    series_count=s.series_count,
                    last_update_unix_ms=s.time_unix_ms,
                )
                for s in self.hub.sources.values()
            ],
        )

    def handler(self) -> grpc.GenericRpcHandler:
        def serialize(message: Any) -> bytes:
            return bytes(message.SerializeToString())

        identity: Callable[[bytes], bytes] = bytes
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Subscribe": grpc.unary_stream_rpc_method_handler(
                    self.Subscribe,
                    request_deserializer=collector_pb2.SubscribeRequest.FromString,
                    response_serializer=identity,
                ),
                "Push": grpc.stream_unary_rpc_method_handler(
                    self.Push,
                    request_deserializer=identity,
                    response_serializer=serialize,
                ),
                "PushBatches": grpc.stream_unary_rpc_method_handler(
                    self.PushBatches,
                    request_deserializer=identity,
                    response_serializer=serialize,
                ),
                "GetSnapshot": grpc.unary_unary_rpc_method_handler(
                    self.GetSnapshot,
                    request_deserializer=collector_pb2.GetSnapshotRequest.FromString,
                    response_serializer=serialize,
                ),
                "ListSources": grpc.unary_unary_rpc_method_handler(
                    self.ListSources,
                    request_deserializer=collector_pb2.ListSourcesRequest.FromString,
                    response_serializer=serialize,
                ),
            },
        )


def _one_batch(message: bytes) -> tuple[bytes]:
    return (message,)


class OtlpMetricsService:
    """opentelemetry.proto.collector.metrics.v1.MetricsService: OTLP/gRPC metrics.

    Translation and partial_success: collector.otlp_receiver, shared with
    OTLP/HTTP (collector.otlp_http)."""

    def __init__(
        self,
        hub: CollectorHub,
        access: PushAccess | None = None,
        *,
        receiver: OtlpReceiver | None = None,
    ) -> None:
        self.hub = hub
        self.access = access or PushAccess.open()
        self.receiver = receiver or OtlpReceiver(hub)

    async def Export(
        self,
        request: otlp_service.ExportMetricsServiceRequest,
        context: grpc.aio.ServicerContext,
    ) -> otlp_service.ExportMetricsServiceResponse:
        grant = await admit(self.access, context, "OTLP Export")
        translation = self.receiver.translate(request)
        try:
            for source in translation.sources:
                self.access.check(grant, source)
        except PermissionDenied as exc:
            log.warning("OTLP Export from %s refused: %s", context.peer(), exc)
            await context.abort(exc.status, str(exc))
        return self.receiver.apply(translation)
