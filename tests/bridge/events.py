"""Build collector events for the bridge's unit tests."""

from __future__ import annotations

from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2

GAUGE = metrics_pb2.METRIC_KIND_GAUGE


def snapshot_event(
    source: str, epoch: int, seq: int, values: dict[int, float] | None = None
) -> bytes:
    values = values or {}
    snapshot = metrics_pb2.Snapshot(
        source=source, kind=metrics_pb2.SOURCE_KIND_PUSH, epoch=epoch, seq=seq
    )
    for series_id in sorted(values):
        snapshot.series.add(id=series_id, name=f"m{series_id}", kind=GAUGE)
    snapshot.values.ids.extend(sorted(values))
    snapshot.values.numbers.extend(values[i] for i in sorted(values))
    return collector_pb2.CollectorEvent(snapshot=snapshot).SerializeToString()


def update_event(
    source: str,
    epoch: int,
    seq: int,
    values: dict[int, float] | None = None,
    added: tuple[int, ...] = (),
    removed: tuple[int, ...] = (),
    deltas: dict[int, int] | None = None,
) -> bytes:
    values = values or {}
    update = metrics_pb2.Update(source=source, epoch=epoch, seq=seq, removed=removed)
    update.values.delta_ids.extend(deltas or {})
    update.values.deltas.extend((deltas or {}).values())
    for series_id in added:
        update.added.add(id=series_id, name=f"m{series_id}", kind=GAUGE)
    update.values.ids.extend(values)
    update.values.numbers.extend(values.values())
    return collector_pb2.CollectorEvent(update=update).SerializeToString()


def parse_wire(wire: bytes) -> bridge_pb2.ServerMessage:
    """Strip an unmasked WebSocket frame header and parse the ServerMessage."""
    assert wire[0] == 0x82
    length = wire[1] & 0x7F
    offset = 2 if length < 126 else 4 if length == 126 else 10
    return bridge_pb2.ServerMessage.FromString(wire[offset:])


def snapshot_values(message: bridge_pb2.ServerMessage) -> dict[int, float]:
    values = message.snapshot.values
    return dict(zip(values.ids, values.numbers, strict=True))
