"""One channel (one source of one collector) as the bridge holds it.

Rules:
- A channel exists once its first Snapshot arrived; its position is the
  collector's (epoch, seq), passed through untouched.
- An Update must continue the position: same epoch, seq + 1. A duplicate
  (seq at or below the position) is ignored; anything else is a gap and raises
  `UpstreamGap` so the upstream restarts its stream and resumes; the channel
  keeps its last good state meanwhile and never publishes across a gap.
- A Snapshot replaces the state (upstream resync or a new epoch). The ring of
  recent updates survives only when the snapshot sits exactly at the current
  position of the same epoch; otherwise it is cleared, because the ring must be
  contiguous up to the position.
- The ring holds the last `resume_window` update frames. `resume(epoch, seq)`
  is all or nothing: every update after seq is in the ring, or the client gets
  the latest snapshot flagged not recovered. Never a silent gap.
- The latest snapshot is the collector's last snapshot with every later update
  folded in; it is encoded only when asked for, once per position.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TypeAlias

from bridge.errors import UpstreamGap
from bridge.frame import Frame, FrameKind, channel_prefix, make_frame
from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2

__all__ = [
    "ChannelState",
    "Position",
    "ResumeDecision",
    "State",
    "UpstreamState",
]


UpstreamState = bridge_pb2.UpstreamState
State: TypeAlias = bridge_pb2.UpstreamState.ValueType


@dataclass(frozen=True, slots=True)
class Position:
    epoch: int
    seq: int

    def to_proto(self) -> metrics_pb2.Position:
        return metrics_pb2.Position(epoch=self.epoch, seq=self.seq)


@dataclass(frozen=True, slots=True)
class ResumeDecision:
    """What a (re)subscribing client gets: `frames` in order, after its Subscribed ack."""

    recovered: bool
    position: Position
    frames: tuple[Frame, ...]


class ChannelState:
    """Latest state, recent updates and upstream state of one channel."""

    def __init__(
        self, collector: str, snapshot: metrics_pb2.Snapshot, event: bytes, resume_window: int
    ) -> None:
        self.collector = collector
        self.source = snapshot.source
        self.name = f"{collector}/{snapshot.source}"
        self.kind = snapshot.kind
        self.state: State = UpstreamState.UPSTREAM_STATE_LIVE
        self.detail = ""
        self._prefix = channel_prefix(self.name)
        self._ring: deque[Frame] = deque(maxlen=resume_window)
        self._series: dict[int, metrics_pb2.SeriesDescriptor] = {}
        self._numbers: dict[int, float] = {}
        self._histograms: dict[int, metrics_pb2.Histogram] = {}
        self.epoch = 0
        self.seq = 0
        self.time_unix_ms = 0
        self._snapshot_frame: Frame | None = None
        self.apply_snapshot(snapshot, event)

    @property
    def position(self) -> Position:
        return Position(self.epoch, self.seq)

    @property
    def series_count(self) -> int:
        return len(self._series)

    def apply_snapshot(self, snapshot: metrics_pb2.Snapshot, event: bytes) -> Frame:
        """Replace the state; returns the frame every subscriber gets."""
        keep_ring = snapshot.epoch == self.epoch and snapshot.seq == self.seq
        if not keep_ring:
            self._ring.clear()
        self.epoch, self.seq = snapshot.epoch, snapshot.seq
        self.kind = snapshot.kind
        self.time_unix_ms = snapshot.time_unix_ms
        self._series = {d.id: d for d in snapshot.series}
        values = snapshot.values
        self._numbers = dict(zip(values.ids, values.numbers, strict=False))
        self._histograms = {h.id: h.histogram for h in values.histograms}
        frame = make_frame(
            FrameKind.SNAPSHOT,
            self._prefix,
            event,
            channel=self.name,
            epoch=self.epoch,
            seq=self.seq,
        )
        self._snapshot_frame = frame
        return frame

    def apply_update(self, update: metrics_pb2.Update, event: bytes) -> Frame | None:
        """Fold an update in; returns its frame, or None for a duplicate."""
        if update.epoch == self.epoch and update.seq <= self.seq:
            return None
        if update.epoch != self.epoch or update.seq != self.seq + 1:
            raise UpstreamGap(
                f"{self.name}: update ({update.epoch}, {update.seq}) does not follow "
                f"({self.epoch}, {self.seq})"
            )
        self.seq = update.seq
        self.time_unix_ms = update.time_unix_ms
        for descriptor in update.added:
            self._series[descriptor.id] = descriptor
        values = update.values
        self._numbers.update(zip(values.ids, values.numbers, strict=False))
        for item in values.histograms:
            self._histograms[item.id] = item.histogram
        for series_id in update.removed:
            self._series.pop(series_id, None)
            self._numbers.pop(series_id, None)
            self._histograms.pop(series_id, None)
        frame = make_frame(
            FrameKind.UPDATE, self._prefix, event, channel=self.name, epoch=self.epoch, seq=self.seq
        )
        self._ring.append(frame)
        self._snapshot_frame = None
        return frame

    def snapshot_frame(self) -> Frame:
        """The latest snapshot (every update folded in), encoded once per position."""
        if self._snapshot_frame is None:
            snapshot = metrics_pb2.Snapshot(
                source=self.source,
                kind=self.kind,
                epoch=self.epoch,
                seq=self.seq,
                time_unix_ms=self.time_unix_ms,
            )
            snapshot.series.extend(self._series[i] for i in sorted(self._series))
            ids = sorted(self._numbers)
            snapshot.values.ids.extend(ids)
            snapshot.values.numbers.extend(self._numbers[i] for i in ids)
            for series_id in sorted(self._histograms):
                snapshot.values.histograms.add(id=series_id, histogram=self._histograms[series_id])
            event = collector_pb2.CollectorEvent(snapshot=snapshot).SerializeToString()
            self._snapshot_frame = make_frame(
                FrameKind.SNAPSHOT,
                self._prefix,
                event,
                channel=self.name,
                epoch=self.epoch,
                seq=self.seq,
            )
        return self._snapshot_frame

    def resume(self, after: Position | None) -> ResumeDecision:
        """Everything after `after` if the ring holds all of it, else the latest snapshot."""
        if after is not None and after.epoch == self.epoch and after.seq <= self.seq:
            missed = self.seq - after.seq
            if missed == 0:
                return ResumeDecision(True, self.position, ())
            if missed <= len(self._ring):
                frames = tuple(self._ring)[len(self._ring) - missed :]
                return ResumeDecision(True, self.position, frames)
        return ResumeDecision(False, self.position, (self.snapshot_frame(),))

    def info(self) -> bridge_pb2.ChannelInfo:
        return bridge_pb2.ChannelInfo(
            channel=self.name,
            collector=self.collector,
            source=self.source,
            kind=self.kind,
            position=self.position.to_proto(),
            series_count=self.series_count,
            state=self.state,
        )
