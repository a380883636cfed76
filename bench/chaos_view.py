"""One client's copy of one channel, checked against the protocol, without sockets.

Rules (docs/protocol.md, "Resuming"):
- A Snapshot replaces the state and sets the position; an Update's values
  are full (`ids`/`numbers`) or whole-number changes (`delta_ids`/`deltas`).
- An Update must continue the position: same epoch, seq + 1; a merged update
  (`ServerMessage.first_seq`, sent by a bridge that fell behind or to a rate
  tier) continues it when the position is (epoch, first_seq - 1). Anything
  else (a gap, a duplicate, another epoch) is counted in `gaps` and never
  applied silently; the view then waits for the next snapshot.
- After a resume, Subscribed(recovered=true) is followed by the missed
  updates; recovered=false by a snapshot: a *fallback*, counted apart when
  the snapshot's epoch differs from the one the client had (the collector
  restarted) and when it is the same epoch (the bridge no longer held them).
- `digest()` is a hash of the state; `History` keeps the reference client's
  digest at every position it passed through, so any client's final state can
  be compared with the reference's state at the same position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from metrics_bridge.v1 import bridge_pb2, metrics_pb2

__all__ = ["ChannelView", "History", "Position"]

Position = tuple[int, int]


@dataclass
class ChannelView:
    channel: str
    position: Position | None = None
    state: dict[int, float | bytes] = field(default_factory=dict)
    gaps: int = 0
    updates: int = 0
    snapshots: int = 0
    resumes: int = 0
    recovered: int = 0
    fallbacks_new_epoch: int = 0
    fallbacks_same_epoch: int = 0
    history: History | None = None
    _awaiting_fallback: Position | None = None
    _broken: bool = False
    problems: list[str] = field(default_factory=list)

    def resume_from(self) -> Position | None:
        return None if self._broken else self.position

    def take(self, message: bridge_pb2.ServerMessage) -> None:
        if message.channel != self.channel:
            return
        body = message.WhichOneof("body")
        if body == "subscribed":
            self._subscribed(message.subscribed)
        elif body == "snapshot":
            self._snapshot(message.snapshot)
        elif body == "update":
            self._update(message.update, message.first_seq)

    def _subscribed(self, ack: bridge_pb2.Subscribed) -> None:
        if self.position is None or self._broken:
            return
        self.resumes += 1
        if ack.recovered:
            self.recovered += 1
        else:
            self._awaiting_fallback = self.position

    def _snapshot(self, snapshot: metrics_pb2.Snapshot) -> None:
        before = self._awaiting_fallback
        if before is not None:
            if snapshot.epoch == before[0]:
                self.fallbacks_same_epoch += 1
            else:
                self.fallbacks_new_epoch += 1
            self._awaiting_fallback = None
        self.snapshots += 1
        self.state = {d.id: 0.0 for d in snapshot.series}
        self._values(snapshot.values)
        self.position = (snapshot.epoch, snapshot.seq)
        self._broken = False
        self._record()

    def _update(self, update: metrics_pb2.Update, first_seq: int = 0) -> None:
        if self._broken:
            return
        if self.position != (update.epoch, (first_seq or update.seq) - 1):
            self.gaps += 1
            if len(self.problems) < 5:
                self.problems.append(
                    f"{self.channel}: update {(update.epoch, update.seq)} after {self.position}"
                )
            self._broken = True
            return
        self.updates += 1
        for descriptor in update.added:
            self.state.setdefault(descriptor.id, 0.0)
        self._values(update.values)
        for series_id in update.removed:
            self.state.pop(series_id, None)
        self.position = (update.epoch, update.seq)
        self._record()

    def _values(self, values: metrics_pb2.Values) -> None:
        for series_id, number in zip(values.ids, values.numbers, strict=False):
            self.state[series_id] = number
        for item in values.histograms:
            self.state[item.id] = item.histogram.SerializeToString(deterministic=True)
        for series_id, delta in zip(values.delta_ids, values.deltas, strict=False):
            held = self.state.get(series_id, 0.0)
            self.state[series_id] = (held if isinstance(held, float) else 0.0) + delta

    def digest(self) -> int:
        return hash(tuple(sorted(self.state.items())))

    def _record(self) -> None:
        if self.history is not None and self.position is not None:
            self.history.digests[self.position] = self.digest()


@dataclass
class History:
    """The reference client's state digest at each position it passed through."""

    digests: dict[Position, int] = field(default_factory=dict)

    def check(self, view: ChannelView) -> bool | None:
        """True/False: the view's final state equals/differs from the reference's
        at that position; None when the reference never stood there."""
        if view.position is None:
            return None
        expected = self.digests.get(view.position)
        return None if expected is None else expected == view.digest()
