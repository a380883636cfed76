"""What the replica scenarios check on a recorded Subscribe stream: replayed
event by event, no counter ever goes backwards (unless its start time changed,
which is how a reset is announced), and which instances a source shows."""

from __future__ import annotations

from collector.series import HistogramData, SeriesKey
from metrics_bridge.v1 import collector_pb2, metrics_pb2
from tests.collector.replica import SourceReplica

COUNTER = metrics_pb2.METRIC_KIND_COUNTER


def counters_never_go_back(events: list[collector_pb2.CollectorEvent], source: str) -> int:
    """Replays `source`'s events; fails on a counter that went down. Returns how
    many counter values were compared."""
    replica = SourceReplica()
    last: dict[tuple[SeriesKey, int], float] = {}
    compared = 0
    for event in events:
        kind = event.WhichOneof("event")
        if kind == "snapshot" and event.snapshot.source == source:
            replica.apply_snapshot(event.snapshot)
        elif kind == "update" and event.update.source == source and replica.has_snapshot:
            replica.apply_update(event.update)
        else:
            continue
        for series_id, d in replica.descriptors.items():
            value = replica.values.get(series_id)
            if d.kind != COUNTER or not isinstance(value, float):
                continue
            key = (
                SeriesKey.of(d.name, [(lb.name, lb.value) for lb in d.labels]),
                d.start_time_unix_ms,
            )
            before = last.get(key)
            assert before is None or value >= before, f"{key[0]} went from {before} to {value}"
            last[key] = value
            compared += 1
    return compared


def instances(replica: SourceReplica, name: str) -> dict[str, float | HistogramData]:
    """instance label -> value of the series `name` (other labels ignored)."""
    out: dict[str, float | HistogramData] = {}
    for key, value in replica.by_key().items():
        labels = dict(key.labels)
        if key.name == name and "instance" in labels and not isinstance(value, str):
            out[labels["instance"]] = value  # type: ignore[assignment]
    return out
