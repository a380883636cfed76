"""A channel's recent updates and the state at their start, for resume and history.

Rules:
- `SourceState` is one source's series and values at one position; applying an
  Update to it is the one place values are folded (the channel's latest state
  and the history's start state both use it).
- `HistoryRing` holds the last update frames, contiguous up to the channel's
  position: at most `window` of them, at most `channel_bytes` bytes, and
  within the bridge-wide `HistoryBudget`. The state at the ring's start is
  made only when history is asked for (a Snapshot at the ring's start, one
  encoding per start position however many subscribers ask): the ring keeps
  a base state and the updates that left the ring by its count since then
  (`pending`, at most `checkpoint_every` of them, outside the ring's bytes),
  folded in when needed or when there are more. Updates that leave for
  bytes (the channel's or the budget's) are folded in at once, so nothing
  the byte bounds released stays held.
- The base moves forward without folding when the ring's start reaches a
  checkpoint: a copy of the channel's latest state taken every
  `checkpoint_every` updates (a quarter of the window), for a source of at
  most `CHECKPOINT_SERIES` series, whose copy costs less than folding that
  many updates. A larger source folds every update that leaves the ring.
- Bytes count the frames' wire length; the budget is shared by every channel
  of a bridge and a channel over it gives up its own oldest updates.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from bridge.frame import Frame, FrameKind, make_frame
from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2

__all__ = [
    "CHECKPOINT_SERIES",
    "HistoryBudget",
    "HistoryLimits",
    "HistoryRing",
    "SeriesChanges",
    "SourceState",
    "ValuesRun",
    "update_of",
]

CHECKPOINT_SERIES = 1000
"""The most series a channel's state may hold to be copied as a checkpoint."""


class ValuesRun:
    """Consecutive updates whose one field (`Values.ids` or `delta_ids`) named the same
    series, in the same order: those ids and the last such update's seq."""

    __slots__ = ("ids", "seq")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.seq = 0


class SeriesChanges:
    """Per series, the seq of the last update that changed it, so a merge reads no update again.

    `values`: the last update that set the series' value (number, delta or
    histogram) or declared it; `added`: that declared it; `removed`: that
    removed it. So the series some update after `seq` changed are those
    noted after `seq`, exactly what folding those updates would find.

    A source that sends the same series update after update costs one list
    comparison per field: each of `numbers` and `deltas` holds the run of
    updates whose field named the same ids, noted in `values` only when the
    run ends (`note`).

    Entries at or before the ring's start serve no merge: `forget_until`
    drops them, which the channel does whenever the entries have doubled
    since it last did, so they stay within twice the series the held
    updates name, plus a floor, and the two runs' lists.
    """

    __slots__ = ("added", "deltas", "numbers", "removed", "values")

    def __init__(self) -> None:
        self.values: dict[int, int] = {}
        self.added: dict[int, int] = {}
        self.removed: dict[int, int] = {}
        self.numbers = ValuesRun()
        self.deltas = ValuesRun()

    def __len__(self) -> int:
        return len(self.values) + len(self.added) + len(self.removed)

    def clear(self) -> None:
        self.values.clear()
        self.added.clear()
        self.removed.clear()
        self.numbers = ValuesRun()
        self.deltas = ValuesRun()

    def note(self, run: ValuesRun, ids: list[int], seq: int) -> None:
        """Update `seq`'s field named `ids`: `run` goes on if they are its ids; else it
        ends (its ids noted at its seq, unless noted later) and one starts at `seq`."""
        if ids == run.ids:
            run.seq = seq
            return
        at, values = run.seq, self.values
        get = values.get
        values.update([(i, at) for i in run.ids if get(i, 0) < at])
        run.ids, run.seq = ids, seq

    def forget_until(self, seq: int) -> None:
        """Drop what updates at or before `seq` noted."""
        self.values = {i: at for i, at in self.values.items() if at > seq}
        self.added = {i: at for i, at in self.added.items() if at > seq}
        self.removed = {i: at for i, at in self.removed.items() if at > seq}
        for run in (self.numbers, self.deltas):
            if run.seq <= seq:
                run.ids, run.seq = [], 0

    def since(self, seq: int) -> tuple[list[int], list[int], list[int]]:
        """(added, changed, removed): sorted ids noted by the updates after `seq`."""
        changed = {i for i, at in self.values.items() if at > seq}
        for run in (self.numbers, self.deltas):
            if run.seq > seq:
                changed.update(run.ids)
        return (
            sorted([i for i, at in self.added.items() if at > seq]),
            sorted(changed),
            sorted([i for i, at in self.removed.items() if at > seq]),
        )


@dataclass
class SourceState:
    """Series and values of one source at (epoch, seq)."""

    epoch: int = 0
    seq: int = 0
    time_unix_ms: int = 0
    series: dict[int, metrics_pb2.SeriesDescriptor] = field(default_factory=dict)
    numbers: dict[int, float] = field(default_factory=dict)
    histograms: dict[int, metrics_pb2.Histogram] = field(default_factory=dict)

    @classmethod
    def of_snapshot(cls, snapshot: metrics_pb2.Snapshot) -> SourceState:
        values = snapshot.values
        return cls(
            snapshot.epoch,
            snapshot.seq,
            snapshot.time_unix_ms,
            {d.id: d for d in snapshot.series},
            dict(zip(values.ids, values.numbers, strict=False)),
            {h.id: h.histogram for h in values.histograms},
        )

    def copy(self) -> SourceState:
        return SourceState(
            self.epoch,
            self.seq,
            self.time_unix_ms,
            dict(self.series),
            dict(self.numbers),
            dict(self.histograms),
        )

    def apply(self, update: metrics_pb2.Update, changes: SeriesChanges | None = None) -> None:
        """Fold an update that continues this state (the caller checked its position),
        noting in `changes` (if given) which series it changed.

        Reading a field of a parsed message costs as much as a short Python
        call, and iterating a repeated one several times more than a list:
        each field is read once, empty ones are skipped by their length, and
        numbers are iterated as slices (lists made in C)."""
        seq = self.seq = update.seq
        self.time_unix_ms = update.time_unix_ms
        added = update.added
        if len(added):
            for descriptor in added:
                self.series[descriptor.id] = descriptor
            if changes is not None:
                declared = dict.fromkeys([d.id for d in added], seq)
                changes.added.update(declared)
                changes.values.update(declared)
        values = update.values
        numbers = self.numbers
        ids = values.ids
        if len(ids):
            id_list = ids[:]
            numbers.update(zip(id_list, values.numbers[:], strict=False))
            if changes is not None:
                changes.note(changes.numbers, id_list, seq)
        delta_ids = values.delta_ids
        if len(delta_ids):
            get = numbers.get
            id_list = delta_ids[:]
            for series_id, delta in zip(id_list, values.deltas[:], strict=False):
                numbers[series_id] = get(series_id, 0.0) + delta
            if changes is not None:
                changes.note(changes.deltas, id_list, seq)
        histograms = values.histograms
        if len(histograms):
            for item in histograms:
                self.histograms[item.id] = item.histogram
                if changes is not None:
                    changes.values[item.id] = seq
        removed = update.removed
        if len(removed):
            for series_id in removed:
                self.series.pop(series_id, None)
                numbers.pop(series_id, None)
                self.histograms.pop(series_id, None)
            if changes is not None:
                changes.removed.update(dict.fromkeys(removed, seq))

    def snapshot(self, source: str, kind: metrics_pb2.SourceKind.ValueType) -> metrics_pb2.Snapshot:
        snapshot = metrics_pb2.Snapshot(
            source=source,
            kind=kind,
            epoch=self.epoch,
            seq=self.seq,
            time_unix_ms=self.time_unix_ms,
        )
        snapshot.series.extend(self.series[i] for i in sorted(self.series))
        ids = sorted(self.numbers)
        snapshot.values.ids.extend(ids)
        snapshot.values.numbers.extend(self.numbers[i] for i in ids)
        for series_id in sorted(self.histograms):
            snapshot.values.histograms.add(id=series_id, histogram=self.histograms[series_id])
        return snapshot


def update_of(frame: Frame) -> metrics_pb2.Update:
    """The Update an update frame carries (its payload is a ServerMessage)."""
    return bridge_pb2.ServerMessage.FromString(frame.payload).update


class HistoryBudget:
    """Bytes of history held by every channel of one bridge, against one limit."""

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.used = 0

    @property
    def over(self) -> bool:
        return self.used > self.total_bytes


@dataclass(frozen=True, slots=True)
class HistoryLimits:
    """How much a channel holds: updates and bytes per channel, and the shared budget."""

    window: int
    channel_bytes: int
    budget: HistoryBudget

    @classmethod
    def unbounded(cls, window: int) -> HistoryLimits:
        """`window` updates, bounded by nothing else (tests, tools)."""
        return cls(window, 1 << 62, HistoryBudget(1 << 62))


class HistoryRing:
    """The last updates of one channel, and the state just before the first of them."""

    def __init__(self, limits: HistoryLimits, start: SourceState) -> None:
        self.window = limits.window
        self.channel_bytes = limits.channel_bytes
        self.budget = limits.budget
        self.checkpoint_every = max(1, limits.window // 4)
        self.frames: deque[Frame] = deque()
        self.bytes = 0
        self._base = start
        self._pending: deque[Frame] = deque()
        """Updates after `_base` that left the ring, not yet folded in."""
        self._checkpoints: deque[SourceState] = deque()
        self._since_checkpoint = 0
        self._start_frame: Frame | None = None

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def start(self) -> SourceState:
        """The state just before the first held update (folded in now if pending)."""
        self._fold_pending()
        return self._base

    def _fold_pending(self) -> None:
        base, pending = self._base, self._pending
        while pending:
            base.apply(update_of(pending.popleft()))

    @property
    def start_position(self) -> tuple[int, int]:
        """(epoch, seq) of the ring's start, without making its state."""
        seq = self._pending[-1].seq if self._pending else self._base.seq
        return self._base.epoch, seq

    def reset(self, start: SourceState) -> None:
        """Start over at `start` (a new snapshot that does not continue the ring)."""
        self.budget.used -= self.bytes
        self.frames.clear()
        self.bytes = 0
        self._base = start
        self._pending.clear()
        self._checkpoints.clear()
        self._since_checkpoint = 0
        self._start_frame = None

    def append(self, frame: Frame, latest: SourceState) -> None:
        """Hold `frame`, the update that brought the channel to `latest`.

        Called once per update: sizes are `len(frame.wire)`, not `Frame.__len__`."""
        frames, budget = self.frames, self.budget
        frames.append(frame)
        size = len(frame.wire)
        self.bytes += size
        budget.used += size
        self._since_checkpoint += 1
        if self._since_checkpoint >= self.checkpoint_every:
            self._since_checkpoint = 0
            if len(latest.series) <= CHECKPOINT_SERIES:
                self._checkpoints.append(latest.copy())
        while len(frames) > self.window:
            self._drop_oldest()
        if self.bytes > self.channel_bytes or budget.over:
            while frames and (self.bytes > self.channel_bytes or budget.over):
                self._drop_oldest()
            self._fold_pending()  # dropped for bytes: nothing they released stays held

    def _drop_oldest(self) -> None:
        frame = self.frames.popleft()
        size = len(frame.wire)
        self.bytes -= size
        self.budget.used -= size
        self._pending.append(frame)
        self._start_frame = None
        checkpoints, pending = self._checkpoints, self._pending
        while checkpoints and checkpoints[0].seq <= frame.seq:
            checkpoint = checkpoints.popleft()
            if checkpoint.seq >= self._base.seq:
                self._base = checkpoint
                while pending and pending[0].seq <= checkpoint.seq:
                    pending.popleft()
        if len(pending) > self.checkpoint_every:
            self._fold_pending()

    def holds_after(self, seq: int) -> bool:
        """Whether the ring holds every update after `seq`."""
        start_seq = self.start_position[1]
        return start_seq <= seq <= start_seq + len(self.frames)

    def after(self, seq: int) -> tuple[Frame, ...] | None:
        """Every held update after `seq`, or None when the ring no longer holds them all."""
        if not self.holds_after(seq):
            return None
        frames = self.frames
        return tuple(frames[i] for i in range(seq - self.start_position[1], len(frames)))

    def start_frame(self, name: str, prefix: bytes, source: str, kind: int) -> Frame:
        """A Snapshot at the ring's start, encoded once per start position."""
        if self._start_frame is None:
            start = self.start
            snapshot = start.snapshot(source, kind)  # type: ignore[arg-type]
            event = collector_pb2.CollectorEvent(snapshot=snapshot).SerializeToString()
            self._start_frame = make_frame(
                FrameKind.SNAPSHOT,
                prefix,
                event,
                channel=name,
                epoch=start.epoch,
                seq=start.seq,
            )
        return self._start_frame
