"""How long data takes between two points of the bridge, as plain histograms for /metrics.

Rules:
- A `DelayHistogram` counts delays (seconds) into the fixed `DELAY_BUCKETS`
  and sums them; an observation is a bisect and two additions, with no lock
  and no prometheus_client, so the fan-out path stays free of both. A
  negative delay (the data's clock ahead of this host's) counts as 0.
- `HopDelays` holds the bridge's three hops (bridge/prometheus.py exports
  them): `upstream`, the data's time (`time_unix_ms`) to its read off the
  collector's stream; `handoff`, that read to its application on the event
  loop; `flush`, the first frame of a write batch queued to the batch
  written. Each is observed per event or per flush, never per client.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

__all__ = ["DELAY_BUCKETS", "DelayHistogram", "HopDelays"]

DELAY_BUCKETS = (
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    1.5,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Upper bounds (seconds): fine at normal load's milliseconds, coarse at overload's seconds."""


class DelayHistogram:
    """Delays counted by bucket: `counts[i]` at most `DELAY_BUCKETS[i]`, the last one above all."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(DELAY_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        if seconds < 0:
            seconds = 0.0
        self.counts[bisect_left(DELAY_BUCKETS, seconds)] += 1
        self.sum += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus buckets: (upper bound, observations at or below it), ending with +Inf."""
        bounds = [repr(bound) for bound in DELAY_BUCKETS] + ["+Inf"]
        total = 0
        buckets = []
        for bound, count in zip(bounds, self.counts, strict=True):
            total += count
            buckets.append((bound, total))
        return buckets


@dataclass(slots=True)
class HopDelays:
    """The bridge's hop delays (see the module's rules)."""

    upstream: DelayHistogram = field(default_factory=DelayHistogram)
    handoff: DelayHistogram = field(default_factory=DelayHistogram)
    flush: DelayHistogram = field(default_factory=DelayHistogram)
