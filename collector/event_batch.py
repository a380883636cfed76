"""Several encoded CollectorEvents framed as one CollectorEvent{batch}. Pure.

Rules:
- A batch is built from events already encoded once for every subscriber:
  each becomes one `EventBatch.events` entry by prefixing its tag and length,
  so a batch costs a copy, not an encoding, per subscriber.
- `take_batch` pops up to `max_events` items while their bytes stay within
  `max_bytes`; an event that would take a batch past it is sent after the
  batch, on its own (a lone event may be larger: it was sendable before).
  One event is sent as itself, never as a batch of one.
"""

from __future__ import annotations

from collections.abc import Callable

from collector.fanout import QueueItem, SubscriberQueue

__all__ = ["BATCH_BYTES", "encode_batch", "take_batch", "varint"]

BATCH_BYTES = 1024 * 1024
"""At most this many bytes of events per batch (far under gRPC's 4 MiB default)."""

_EVENTS_TAG = b"\x0a"  # EventBatch.events = 1, length-delimited
_BATCH_TAG = b"\x6a"  # CollectorEvent.batch = 13, length-delimited


def varint(value: int) -> bytes:
    """A protobuf base-128 varint, for framing bytes already encoded."""
    if value < 0x80:
        return bytes((value,))
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_FRAMED = 4096
_FRAMES = tuple(_EVENTS_TAG + varint(n) for n in range(_FRAMED))
"""The tag and length of an event of each common length: looked up, not encoded."""


def encode_batch(events: list[bytes]) -> bytes:
    """CollectorEvent{batch: EventBatch{events}} from encoded CollectorEvents."""
    frames = _FRAMES
    parts = [_BATCH_TAG, b""]
    append = parts.append
    for data in events:
        size = len(data)
        append(frames[size] if size < _FRAMED else _EVENTS_TAG + varint(size))
        append(data)
    parts[1] = varint(sum(map(len, parts)) - len(_BATCH_TAG))  # one join: no copy of the inner
    return b"".join(parts)


def take_batch(
    first: bytes,
    queue: SubscriberQueue,
    resolve: Callable[[QueueItem], bytes],
    max_events: int,
    max_bytes: int = BATCH_BYTES,
) -> list[bytes]:
    """The messages for `first` plus what `queue` holds now, up to the limits
    (taken in one instant: one clock reading for the staleness bound)."""
    events = [first]
    append = events.append
    size = len(first)
    now = queue.now()
    pop = queue.pop
    for _ in range(max_events - 1):
        item = pop(now)
        if item is None:
            break
        data = resolve(item)
        size += len(data)
        if size > max_bytes:
            return [first if len(events) == 1 else encode_batch(events), data]
        append(data)
    return [first if len(events) == 1 else encode_batch(events)]
