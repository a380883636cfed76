"""The channels a bridge serves, built from its collectors' raw events. No clients.

Rules:
- A channel is named `COLLECTOR/SOURCE` and exists from the first Snapshot of
  its source; an Update for a channel that does not exist yet is a gap.
- Each CollectorEvent is parsed once (`apply`); the result says what the hub
  must fan out: nothing (a new channel or a duplicate update), or a frame,
  with `revived` set when a Snapshot brought an existing channel back to life.
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
from bridge.errors import BadUpstreamEvent, UpstreamGap
from bridge.frame import Frame, control_frame
from bridge.history import HistoryLimits
from metrics_bridge.v1 import bridge_pb2, collector_pb2

__all__ = ["ChannelRegistry", "Published", "Removed"]


@dataclass(frozen=True, slots=True)
class Published:
    """A frame for every subscriber of `channel`; `revived`: a Snapshot, the channel is live."""

    channel: ChannelState
    frame: Frame
    revived: bool = False


@dataclass(frozen=True, slots=True)
class Removed:
    """The source is gone; `channel` is no longer in the registry."""

    channel: ChannelState


Outcome = Published | Removed | None


class ChannelRegistry:
    """Channels by name, with the catalog that lists them."""

    def __init__(self, resume_window: int | HistoryLimits) -> None:
        self.resume_window = resume_window
        self.channels: dict[str, ChannelState] = {}
        self._changed = False
        self._catalog: Frame | None = None

    def apply(self, collector: str, data: bytes) -> Outcome:
        """Take one raw CollectorEvent; raises UpstreamError if the stream must restart."""
        try:
            event = collector_pb2.CollectorEvent.FromString(data)
        except DecodeError as exc:
            raise BadUpstreamEvent(f"{collector}: undecodable CollectorEvent: {exc}") from None
        which = event.WhichOneof("event")
        if which == "update":
            update = event.update
            channel = self.channels.get(f"{collector}/{update.source}")
            if channel is None:
                raise UpstreamGap(f"{collector}/{update.source}: update before any snapshot")
            frame = channel.apply_update(update, data)
            return None if frame is None else Published(channel, frame)
        if which == "snapshot":
            snapshot = event.snapshot
            name = f"{collector}/{snapshot.source}"
            channel = self.channels.get(name)
            if channel is None:
                self.channels[name] = ChannelState(collector, snapshot, data, self.resume_window)
                self.changed()
                return None
            return Published(channel, channel.apply_snapshot(snapshot, data), revived=True)
        if which == "source_removed":
            return self.remove(f"{collector}/{event.source_removed.source}")
        raise BadUpstreamEvent(f"{collector}: CollectorEvent with no known event")

    def remove(self, name: str) -> Removed | None:
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
