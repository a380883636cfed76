"""OTLP exponential histograms, kept natively and sent as explicit buckets. Pure.

Rules:
- The collector holds an exponential histogram as OTLP defines it (scale,
  zero bucket, positive and negative buckets by index), so delta points add up
  exactly: two histograms are added at the smaller of their scales, and
  a sum wider than MAX_NATIVE_BUCKETS buckets on one side is downscaled (two
  neighbouring buckets merge into one: scale - 1) until it fits.
- On the wire it is an explicit-bucket Histogram (`to_explicit`): the bucket
  boundaries are the exponential ones, base**i with base = 2**(2**-scale),
  downscaled until there are at most `max_bounds` (128) bounds. Every count is
  kept (count, sum, min and max are exact); what is lost is resolution: a
  value is only known to lie in (base**i, base**(i+1)], so any estimate taken
  from a bucket (a quantile, say) is within a factor of `base` of the truth,
  a relative error of at most base - 1 (scale 3: 9.1 %, scale 4: 4.4 %,
  scale 5: 2.2 %). `relative_error(scale)` gives it.
- Negative buckets are [-base**(i+1), -base**i) in OTLP while explicit buckets
  include their upper bound: only a value exactly on a boundary can move to
  its neighbour.
- The zero bucket shares an explicit bucket with nothing else: it is the one
  between the highest negative and the lowest positive boundary.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "MAX_NATIVE_BUCKETS",
    "Buckets",
    "ExponentialHistogramData",
    "merged_extreme",
    "relative_error",
]

MAX_NATIVE_BUCKETS = 160
"""Per side, the most buckets a held exponential histogram keeps (the OTel SDK's default)."""

MIN_SCALE = -10


def relative_error(scale: int) -> float:
    """The most a bucket's estimate can be off, relative to the value: base - 1."""
    return float(2.0 ** (2.0**-scale) - 1)


@dataclass(frozen=True, slots=True)
class Buckets:
    """Counts of consecutive bucket indexes from `offset` on."""

    offset: int = 0
    counts: tuple[int, ...] = ()

    def trimmed(self) -> Buckets:
        counts = self.counts
        start = 0
        while start < len(counts) and counts[start] == 0:
            start += 1
        end = len(counts)
        while end > start and counts[end - 1] == 0:
            end -= 1
        if start == end:
            return Buckets()
        return Buckets(self.offset + start, counts[start:end])

    def downscaled(self, by: int) -> Buckets:
        """The same counts at scale - by: index i moves to i >> by."""
        if by <= 0 or not self.counts:
            return self
        merged: dict[int, int] = {}
        for i, c in enumerate(self.counts):
            index = (self.offset + i) >> by
            merged[index] = merged.get(index, 0) + c
        low, high = min(merged), max(merged)
        return Buckets(low, tuple(merged.get(i, 0) for i in range(low, high + 1)))

    def plus(self, other: Buckets) -> Buckets:
        if not self.counts:
            return other
        if not other.counts:
            return self
        low = min(self.offset, other.offset)
        high = max(self.offset + len(self.counts), other.offset + len(other.counts))
        out = [0] * (high - low)
        for b in (self, other):
            for i, c in enumerate(b.counts):
                out[b.offset - low + i] += c
        return Buckets(low, tuple(out))

    def width_at(self, scale_drop: int) -> int:
        if not self.counts:
            return 0
        return (
            ((self.offset + len(self.counts) - 1) >> scale_drop) - (self.offset >> scale_drop) + 1
        )


@dataclass(frozen=True, slots=True)
class ExponentialHistogramData:
    scale: int
    zero_count: int
    positive: Buckets
    negative: Buckets
    count: int
    sum: float
    min: float | None = None
    max: float | None = None
    zero_threshold: float = 0.0

    def normalized(self, max_buckets: int = MAX_NATIVE_BUCKETS) -> ExponentialHistogramData:
        """Empty edge buckets trimmed, downscaled until each side fits `max_buckets`."""
        positive, negative = self.positive.trimmed(), self.negative.trimmed()
        drop = 0
        while self.scale - drop > MIN_SCALE and (
            positive.width_at(drop) > max_buckets or negative.width_at(drop) > max_buckets
        ):
            drop += 1
        return _replace(
            self, self.scale - drop, positive.downscaled(drop), negative.downscaled(drop)
        )

    def plus(self, other: ExponentialHistogramData) -> ExponentialHistogramData:
        """The sum of two histograms (delta accumulation), at the smaller scale."""
        scale = min(self.scale, other.scale)
        a, b = self.at_scale(scale), other.at_scale(scale)
        return ExponentialHistogramData(
            scale=scale,
            zero_count=a.zero_count + b.zero_count,
            positive=a.positive.plus(b.positive),
            negative=a.negative.plus(b.negative),
            count=a.count + b.count,
            sum=a.sum + b.sum,
            min=merged_extreme(min, a.min, b.min),
            max=merged_extreme(max, a.max, b.max),
            zero_threshold=max(a.zero_threshold, b.zero_threshold),
        ).normalized()

    def at_scale(self, scale: int) -> ExponentialHistogramData:
        drop = self.scale - scale
        return _replace(self, scale, self.positive.downscaled(drop), self.negative.downscaled(drop))

    def to_explicit(self, max_bounds: int = 128) -> tuple[tuple[float, ...], tuple[int, ...]]:
        """(bounds, counts) of explicit buckets at the exponential boundaries (see the
        module rules); count, sum, min and max stay as they are.

        Raises OverflowError when a boundary is beyond the range of a double."""
        h = self.normalized().at_scale(self.explicit_scale(max_bounds))
        bounds: list[float] = []
        counts: list[int] = []
        neg, pos = h.negative, h.positive
        for j in range(len(neg.counts) - 1, -1, -1):
            bounds.append(-_boundary(h.scale, neg.offset + j))
            counts.append(neg.counts[j])
        counts.append(h.zero_count)
        if pos.counts:
            for i in range(len(pos.counts)):
                bounds.append(_boundary(h.scale, pos.offset + i + 1))
                counts.append(pos.counts[i])
            bounds.insert(len(neg.counts), _boundary(h.scale, pos.offset))
            counts.append(0)
        return tuple(bounds), tuple(counts)

    def explicit_scale(self, max_bounds: int = 128) -> int:
        """The scale `to_explicit` ends up at (its bucket resolution)."""
        h = self.normalized()
        while _bound_count(h) > max_bounds and h.scale > MIN_SCALE:
            h = h.at_scale(h.scale - 1)
        return h.scale


def _bound_count(h: ExponentialHistogramData) -> int:
    positive = len(h.positive.counts) + 1 if h.positive.counts else 0
    return len(h.negative.counts) + positive


def _boundary(scale: int, index: int) -> float:
    """base**index for base = 2**(2**-scale), exact for scale <= 0."""
    value = math.ldexp(1.0, index << -scale) if scale <= 0 else 2.0 ** (index / (1 << scale))
    if math.isinf(value) or value == 0.0:
        raise OverflowError(f"bucket boundary 2**({index}/2**{scale}) is outside a double")
    return value


def _replace(
    h: ExponentialHistogramData, scale: int, positive: Buckets, negative: Buckets
) -> ExponentialHistogramData:
    return ExponentialHistogramData(
        scale, h.zero_count, positive, negative, h.count, h.sum, h.min, h.max, h.zero_threshold
    )


def merged_extreme(
    choose: Callable[[float, float], float], a: float | None, b: float | None
) -> float | None:
    """The min or max (`choose`) of two histograms' optional extremes."""
    if a is None:
        return b
    if b is None:
        return a
    return float(choose(a, b))
