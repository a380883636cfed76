"""One channel's state as a client sees it: a Snapshot with Updates applied.

Rules (metrics.proto gives the positions, bridge.proto the framing):

- A Snapshot replaces everything: series, values, epoch and seq.
- An Update applies only when the view holds a snapshot, its epoch equals the
  view's and its seq is exactly the view's seq + 1. Then its `added`
  descriptors are declared (re-declaring an id replaces the descriptor: a
  counter reset), its values overwrite, its deltas (`delta_ids[i]` changed
  by the whole number `deltas[i]`) add to the values held, and its `removed`
  ids are dropped.
- An Update of the same epoch with seq <= the view's seq is already folded in:
  it is ignored (a replay that overlaps what the view holds).
- A following Update whose values name an id neither declared nor added, or
  whose ids and numbers (or delta_ids and deltas) differ in length, or with a
  delta for a series that holds no number, contradicts the schema: the view is
  left untouched (INVALID) and `ClientSession` asks for a fresh snapshot, since
  resuming would replay the same update.
- A merged update (`first_seq`, from a subscription with a rate tier) covers
  seqs first_seq..seq: it applies when the view's seq is first_seq - 1, as a
  plain update applies at seq - 1.
- Anything else is a gap: the view is left untouched and `ClientSession`
  resubscribes, resuming from `view.position`.
- A resync reason (`ServerMessage.resync`: the bridge or collector sent this
  snapshot or merged update in place of updates, docs/protocol.md
  "Freshness") changes nothing in how it applies. Once applied, it counts in
  `resyncs` (by reason: "stale", "overflow", or the number of a reason this
  client does not know) and becomes `last_resync`. Unmarked snapshots (the
  answer to a subscribe or resume) do not count; counts outlive snapshots and
  connections.

No sockets, no clocks: `ChannelView` is driven by decoded messages only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bridge.client.errors import ProtocolViolation
from metrics_bridge.v1 import metrics_pb2

__all__ = ["Applied", "ChannelView", "SeriesValue", "ViewPosition", "resync_reason"]


_RESYNC_REASONS = {
    int(value): name.removeprefix("RESYNC_REASON_").lower()
    for name, value in metrics_pb2.ResyncReason.items()
}


def resync_reason(value: int) -> str | None:
    """A ResyncReason as the client names it: None when absent, "stale", "overflow", or "7"."""
    if value == metrics_pb2.RESYNC_REASON_UNSPECIFIED:
        return None
    return _RESYNC_REASONS.get(value, str(value))


class Applied(enum.Enum):
    """What `ChannelView.apply_update` did with an Update."""

    APPLIED = "applied"
    IGNORED = "ignored"
    GAP = "gap"
    INVALID = "invalid"


@dataclass(frozen=True)
class ViewPosition:
    epoch: int
    seq: int

    def to_proto(self) -> metrics_pb2.Position:
        return metrics_pb2.Position(epoch=self.epoch, seq=self.seq)


@dataclass(frozen=True)
class SeriesValue:
    """One series resolved from its id: what it is and its latest value."""

    id: int
    name: str
    labels: tuple[tuple[str, str], ...]
    kind: metrics_pb2.MetricKind.ValueType
    unit: str
    number: float | None
    histogram: metrics_pb2.Histogram | None

    @property
    def key(self) -> str:
        """`name{label="value",...}` as Prometheus writes a series."""
        if not self.labels:
            return self.name
        inner = ",".join(f'{name}="{value}"' for name, value in self.labels)
        return f"{self.name}{{{inner}}}"


class ChannelView:
    """The latest state of one channel, kept by applying Snapshot and Update."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.source = ""
        self.kind: metrics_pb2.SourceKind.ValueType = metrics_pb2.SOURCE_KIND_UNSPECIFIED
        self.time_unix_ms = 0
        self._position: ViewPosition | None = None
        self._series: dict[int, metrics_pb2.SeriesDescriptor] = {}
        self._numbers: dict[int, float] = {}
        self._histograms: dict[int, metrics_pb2.Histogram] = {}
        self.resyncs: dict[str, int] = {}
        self.last_resync: str | None = None

    @property
    def position(self) -> ViewPosition | None:
        """None until the first snapshot."""
        return self._position

    def apply_snapshot(self, snapshot: metrics_pb2.Snapshot, resync: str | None = None) -> None:
        """Replace the state; `resync` is the frame's reason, if the bridge marked it."""
        _check_values(snapshot.values)
        self.source = snapshot.source
        self.kind = snapshot.kind
        self.time_unix_ms = snapshot.time_unix_ms
        self._position = ViewPosition(snapshot.epoch, snapshot.seq)
        self._series = {d.id: d for d in snapshot.series}
        self._numbers = {}
        self._histograms = {}
        self._set_values(snapshot.values)
        self._count_resync(resync)

    def check_update(self, update: metrics_pb2.Update, first_seq: int = 0) -> Applied:
        """What `apply_update` would do, without doing it."""
        if self._position is None or update.epoch != self._position.epoch:
            return Applied.GAP
        if update.seq <= self._position.seq:
            return Applied.IGNORED
        if (first_seq or update.seq) != self._position.seq + 1:
            return Applied.GAP
        values = update.values
        if len(values.ids) != len(values.numbers) or len(values.delta_ids) != len(values.deltas):
            return Applied.INVALID
        if any(i not in self._numbers for i in values.delta_ids):
            return Applied.INVALID
        added = {d.id for d in update.added}
        named = [*values.ids, *(item.id for item in values.histograms)]
        if any(i not in self._series and i not in added for i in named):
            return Applied.INVALID
        return Applied.APPLIED

    def apply_update(
        self, update: metrics_pb2.Update, first_seq: int = 0, resync: str | None = None
    ) -> Applied:
        """Apply an update (merged over first_seq..seq when `first_seq` is set).

        `resync` is the frame's reason, if the bridge marked it; it counts only
        when the update applies.
        """
        outcome = self.check_update(update, first_seq)
        if outcome is not Applied.APPLIED:
            return outcome
        for descriptor in update.added:
            self._series[descriptor.id] = descriptor
        self._set_values(update.values)
        for series_id, delta in zip(update.values.delta_ids, update.values.deltas, strict=True):
            self._numbers[series_id] += delta
        for series_id in update.removed:
            self._series.pop(series_id, None)
            self._numbers.pop(series_id, None)
            self._histograms.pop(series_id, None)
        self.time_unix_ms = update.time_unix_ms
        self._position = ViewPosition(update.epoch, update.seq)
        self._count_resync(resync)
        return Applied.APPLIED

    def is_behind(self, position: metrics_pb2.Position) -> bool:
        """True when `position` (from a heartbeat) shows updates this view missed."""
        if self._position is None:
            return False
        return position.epoch != self._position.epoch or position.seq > self._position.seq

    def series(self) -> list[SeriesValue]:
        """Every declared series with its latest value, by id."""
        return [self._resolve(d) for _, d in sorted(self._series.items())]

    def value(self, name: str, **labels: str) -> float | None:
        """The number of the series with this name and exactly these labels."""
        wanted = tuple(sorted(labels.items()))
        for series in self.series():
            if series.name == name and series.labels == wanted:
                return series.number
        return None

    def _count_resync(self, resync: str | None) -> None:
        if resync is not None:
            self.resyncs[resync] = self.resyncs.get(resync, 0) + 1
            self.last_resync = resync

    def _set_values(self, values: metrics_pb2.Values) -> None:
        self._numbers.update(zip(values.ids, values.numbers, strict=True))
        for item in values.histograms:
            self._histograms[item.id] = item.histogram

    def _resolve(self, descriptor: metrics_pb2.SeriesDescriptor) -> SeriesValue:
        return SeriesValue(
            id=descriptor.id,
            name=descriptor.name,
            labels=tuple(sorted((label.name, label.value) for label in descriptor.labels)),
            kind=descriptor.kind,
            unit=descriptor.unit,
            number=self._numbers.get(descriptor.id),
            histogram=self._histograms.get(descriptor.id),
        )


def _check_values(values: metrics_pb2.Values) -> None:
    if len(values.ids) != len(values.numbers):
        raise ProtocolViolation(
            f"values carry {len(values.ids)} ids but {len(values.numbers)} numbers"
        )
