"""One source's state and its stream positions. Pure: no asyncio, no clock.

Rules:
- A source starts at a random 64-bit `epoch` and seq 0. Every `apply` that
  changes anything produces exactly one Update with seq + 1; an `apply` that
  changes nothing produces none and leaves the position alone.
- Series are interned: the first time a (name, labels) appears it gets the next
  id; ids are never reused within an epoch, so a series that is removed and
  comes back gets a new id.
- An Update carries only what changed: series introduced or re-declared
  (descriptor changed, e.g. a counter's new start time) in `added`, changed
  values in `values`, gone series in `removed`. Unchanged series cost nothing.
- Each Update is encoded once, as `CollectorEvent` bytes, and kept in a ring of
  the last `resume_window` updates, fewer if they would exceed
  `resume_bytes` (oldest go first); every subscriber gets those same bytes.
  Subscribers that take deltas get the `compact` form instead, encoded once
  too: numbers that changed by a whole number (both values integers below
  2^53) as Values.delta_ids/deltas. The ring keeps both, so resume is exact
  in either form.
- With `encode_plain` off (the hub turns it off while every subscriber
  takes deltas), an update whose compact form differs is encoded only in
  that form (`latest` is None; the ring holds it alone): one encoding per
  update instead of two. A subscriber in full that resumes across such an
  update, or would be replayed one, gets a snapshot instead.
- A Snapshot (also `CollectorEvent` bytes) is built on demand and cached until
  the next Update: many resyncing subscribers cost one encoding per seq.
  Each series keeps its descriptor encoded (until it is re-declared), so a
  Snapshot joins those bytes and encodes only the values: the same bytes
  protobuf would give, at a fraction of the cost for a large source.
- `resume(epoch, seq)`: the updates after seq if the ring holds all of them in
  this epoch, else "send a snapshot".
- Checkpoints (with a ring): the encoded Snapshot at some seqs, each one the
  `snapshot()` bytes of that seq (no extra encoding if a subscriber asked for
  it too). One is taken at seq 0 and after an update once the updates since
  the newest one reach half the ring's length (while the ring fills, at
  seqs 1, 2, 3, 5, 9, 17, ...: each doubles). So the newest is at most half the ring behind and
  the ring holds every update after it; one before the current seq stays
  held unless the ring just shrank by more than half (the byte budget). One
  the ring no longer continues is dropped, and at most `MAX_CHECKPOINTS` are
  kept (over that the second oldest goes: the oldest replays furthest).
  Cost: one Snapshot encoding per half ring of updates, and up to
  `MAX_CHECKPOINTS` snapshots held besides the ring's bytes.
- `replay(limit)`: the oldest checkpoint at most `limit` updates back and
  every update after it (for a subscriber that holds no position: it starts
  that far back, so it holds those updates for its own clients); None when
  only the current state qualifies.
- Every series belongs to the instance whose batch last set it (`apply`'s
  `instance`, "" when the sender names none): `remove_instance` removes
  exactly that instance's series in one Update (an instance that stopped
  sending, while its source's other instances go on).
- Limits are checked before anything moves: a batch that would take the source
  over `max_series` raises `SeriesLimitExceeded` and changes nothing.
- A batch names each series at most once (Push validation refuses repeats;
  OTLP translation and the host sampler build batches keyed by series): each
  sample's series is looked up once, before the batch is applied.
- A `NumberBatch` (a Push call's template matched: the same series as a
  batch before, only numbers new) is applied as its samples would be, but
  its series are looked up once per layout: while no series of the source
  is added, removed or re-declared, the next one only compares and sets
  numbers. Anything else about it goes the general way.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import secrets
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

from collector.errors import SeriesLimitExceeded
from collector.event_batch import varint
from collector.series import (
    Descriptor,
    ExponentialHistogramData,
    HistogramData,
    NumberBatch,
    SeriesKey,
    SeriesSample,
    Value,
    same_value,
)
from metrics_bridge.v1 import collector_pb2, metrics_pb2

__all__ = [
    "MAX_CHECKPOINTS",
    "RESUME_BYTES",
    "Position",
    "Replay",
    "ResumeDecision",
    "SourceState",
    "random_epoch",
]

RESUME_BYTES = 16 * 1024 * 1024
"""Per source, the most encoded updates the resume ring holds."""
MAX_CHECKPOINTS = 3
"""Per source, the most checkpoint snapshots kept (a full ring spans at most three)."""
MAX_BINDINGS = 16
"""Per source, the most NumberBatch layouts kept looked up (one per pushing call)."""


def random_epoch() -> int:
    return secrets.randbits(64)


class Position(NamedTuple):
    """A source's (epoch, seq); a named tuple, as one is made per pushed batch."""

    epoch: int
    seq: int


@dataclass(frozen=True, slots=True)
class ResumeDecision:
    """recovered: `updates` (possibly none) bring the subscriber up to date with
    no gap; otherwise it needs a snapshot."""

    recovered: bool
    updates: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Replay:
    """The encoded Snapshot at `seq`, then the encoded updates seq + 1 .. the source's seq."""

    seq: int
    snapshot: bytes
    updates: tuple[bytes, ...]


@dataclass(slots=True)
class _Series:
    id: int
    key: SeriesKey
    descriptor: Descriptor
    value: Value
    encoded: bytes = b""
    """Its descriptor as Snapshot field `series` (tag, length, bytes); b"" until needed."""
    owner: str = ""
    """The instance whose batch set it last."""


class SourceState:
    def __init__(
        self,
        name: str,
        kind: metrics_pb2.SourceKind.ValueType,
        *,
        epoch: int | None = None,
        resume_window: int = 1024,
        resume_bytes: int = RESUME_BYTES,
        max_series: int = 10_000,
    ) -> None:
        self.name = name
        self.kind = kind
        self.epoch = random_epoch() if epoch is None else epoch
        self.seq = 0
        self.time_unix_ms = 0
        self.max_series = max_series
        self._series: dict[SeriesKey, _Series] = {}
        self._layout = 0
        """Counts changes to which series exist and their descriptors (see `_bound`)."""
        self._bindings: dict[int, tuple[tuple[SeriesKey, ...], int, list[_Series]]] = {}
        self._next_id = 1
        self._numbers = _UpdateMessage.kept(name, self.epoch)
        """The message of every Update that changes numbers only (see `_UpdateMessage`)."""
        self._ring: deque[tuple[int, bytes | None, bytes]] = deque(maxlen=max(resume_window, 0))
        self.encode_plain = True
        """Whether every update is encoded in full too (see the rules above)."""
        self.latest: bytes | None = b""
        """The latest Update in full (None when `encode_plain` was off and it differs
        from `compact`)."""
        self.compact = b""
        """The latest Update as sent to subscribers that take deltas (Values.delta_ids):
        the same bytes as `latest` when no value changed by a whole number."""
        self._ring_bytes = 0
        self._resume_bytes = resume_bytes
        self._snapshot: tuple[int, bytes] | None = None
        self._checkpoints: deque[tuple[int, bytes]] = deque()
        if self._ring.maxlen:
            self._checkpoints.append((0, self.snapshot()))

    @property
    def position(self) -> Position:
        return Position(self.epoch, self.seq)

    @property
    def checkpoint_seqs(self) -> tuple[int, ...]:
        """The seqs of the checkpoints held, oldest first."""
        return tuple(seq for seq, _ in self._checkpoints)

    @property
    def series_count(self) -> int:
        return len(self._series)

    def value(self, key: SeriesKey) -> Value | None:
        series = self._series.get(key)
        return None if series is None else series.value

    def apply(
        self,
        samples: Sequence[SeriesSample],
        now_unix_ms: int,
        *,
        replace: bool = False,
        instance: str = "",
    ) -> bytes | None:
        """Fold a batch in; returns the encoded Update event (`compact` when `latest`
        is None), or None if nothing changed.

        With `replace`, the batch is the source's whole state: series absent from
        it are removed (the host sampler works this way). The series the batch
        sets belong to `instance` from then on."""
        if type(samples) is NumberBatch and not replace:
            bound = self._bound(samples)
            if bound is not None:
                return self._apply_numbers(bound, samples.numbers, now_unix_ms, instance)
        series = self._series
        currents = [series.get(sample.key) for sample in samples]
        self._check_limit(samples, currents, replace)
        added: list[metrics_pb2.SeriesDescriptor] = []
        histograms: list[tuple[int, Value]] = []
        changed = _ChangedNumbers()
        removed: list[int] = []
        for sample, current in zip(samples, currents, strict=True):
            value = sample.value
            # The common case first: a plain number for a known series, same descriptor.
            if type(value) is float and current is not None and not sample.accumulate:
                if current.descriptor is not sample.descriptor:
                    if current.descriptor != sample.descriptor:
                        self._set(sample, current, instance, added, histograms, changed)
                        continue
                    current.descriptor = sample.descriptor  # equal: `is` from now on
                current.owner = instance
                old = current.value
                if value == old or (value != value and old != old):  # NaN equals NaN here
                    continue
                current.value = value
                changed.add(current.id, value, old)
                continue
            if sample.remove:
                if current is not None:
                    del series[sample.key]
                    removed.append(current.id)
                    self._layout += 1
                continue
            self._set(sample, current, instance, added, histograms, changed)
        if replace:
            seen = {sample.key for sample in samples}
            for key in [k for k in series if k not in seen]:
                removed.append(series.pop(key).id)
                self._layout += 1
        return self._publish(added, removed, histograms, now_unix_ms, changed)

    def _bound(self, batch: NumberBatch) -> list[_Series] | None:
        """The series of a NumberBatch, looked up once per layout: valid while no
        series is added, removed or re-declared; None if one is missing or differs
        (the batch then takes the general path, which adds or re-declares it)."""
        keys = batch.keys
        entry = self._bindings.get(id(keys))
        if entry is not None and entry[0] is keys and entry[1] == self._layout:
            return entry[2]
        found = []
        for key, descriptor in zip(keys, batch.descriptors, strict=True):
            current = self._series.get(key)
            if current is None or current.descriptor != descriptor:
                return None
            found.append(current)
        if len(self._bindings) >= MAX_BINDINGS:
            self._bindings.clear()
        self._bindings[id(keys)] = (keys, self._layout, found)  # holds keys: id stays unique
        return found

    def _apply_numbers(
        self, series: list[_Series], numbers: Sequence[float], now_unix_ms: int, instance: str
    ) -> bytes | None:
        """`apply` for numbers of bound series (gauges and counters, all known):
        what the general path does for them, without a lookup or a check each."""
        changed = _ChangedNumbers()
        ids, news, olds = changed.ids, changed.numbers, changed.olds
        for current, new in zip(series, numbers, strict=True):
            current.owner = instance
            old = current.value
            if new != old:  # numbers here are finite: no NaN to equal
                current.value = new
                ids.append(current.id)
                news.append(new)
                olds.append(old)
        return self._encode(self._numbers, now_unix_ms, changed) if ids else None

    def _set(
        self,
        sample: SeriesSample,
        current: _Series | None,
        instance: str,
        added: list[metrics_pb2.SeriesDescriptor],
        histograms: list[tuple[int, Value]],
        changed: _ChangedNumbers,
    ) -> None:
        """Set a series that is new, re-declared, a histogram or accumulated."""
        assert sample.value is not None
        value, descriptor = sample.value, sample.descriptor
        if isinstance(value, int):  # a number is a float from here on
            value = float(value)
        previous = None if current is None else current.value
        if sample.accumulate and current is not None:
            value, descriptor = _accumulate(current, sample)
        if current is None:
            current = _Series(self._next_id, sample.key, descriptor, value, owner=instance)
            self._next_id += 1
            self._series[sample.key] = current
            self._layout += 1
            added.append(_descriptor(current))
            previous = None
        elif current.descriptor != descriptor:
            self._layout += 1
            current.descriptor = descriptor
            current.encoded = b""
            current.value = value
            current.owner = instance
            added.append(_descriptor(current))
            previous = None
        else:
            current.owner = instance
            if same_value(current.value, value):
                return
            current.value = value
        if isinstance(value, float):
            changed.add(current.id, value, previous)
        else:
            histograms.append((current.id, value))  # in full in both forms

    def remove_instance(self, instance: str, now_unix_ms: int) -> bytes | None:
        """Remove every series `instance` set last; the Update, or None if it had none."""
        gone = [key for key, series in self._series.items() if series.owner == instance]
        removed = [self._series.pop(key).id for key in gone]
        self._layout += bool(removed)
        return self._publish([], removed, [], now_unix_ms, _ChangedNumbers())

    def instances(self) -> set[str]:
        """The instances that own at least one series."""
        return {series.owner for series in self._series.values()}

    def _publish(
        self,
        added: list[metrics_pb2.SeriesDescriptor],
        removed: list[int],
        histograms: list[tuple[int, Value]],
        now_unix_ms: int,
        changed: _ChangedNumbers,
    ) -> bytes | None:
        """Encode the Update: numbers alone in the source's kept message, anything
        else in a new one."""
        if not added and not removed and not histograms:
            return self._encode(self._numbers, now_unix_ms, changed) if changed.ids else None
        event = collector_pb2.CollectorEvent()
        update = event.update
        update.source = self.name
        update.epoch = self.epoch
        if added:
            update.added.extend(added)
        if removed:
            update.removed.extend(removed)
        if histograms:
            values = update.values
            for series_id, value in histograms:
                _add_value(values, series_id, value)
        return self._encode(_UpdateMessage(event), now_unix_ms, changed)

    def _encode(self, message: _UpdateMessage, now_unix_ms: int, changed: _ChangedNumbers) -> bytes:
        """Encode `message` as the next Update with `changed` numbers, and its compact form
        if a number changed by a whole number: one message, filled twice (the full form
        skipped without `encode_plain`)."""
        self.seq += 1
        self.time_unix_ms = now_unix_ms
        update = message.update
        update.seq = self.seq
        update.time_unix_ms = now_unix_ms
        kept_ids, kept_numbers, delta_ids, deltas = (
            changed.compact() if changed.ids else ([], [], [], [])
        )
        encoded: bytes | None = None
        if not delta_ids or self.encode_plain:
            encoded = message.fill(changed.ids, changed.numbers, (), ())
        compact = encoded
        if delta_ids:
            compact = message.fill(kept_ids, kept_numbers, delta_ids, deltas)
        assert compact is not None
        self.latest = encoded
        self.compact = compact
        self._remember(encoded, compact)
        return compact if encoded is None else encoded

    def _check_limit(
        self,
        samples: Sequence[SeriesSample],
        currents: Sequence[_Series | None],
        replace: bool,
    ) -> None:
        """`check_limit` from the series already looked up: exact when the batch
        names no series twice (validation ensures it for Push), else the full check."""
        if replace:
            self.check_limit(samples, replace)
            return
        count = len(self._series)
        for sample, current in zip(samples, currents, strict=True):
            if sample.remove:
                count -= current is not None
            else:
                count += current is None
        if count > self.max_series:
            self.check_limit(samples, replace)

    def check_limit(self, samples: Sequence[SeriesSample], replace: bool) -> None:
        if replace:
            count = len({s.key for s in samples if not s.remove})
        else:
            new = {s.key for s in samples if not s.remove and s.key not in self._series}
            gone = {s.key for s in samples if s.remove and s.key in self._series}
            count = len(self._series) + len(new) - len(gone)
        if count > self.max_series:
            raise SeriesLimitExceeded(
                f"source {self.name!r} would hold {count} series, over its limit of "
                f"{self.max_series}; the batch was not applied"
            )

    def _remember(self, encoded: bytes | None, compact: bytes) -> None:
        if not self._ring.maxlen:
            return
        if len(self._ring) == self._ring.maxlen:
            self._forget_oldest()
        self._ring.append((self.seq, encoded, compact))
        self._ring_bytes += _held(encoded, compact)
        while self._ring_bytes > self._resume_bytes and len(self._ring) > 1:
            self._forget_oldest()
        self._checkpoint()

    def _checkpoint(self) -> None:
        """Drop the checkpoints the ring no longer continues; take one if due."""
        checkpoints, ring = self._checkpoints, self._ring
        reach = ring[0][0] - 1
        while checkpoints and checkpoints[0][0] < reach:
            checkpoints.popleft()
        if checkpoints and self.seq - checkpoints[-1][0] < max(1, len(ring) // 2):
            return
        checkpoints.append((self.seq, self.snapshot()))
        if len(checkpoints) > MAX_CHECKPOINTS:
            del checkpoints[1]

    def _forget_oldest(self) -> None:
        _, encoded, compact = self._ring.popleft()
        self._ring_bytes -= _held(encoded, compact)

    def snapshot(self) -> bytes:
        """The current state as encoded `CollectorEvent(snapshot=...)`, cached per seq."""
        if self._snapshot is not None and self._snapshot[0] == self.seq:
            return self._snapshot[1]
        head = metrics_pb2.Snapshot(
            source=self.name,
            kind=self.kind,
            epoch=self.epoch,
            seq=self.seq,
            time_unix_ms=self.time_unix_ms,
        ).SerializeToString()
        parts = [head]
        ids: list[int] = []
        numbers: list[float] = []
        histograms: list[tuple[int, Value]] = []
        for series in self._series.values():
            if not series.encoded:
                data = _descriptor(series).SerializeToString()
                series.encoded = _SERIES_TAG + varint(len(data)) + data
            parts.append(series.encoded)
            value = series.value
            if isinstance(value, (HistogramData, ExponentialHistogramData)):
                histograms.append((series.id, value))
            else:
                ids.append(series.id)
                numbers.append(value)
        values = metrics_pb2.Values(ids=ids, numbers=numbers)
        for series_id, value in histograms:
            _add_value(values, series_id, value)
        data = values.SerializeToString()
        parts += (_VALUES_TAG, varint(len(data)), data)
        body = b"".join(parts)
        encoded = _SNAPSHOT_TAG + varint(len(body)) + body
        self._snapshot = (self.seq, encoded)
        return encoded

    def resume(self, epoch: int, seq: int, deltas: bool = False) -> ResumeDecision:
        """`deltas`: the updates as the subscriber takes them (`compact` or not)."""
        if epoch != self.epoch or seq > self.seq:
            return ResumeDecision(recovered=False)
        if seq == self.seq:
            return ResumeDecision(recovered=True)
        if not self._ring or self._ring[0][0] > seq + 1:
            return ResumeDecision(recovered=False)
        updates = self._updates_after(seq, deltas)
        if updates is None:
            return ResumeDecision(recovered=False)
        return ResumeDecision(recovered=True, updates=updates)

    def replay(self, limit: int, deltas: bool = False) -> Replay | None:
        """The oldest checkpoint at most `limit` updates back whose updates since are
        all held in the subscriber's form (`compact` ones for `deltas`), with those
        updates; None if only the current state qualifies."""
        for seq, snapshot in self._checkpoints:
            if self.seq - seq > limit:
                continue
            if seq == self.seq:
                return None
            updates = self._updates_after(seq, deltas)
            if updates is not None:
                return Replay(seq, snapshot, updates)
        return None

    def _updates_after(self, seq: int, deltas: bool) -> tuple[bytes, ...] | None:
        """The ring's updates after `seq` in the subscriber's form; None if one of
        them was not encoded in full and the subscriber takes them so."""
        if deltas:
            return tuple(compact for s, _, compact in self._ring if s > seq)
        updates = tuple(data for s, data, _ in self._ring if s > seq)
        return None if None in updates else cast(tuple[bytes, ...], updates)

    def series_keys(self) -> Iterable[SeriesKey]:
        return self._series.keys()


_SNAPSHOT_TAG = b"\x52"  # CollectorEvent.snapshot = 10, length-delimited
_SERIES_TAG = b"\x32"  # Snapshot.series = 6, length-delimited
_VALUES_TAG = b"\x3a"  # Snapshot.values = 7, length-delimited


MAX_EXACT = 2.0**53
MAX_DELTA = 2**48
"""Larger changes cost as many bytes as a double: sent in full."""
_NEW_BOUND = 2.0**52
_DELTA_BOUND = 2.0**47
"""`compact()`'s bounds for its whole-list case: half the rule's, so `hypot` and `dist`
rounding never let a value over the rule's."""


class _ChangedNumbers:
    """The numbers an Update changes: in full (`ids`, `numbers`, with the values
    they replace in `olds`), and in `compact()` as subscribers that take deltas
    get them, where numbers that changed by a whole number are delta_ids/deltas
    and the others are kept in full.

    Both values must be integers below 2^53 in magnitude (previous + delta is
    then exact in a double), and the new one not -0.0 (0.0 + 0 would lose the sign)."""

    __slots__ = ("ids", "numbers", "olds")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.numbers: list[float] = []
        self.olds: list[Value | None] = []

    def add(self, series_id: int, new: float, old: Value | None) -> None:
        """Number `series_id` changed from `old` (None: it had none) to `new`."""
        self.ids.append(series_id)
        self.numbers.append(new)
        self.olds.append(old)

    def compact(self) -> tuple[list[int], list[float], list[int], list[int]]:
        """(kept ids, kept numbers, delta ids, deltas): the rule above, once per Update.

        Two common cases are decided for the whole list at once (C loops): every
        pair qualifies (all deltas), and no new value is a whole number (all
        kept); a mixed list goes number by number (`split`), whose answer is
        the same for every list (a property test checks it).

        All deltas: every value whole, no new one zero (-0.0 == 0.0), and two
        bounds with room for the rounding of `hypot` and `dist`: every new value
        below 2^52 and every difference below 2^47 in magnitude. Then each old
        value is below 2^53 too and each difference exact; lists beyond the
        bounds go number by number."""
        ids, news = self.ids, self.numbers
        olds = cast(list[float], self.olds)
        try:
            whole = all(map(float.is_integer, news + olds))
        except TypeError:  # an old value that is None (a new series)
            whole = False
        if (
            whole
            and all(news)
            and math.hypot(*news) < _NEW_BOUND
            and math.dist(news, olds) < _DELTA_BOUND
        ):
            return [], [], ids, list(map(float.__trunc__, map(operator.sub, news, olds)))
        if not whole and not any(map(float.is_integer, news)):
            return ids, news, [], []
        return self.split()

    def split(self) -> tuple[list[int], list[float], list[int], list[int]]:
        """`compact()` number by number: where the rule is written."""
        kept_ids: list[int] = []
        kept_numbers: list[float] = []
        delta_ids: list[int] = []
        deltas: list[int] = []
        for series_id, new, old in zip(self.ids, self.numbers, self.olds, strict=True):
            if (
                type(old) is float
                and old.is_integer()
                and new.is_integer()
                and -MAX_EXACT < old < MAX_EXACT
                and -MAX_EXACT < new < MAX_EXACT
                and (new or math.copysign(1.0, new) > 0)
                and -MAX_DELTA < int(new) - int(old) < MAX_DELTA
            ):
                delta_ids.append(series_id)
                deltas.append(int(new) - int(old))
            else:
                kept_ids.append(series_id)
                kept_numbers.append(new)
        return kept_ids, kept_numbers, delta_ids, deltas


class _UpdateMessage:
    """A CollectorEvent(update=...) and the repeated fields of its values, each looked
    up once: a lookup costs about as much as filling the field. A source keeps one
    for its updates that change numbers only, filled again for each (`kept`):
    a new message and its fields cost more than encoding it."""

    __slots__ = ("delta_ids", "deltas", "event", "held", "ids", "numbers", "update")

    def __init__(self, event: collector_pb2.CollectorEvent) -> None:
        self.event = event
        self.update = event.update
        values = self.update.values
        self.ids, self.numbers = values.ids, values.numbers
        self.delta_ids, self.deltas = values.delta_ids, values.deltas
        self.held = (False, False)
        """Whether ids (and numbers), delta_ids (and deltas) hold any."""

    @classmethod
    def kept(cls, source: str, epoch: int) -> _UpdateMessage:
        """A source's message with its name and epoch (neither ever changes) set once."""
        event = collector_pb2.CollectorEvent()
        event.update.source = source
        event.update.epoch = epoch
        return cls(event)

    def fill(
        self,
        ids: Sequence[int],
        numbers: Sequence[float],
        delta_ids: Sequence[int],
        deltas: Sequence[int],
    ) -> bytes:
        """The message encoded with these numbers in place of those it held. A field empty
        before and after is left alone: assigned, even nothing, it would mark `values`
        present (with no numbers, a new message's is absent)."""
        held_numbers, held_deltas = self.held
        if ids or held_numbers:
            self.ids[:] = ids
            self.numbers[:] = numbers
        if delta_ids or held_deltas:
            self.delta_ids[:] = delta_ids
            self.deltas[:] = deltas
        self.held = (bool(ids), bool(delta_ids))
        return self.event.SerializeToString()


def _held(encoded: bytes | None, compact: bytes) -> int:
    if encoded is None or compact is encoded:
        return len(compact)
    return len(encoded) + len(compact)


def _accumulate(current: _Series, sample: SeriesSample) -> tuple[Value, Descriptor]:
    """current + delta, keeping the series' start time; a kind, unit or bucket
    layout change starts the total over with the sample's own descriptor."""
    delta = sample.value
    assert delta is not None
    kept = dataclasses.replace(
        sample.descriptor, start_time_unix_ms=current.descriptor.start_time_unix_ms
    )
    if current.descriptor.kind != kept.kind or current.descriptor.unit != kept.unit:
        return delta, sample.descriptor
    if isinstance(current.value, float) and isinstance(delta, float):
        return current.value + delta, kept
    if (
        isinstance(current.value, HistogramData)
        and isinstance(delta, HistogramData)
        and current.value.bounds == delta.bounds
    ):
        return current.value.plus(delta), kept
    if isinstance(current.value, ExponentialHistogramData) and isinstance(
        delta, ExponentialHistogramData
    ):
        total = current.value.plus(delta)
        try:
            total.to_explicit()
        except OverflowError:  # merged boundaries beyond a double: start over
            return delta, sample.descriptor
        return total, kept
    return delta, sample.descriptor


def _descriptor(series: _Series) -> metrics_pb2.SeriesDescriptor:
    d = series.descriptor
    return metrics_pb2.SeriesDescriptor(
        id=series.id,
        name=series.key.name,
        labels=[metrics_pb2.Label(name=n, value=v) for n, v in series.key.labels],
        kind=d.kind,
        unit=d.unit,
        description=d.description,
        start_time_unix_ms=d.start_time_unix_ms,
    )


def _add_value(values: metrics_pb2.Values, series_id: int, value: Value) -> None:
    if isinstance(value, ExponentialHistogramData):
        value = HistogramData.from_exponential(value)
    if isinstance(value, HistogramData):
        values.histograms.append(
            metrics_pb2.HistogramValue(id=series_id, histogram=value.to_proto())
        )
    else:
        values.ids.append(series_id)
        values.numbers.append(value)
