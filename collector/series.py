"""What a series is, independent of any wire: the values the sampler, Push and
OTLP produce and `SourceState` stores.

A histogram value is explicit (`HistogramData`) or exponential
(`ExponentialHistogramData`, from OTLP: held natively so deltas add exactly,
sent as explicit buckets).

A series is identified by its name plus its labels sorted by label name
(`SeriesKey`). A `SeriesSample` sets one series' value (or removes it); its
kind, unit, description and start time form the series' descriptor, and a
change to any of them re-declares the series on the wire.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, overload

from collector.exponential import ExponentialHistogramData, merged_extreme
from metrics_bridge.v1 import metrics_pb2

__all__ = [
    "COUNTER",
    "GAUGE",
    "HISTOGRAM",
    "Descriptor",
    "ExponentialHistogramData",
    "HistogramData",
    "Labels",
    "NumberBatch",
    "SeriesKey",
    "SeriesSample",
    "Value",
    "same_value",
]

Labels = tuple[tuple[str, str], ...]

GAUGE = metrics_pb2.METRIC_KIND_GAUGE
COUNTER = metrics_pb2.METRIC_KIND_COUNTER
HISTOGRAM = metrics_pb2.METRIC_KIND_HISTOGRAM


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """Hashed once: keys are looked up several times per sample on the Push path."""

    name: str
    labels: Labels = ()
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.name, self.labels)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        """Compared on every lookup by an equal key that is another object."""
        if self is other:
            return True
        if not isinstance(other, SeriesKey):
            return NotImplemented
        return self._hash == other._hash and self.name == other.name and self.labels == other.labels

    @classmethod
    def of(cls, name: str, labels: Iterable[tuple[str, str]] = ()) -> SeriesKey:
        return cls(name, tuple(sorted(labels)))


@dataclass(frozen=True, slots=True)
class HistogramData:
    """Explicit-bucket histogram: len(counts) == len(bounds) + 1."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    count: int
    sum: float
    min: float | None = None
    max: float | None = None

    def to_proto(self) -> metrics_pb2.Histogram:
        h = metrics_pb2.Histogram(
            bounds=self.bounds, counts=self.counts, count=self.count, sum=self.sum
        )
        if self.min is not None:
            h.min = self.min
        if self.max is not None:
            h.max = self.max
        return h

    @classmethod
    def from_proto(cls, h: metrics_pb2.Histogram) -> HistogramData:
        return cls(
            bounds=tuple(h.bounds),
            counts=tuple(h.counts),
            count=h.count,
            sum=h.sum,
            min=h.min if h.HasField("min") else None,
            max=h.max if h.HasField("max") else None,
        )

    @classmethod
    def from_exponential(cls, e: ExponentialHistogramData) -> HistogramData:
        """The explicit-bucket form of an exponential histogram (collector.exponential)."""
        bounds, counts = e.to_explicit()
        return cls(bounds, counts, e.count, e.sum, e.min, e.max)

    def plus(self, other: HistogramData) -> HistogramData:
        """The sum of two histograms with the same bounds (delta accumulation)."""
        return HistogramData(
            bounds=self.bounds,
            counts=tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            count=self.count + other.count,
            sum=self.sum + other.sum,
            min=merged_extreme(min, self.min, other.min),
            max=merged_extreme(max, self.max, other.max),
        )


Value = float | HistogramData | ExponentialHistogramData
"""Exponential histograms are held natively and travel as explicit ones."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    kind: metrics_pb2.MetricKind.ValueType
    unit: str = ""
    description: str = ""
    start_time_unix_ms: int = 0


class SeriesSample(NamedTuple):
    """One value of one series. `remove` announces the series gone instead;
    `accumulate` adds the value to the series' current one (OTLP delta sums).

    A named tuple: one is made per pushed sample, a quarter of a frozen dataclass's cost."""

    key: SeriesKey
    descriptor: Descriptor
    value: Value | None = None
    remove: bool = False
    accumulate: bool = False


class NumberBatch(Sequence[SeriesSample]):
    """A batch of numbers for series seen before in this order (a Push call's
    template): keys and descriptors are shared tuples, the numbers are new.

    It reads as the samples it stands for, so any consumer of samples takes
    it; `SourceState.apply` also recognises it and, while its series are
    unchanged, sets the numbers without looking each series up."""

    __slots__ = ("descriptors", "keys", "numbers")

    def __init__(
        self,
        keys: tuple[SeriesKey, ...],
        descriptors: tuple[Descriptor, ...],
        numbers: tuple[float, ...],
    ) -> None:
        self.keys = keys
        self.descriptors = descriptors
        self.numbers = numbers

    def __len__(self) -> int:
        return len(self.numbers)

    @overload
    def __getitem__(self, index: int) -> SeriesSample: ...
    @overload
    def __getitem__(self, index: slice) -> list[SeriesSample]: ...
    def __getitem__(self, index: int | slice) -> SeriesSample | list[SeriesSample]:
        if isinstance(index, slice):
            return list(self)[index]
        return SeriesSample(self.keys[index], self.descriptors[index], self.numbers[index])

    def __iter__(self) -> Iterator[SeriesSample]:
        return map(SeriesSample, self.keys, self.descriptors, self.numbers)


def same_value(a: Value, b: Value) -> bool:
    """Equality that treats NaN as equal to NaN, so an unchanged NaN is not re-sent."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b
