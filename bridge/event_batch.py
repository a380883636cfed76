"""The events of one Subscribe message: a CollectorEvent{batch} holds several.

The bridge asks for batches (SubscribeRequest.max_batch_events); a collector
that predates them sends one event per message, which reads the same here.
Only a batch is decoded; any other message is handed on as it came, to be
decoded once by the registry.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from bridge.errors import BadUpstreamEvent
from metrics_bridge.v1 import collector_pb2

__all__ = ["BATCH_EVENTS", "events_of"]

BATCH_EVENTS = 512
"""The bridge's max_batch_events: enough that a busy collector sends few messages."""

_BATCH_TAG = 0x6A  # CollectorEvent.batch = 13, length-delimited


def events_of(message: bytes) -> list[bytes]:
    """The encoded CollectorEvents of one Subscribe message, in stream order."""
    if not message or message[0] != _BATCH_TAG:
        return [message]
    try:
        event = collector_pb2.CollectorEvent.FromString(message)
    except DecodeError as exc:
        raise BadUpstreamEvent(f"undecodable CollectorEvent batch: {exc}") from None
    if event.WhichOneof("event") != "batch":
        return [message]
    return list(event.batch.events)
