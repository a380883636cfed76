"""A subscriber-side copy of one source, rebuilt from its Snapshot and Updates.

Test support: wire-only (it reads the protobuf messages, nothing of the
collector's internals), so the collector's tests check what a subscriber
sees: apply a Snapshot, then each Update in order; a gap or an update of
another epoch raises `ReplicaGap`. Clients use `bridge.client.ChannelView`,
which follows the same rules; the collector's tests keep this copy so that
the collector does not depend on the bridge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.series import HistogramData, SeriesKey, Value
from metrics_bridge.v1 import metrics_pb2


class ReplicaGap(Exception):
    """The update does not follow the replica's position."""


@dataclass
class SourceReplica:
    source: str = ""
    epoch: int = 0
    seq: int = 0
    descriptors: dict[int, metrics_pb2.SeriesDescriptor] = field(default_factory=dict)
    values: dict[int, Value] = field(default_factory=dict)
    has_snapshot: bool = False

    def apply_snapshot(self, snapshot: metrics_pb2.Snapshot) -> None:
        self.source, self.epoch, self.seq = snapshot.source, snapshot.epoch, snapshot.seq
        self.descriptors = {d.id: d for d in snapshot.series}
        self.values = {}
        self._set_values(snapshot.values)
        self.has_snapshot = True

    def apply_update(self, update: metrics_pb2.Update) -> None:
        if not self.has_snapshot:
            raise ReplicaGap("an update before any snapshot")
        if update.epoch != self.epoch or update.seq != self.seq + 1:
            raise ReplicaGap(
                f"update ({update.epoch}, {update.seq}) does not follow ({self.epoch}, {self.seq})"
            )
        for d in update.added:
            self.descriptors[d.id] = d
        self._set_values(update.values)
        for series_id in update.removed:
            self.descriptors.pop(series_id, None)
            self.values.pop(series_id, None)
        self.seq = update.seq

    def _set_values(self, values: metrics_pb2.Values) -> None:
        for series_id, number in zip(values.ids, values.numbers, strict=True):
            self.values[series_id] = number
        for series_id, delta in zip(values.delta_ids, values.deltas, strict=True):
            previous = self.values[series_id]
            assert isinstance(previous, float)
            self.values[series_id] = previous + delta
        for hv in values.histograms:
            self.values[hv.id] = HistogramData.from_proto(hv.histogram)

    def by_key(self) -> dict[SeriesKey, Value]:
        """Current values by (name, labels)."""
        return {
            SeriesKey.of(d.name, [(lb.name, lb.value) for lb in d.labels]): self.values[i]
            for i, d in self.descriptors.items()
            if i in self.values
        }

    def get(self, name: str, **labels: str) -> Value | None:
        return self.by_key().get(SeriesKey.of(name, labels.items()))
