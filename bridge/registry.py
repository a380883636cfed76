"""The channels a bridge serves, built from its collectors' raw events. No clients.

Rules:
- A channel is named `COLLECTOR/SOURCE` and exists from the first Snapshot of
  its source; an Update for a channel that does not exist yet is a gap.
- Each CollectorEvent is parsed once (`apply`); the result says what the hub
  must fan out: nothing (a new channel or a duplicate update), or a frame,
  with `revived` set when a Snapshot brought an existing channel back to life.
  A Snapshot the collector marked (`CollectorEvent.resync`: it dropped
  updates for it) says so in `resync`, with the updates it replaced.
- Bad data from a collector never reaches clients and never stops the other
  channels (`Resync`): an Update whose seq jumps or whose epoch changed
  mid-stream, or one for a channel without a snapshot, makes that channel
  *resyncing*: the caller asks the collector for its snapshot (GetSnapshot),
  and the channel's later updates are held (at most `MAX_HELD`) until a
  Snapshot arrives, then replayed where they continue it. An event that does
  not parse names no channel: every source of that collector is reconciled
  (`sources` None). An event of no known kind is skipped (`sources` empty).
- A Snapshot behind its channel (same epoch, lower seq) of a channel that is
  not resyncing is outdated, and ignored: a snapshot fetched after bad data
  may answer after the stream's next updates, which the channel has applied.
- `SourceRemoved`, or a listing that no longer has the source (`retain`),
  removes the channel; the caller tells its subscribers.
- The catalog (every channel's `ChannelInfo`, sorted by name) is encoded once
  per change; `take_change()` reports a change once, so clients get at most
  one new catalog per tick.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from bridge.channel import ChannelState, Position, State
from bridge.errors import UpstreamGap
from bridge.frame import Frame, control_frame
from bridge.history import HistoryLimits
from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2

__all__ = ["MAX_HELD", "ChannelRegistry", "Published", "Removed", "Resync"]

MAX_HELD = 1024
"""Updates held per resyncing channel until its snapshot arrives (the oldest go first)."""


@dataclass(slots=True)
class Published:
    """A frame for every subscriber of `channel`; `revived`: a Snapshot, the channel is live.

    One per update: a slots dataclass, not a frozen one (five times the cost to make)."""

    channel: ChannelState
    frame: Frame
    revived: bool = False
    then: tuple[Frame, ...] = ()
    """Held updates that continue the snapshot, published after it in order."""
    resync: int = 0
    """The ResyncReason the collector marked this Snapshot with (0: none)."""
    skipped: int = 0
    """Updates that marked Snapshot replaced: its seq minus the channel's, in one epoch."""


@dataclass(frozen=True, slots=True)
class Removed:
    """The source is gone; `channel` is no longer in the registry."""

    channel: ChannelState


@dataclass(frozen=True, slots=True)
class Resync:
    """Bad data from `collector`: fetch the snapshots of `sources` (None: of every source).

    `reason` is a short label for /metrics (seq_jump, epoch_changed,
    unknown_channel, undecodable, unknown_event); `detail` says what was seen."""

    collector: str
    sources: tuple[str, ...] | None
    reason: str
    detail: str


Outcome = Published | Removed | Resync | None


class ChannelRegistry:
    """Channels by name, with the catalog that lists them."""

    def __init__(self, resume_window: int | HistoryLimits) -> None:
        self.resume_window = resume_window
        self.channels: dict[str, ChannelState] = {}
        self._changed = False
        self._catalog: Frame | None = None
        self._held: dict[str, list[tuple[metrics_pb2.Update, bytes]]] = {}

    def apply(self, collector: str, data: bytes) -> Outcome:
        """Take one raw CollectorEvent."""
        try:
            event = collector_pb2.CollectorEvent.FromString(data)
        except DecodeError as exc:
            return Resync(collector, None, "undecodable", f"undecodable CollectorEvent: {exc}")
        if event.HasField("update"):  # most events: cheaper than WhichOneof
            return self._update(collector, event.update, data)
        which = event.WhichOneof("event")
        if which == "snapshot":
            snapshot = event.snapshot
            name = f"{collector}/{snapshot.source}"
            channel = self.channels.get(name)
            if (
                channel is not None
                and name not in self._held
                and snapshot.epoch == channel.epoch
                and snapshot.seq < channel.seq
            ):
                return None  # fetched before updates the channel has since applied
            held = self._held.pop(name, [])
            if channel is None:
                channel = ChannelState(collector, snapshot, data, self.resume_window)
                self.channels[name] = channel
                self._replay(channel, held)
                self.changed()
                return None
            before = channel.position
            frame = channel.apply_snapshot(snapshot, data, marked=event.resync != 0)
            skipped = 0
            if event.resync and snapshot.epoch == before.epoch:
                skipped = max(0, snapshot.seq - before.seq)
            return Published(
                channel,
                frame,
                revived=True,
                then=self._replay(channel, held),
                resync=event.resync,
                skipped=skipped,
            )
        if which == "source_removed":
            return self.remove(f"{collector}/{event.source_removed.source}")
        return Resync(collector, (), "unknown_event", f"CollectorEvent of no known kind ({which})")

    def _update(self, collector: str, update: metrics_pb2.Update, data: bytes) -> Outcome:
        name = f"{collector}/{update.source}"
        held = self._held.get(name)
        if held is not None:
            if len(held) >= MAX_HELD:
                del held[0]
            held.append((update, data))
            return None
        channel = self.channels.get(name)
        if channel is None:
            self._held[name] = [(update, data)]
            detail = f"{name}: update ({update.epoch}, {update.seq}) before any snapshot"
            return Resync(collector, (update.source,), "unknown_channel", detail)
        try:
            frame = channel.apply_update(update, data)
        except UpstreamGap as gap:
            self._held[name] = [(update, data)]
            reason = "epoch_changed" if update.epoch != channel.epoch else "seq_jump"
            return Resync(collector, (update.source,), reason, str(gap))
        return None if frame is None else Published(channel, frame)

    def _replay(
        self, channel: ChannelState, held: list[tuple[metrics_pb2.Update, bytes]]
    ) -> tuple[Frame, ...]:
        """Fold in the held updates that continue the channel; stop at the first gap."""
        frames: list[Frame] = []
        for update, data in held:
            try:
                frame = channel.apply_update(update, data)
            except UpstreamGap:
                break  # the stream's next update finds the gap again and resyncs
            if frame is not None:
                frames.append(frame)
        return tuple(frames)

    def resyncing(self, name: str) -> bool:
        return name in self._held

    def abandon_resync(self, name: str) -> None:
        """The snapshot could not be fetched: drop the held updates; the next one resyncs."""
        self._held.pop(name, None)

    def remove(self, name: str) -> Removed | None:
        self._held.pop(name, None)
        channel = self.channels.pop(name, None)
        if channel is None:
            return None
        channel.state = bridge_pb2.UPSTREAM_STATE_REMOVED
        channel.detail = "source removed from its collector"
        self.changed()
        return Removed(channel)

    def lost_sources(self, collector: str, sources: set[str]) -> list[str]:
        """Names of this collector's channels whose source is not in `sources`."""
        return [
            c.name
            for c in self.channels.values()
            if c.collector == collector and c.source not in sources
        ]

    def of_collector(self, collector: str) -> list[ChannelState]:
        return [c for c in self.channels.values() if c.collector == collector]

    def positions(self, collector: str) -> dict[str, Position]:
        """Resume positions, by source name, of this collector's channels."""
        return {c.source: c.position for c in self.of_collector(collector)}

    def set_state(self, channel: ChannelState, state: State, detail: str) -> bool:
        """Record an upstream state; False when it is what the channel already had."""
        if channel.state == state and channel.detail == detail:
            return False
        channel.state, channel.detail = state, detail
        self.changed()
        return True

    def changed(self) -> None:
        self._changed = True
        self._catalog = None

    def take_change(self) -> Frame | None:
        """The new catalog if it changed since the last call, else None."""
        if not self._changed:
            return None
        self._changed = False
        return self.catalog_frame()

    def catalog_frame(self) -> Frame:
        if self._catalog is None:
            catalog = bridge_pb2.Catalog(
                channels=[self.channels[name].info() for name in sorted(self.channels)],
                approximate=True,
            )
            self._catalog = control_frame(bridge_pb2.ServerMessage(catalog=catalog))
        return self._catalog
