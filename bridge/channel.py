"""One channel (one source of one collector) as the bridge holds it.

Rules:
- A channel exists once its first Snapshot arrived; its position is the
  collector's (epoch, seq), passed through untouched.
- An Update must continue the position: same epoch, seq + 1. A duplicate
  (seq at or below the position) is ignored; anything else is a gap and raises
  `UpstreamGap`, and the registry resyncs this channel from a fresh snapshot
  (bridge/channel_resync.py); the channel keeps its last good state meanwhile
  and never publishes across a gap.
- A Snapshot replaces the state (upstream resync or a new epoch). The ring of
  recent updates survives only when the snapshot sits exactly at the current
  position of the same epoch; otherwise it is cleared, because the ring must be
  contiguous up to the position.
- The ring (`HistoryRing`) holds the last updates, bounded in count
  (`max(resume_window, history window)`) and bytes. `resume(epoch, seq)` is
  all or nothing: every update after seq is in the ring, or the client gets
  the latest snapshot flagged not recovered. Never a silent gap.
- `history()` is the snapshot at the ring's start (made from a checkpoint and
  the updates after it, see bridge/history.py) followed by every held
  update: no encoding per subscriber.
- `merged_frame(after)` is one Update covering every seq after `after` up to
  the position (`ServerMessage.first_seq`): the net change, built from the
  ids the held updates touched and the latest values; encoded once per
  `after` and position, so every client at one position gets the same bytes.
  The touched ids are noted as each update is folded (`SeriesChanges`: the
  last seq that changed each series), so a merge parses no held update
  again.
- The latest snapshot is the collector's last snapshot with every later update
  folded in; it is encoded only when asked for, once per position.
- `resync_frame(reason)` is the latest snapshot marked with why it replaced
  a client's updates (`ServerMessage.resync`), made once per position and
  reason. A snapshot that arrived marked from the collector is published
  marked, but later subscribers get the unmarked latest snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from bridge.errors import UpstreamGap
from bridge.frame import Frame, FrameKind, channel_prefix, make_frame, with_resync
from bridge.history import HistoryLimits, HistoryRing, SeriesChanges, SourceState
from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2

__all__ = [
    "ChannelState",
    "Position",
    "ResumeDecision",
    "State",
    "UpstreamState",
]


UpstreamState = bridge_pb2.UpstreamState
CHANGES_FLOOR = 1024
"""Entries `SeriesChanges` may hold before the channel first drops those no merge needs."""
CHANGES_CHECK_EVERY = 64
"""Updates between two looks at the size of a channel's `SeriesChanges`."""
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
    history: bool = False


class ChannelState:
    """Latest state, recent updates and upstream state of one channel."""

    def __init__(
        self,
        collector: str,
        snapshot: metrics_pb2.Snapshot,
        event: bytes,
        limits: int | HistoryLimits,
    ) -> None:
        self.collector = collector
        self.source = snapshot.source
        self.name = f"{collector}/{snapshot.source}"
        self.kind = snapshot.kind
        self.state: State = UpstreamState.UPSTREAM_STATE_LIVE
        self.detail = ""
        self._prefix = channel_prefix(self.name)
        if isinstance(limits, int):
            limits = HistoryLimits.unbounded(limits)
        self._now = SourceState()
        self._ring = HistoryRing(limits, SourceState())
        self._changes = SeriesChanges()
        self._changes_limit = CHANGES_FLOOR
        self._snapshot_frame: Frame | None = None
        self._merged: dict[int, Frame] = {}
        self._resync_frames: dict[int, Frame] = {}
        self.apply_snapshot(snapshot, event)

    @property
    def epoch(self) -> int:
        return self._now.epoch

    @property
    def seq(self) -> int:
        return self._now.seq

    @property
    def time_unix_ms(self) -> int:
        return self._now.time_unix_ms

    @property
    def position(self) -> Position:
        return Position(self._now.epoch, self._now.seq)

    @property
    def series_count(self) -> int:
        return len(self._now.series)

    @property
    def history_start(self) -> Position:
        return Position(*self._ring.start_position)

    @property
    def history_len(self) -> int:
        """Updates held (for resume and history)."""
        return len(self._ring)

    @property
    def history_bytes(self) -> int:
        return self._ring.bytes

    def apply_snapshot(
        self, snapshot: metrics_pb2.Snapshot, event: bytes, marked: bool = False
    ) -> Frame:
        """Replace the state; returns the frame every subscriber gets.

        `marked`: the event carries a ResyncReason, which later subscribers must not see.
        """
        keep_ring = snapshot.epoch == self.epoch and snapshot.seq == self.seq
        self.kind = snapshot.kind
        self._now = SourceState.of_snapshot(snapshot)
        if not keep_ring:
            self._ring.reset(SourceState.of_snapshot(snapshot))
            self._changes.clear()
        frame = make_frame(
            FrameKind.SNAPSHOT,
            self._prefix,
            event,
            channel=self.name,
            epoch=self.epoch,
            seq=self.seq,
        )
        self._snapshot_frame = None if marked else frame
        self._merged.clear()
        self._resync_frames.clear()
        return frame

    def apply_update(self, update: metrics_pb2.Update, event: bytes) -> Frame | None:
        """Fold an update in; returns its frame, or None for a duplicate.

        Each field of the parsed message and each position is read once: a
        field read costs as much as a short Python call."""
        now = self._now
        epoch, seq = update.epoch, update.seq
        if epoch == now.epoch and seq <= now.seq:
            return None
        if epoch != now.epoch or seq != now.seq + 1:
            raise UpstreamGap(
                f"{self.name}: update ({epoch}, {seq}) does not follow ({now.epoch}, {now.seq})"
            )
        now.apply(update, self._changes)
        frame = make_frame(
            FrameKind.UPDATE, self._prefix, event, channel=self.name, epoch=epoch, seq=seq
        )
        self._ring.append(frame, now)
        if not seq % CHANGES_CHECK_EVERY:
            self._bound_changes()
        self._snapshot_frame = None
        self._merged.clear()
        self._resync_frames.clear()
        return frame

    def _bound_changes(self) -> None:
        """Drop the noted changes no merge needs once they have doubled since the last time."""
        changes = self._changes
        if len(changes) > self._changes_limit:
            changes.forget_until(self._ring.start_position[1])
            self._changes_limit = max(CHANGES_FLOOR, 2 * len(changes))

    def snapshot_frame(self) -> Frame:
        """The latest snapshot (every update folded in), encoded once per position."""
        if self._snapshot_frame is None:
            snapshot = self._now.snapshot(self.source, self.kind)
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

    def resync_frame(self, reason: int) -> Frame:
        """The latest snapshot marked with a ResyncReason, encoded once per position and reason."""
        frame = self._resync_frames.get(reason)
        if frame is None:
            frame = self._resync_frames[reason] = with_resync(self.snapshot_frame(), reason)
        return frame

    def resume(self, after: Position | None, history: bool = False) -> ResumeDecision:
        """Everything after `after` if the ring holds all of it, else a snapshot.

        With `history`, the snapshot is the one at the ring's start, followed
        by every held update; else it is the latest snapshot.
        """
        if after is not None and after.epoch == self.epoch and after.seq <= self.seq:
            frames = self._ring.after(after.seq)
            if frames is not None:
                return ResumeDecision(True, self.position, frames)
        if history and len(self._ring):
            start = self._ring.start_frame(self.name, self._prefix, self.source, self.kind)
            return ResumeDecision(False, self.position, (start, *self._ring.frames), True)
        return ResumeDecision(False, self.position, (self.snapshot_frame(),))

    def merged_frame(self, after: Position) -> Frame | None:
        """One update from `after` to the position; None when the ring cannot bridge it.

        A single missing update is its own frame; more are merged once per
        `after` and position into an Update with `ServerMessage.first_seq`.
        """
        if after.epoch != self.epoch or after.seq >= self.seq:
            return None
        cached = self._merged.get(after.seq)
        if cached is not None:
            return cached
        if after.seq == self.seq - 1 and len(self._ring):
            return self._ring.frames[-1]
        if not self._ring.holds_after(after.seq):
            return None
        cached = self._merged[after.seq] = self._merge(after.seq)
        return cached

    def _merge(self, after: int) -> Frame:
        added, changed, removed = self._changes.since(after)
        now = self._now
        series, numbers, histograms = now.series, now.numbers, now.histograms
        merged = metrics_pb2.Update(
            source=self.source, epoch=now.epoch, seq=now.seq, time_unix_ms=now.time_unix_ms
        )
        merged.added.extend([series[i] for i in added if i in series])
        ids = [i for i in changed if i in numbers]
        merged.values.ids.extend(ids)
        merged.values.numbers.extend([numbers[i] for i in ids])
        for series_id in changed:
            if series_id in histograms:
                merged.values.histograms.add(id=series_id, histogram=histograms[series_id])
        merged.removed.extend([i for i in removed if i not in series])
        message = bridge_pb2.ServerMessage(channel=self.name, update=merged, first_seq=after + 1)
        return make_frame(
            FrameKind.UPDATE,
            message.SerializeToString(),
            channel=self.name,
            epoch=now.epoch,
            seq=now.seq,
        )

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
