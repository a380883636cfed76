"""Read a server's /metrics: counters by label, and histograms over a window.

Rules:
- `parse(text)` reads Prometheus text format into samples keyed by name and
  labels (prometheus_client's own parser).
- `histogram(samples, name)` is the histogram `name`, summed over all its
  label sets but `le`; `later.minus(earlier)` is what was observed between
  two scrapes, so a window's figures leave out what came before it.
- `quantile(q)` interpolates linearly inside the bucket that holds it, as
  Prometheus' histogram_quantile does (the first bucket starts at 0; a
  quantile in the +Inf bucket is the largest finite bound): an estimate,
  as good as the buckets are fine. `mean` (sum / count) is exact.
- `counters(samples, name)` maps each label set of a counter to its value;
  `labelled` names each label set by its values joined with "/" (in the
  order asked for: label order differs between exposition and parser).
- `window_summary(before, after, names)`: p50/p99/mean in ms of histograms
  between two scrapes (since the start if the first scrape failed).
"""

from __future__ import annotations

import asyncio
import math
import urllib.request
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "Histogram",
    "Samples",
    "counters",
    "histogram",
    "labelled",
    "metrics_url",
    "parse",
    "scrape",
    "try_scrape",
    "window_summary",
]

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sample.labels.items()))] = float(sample.value)
    return samples


def scrape(url: str, timeout: float = 20.0) -> Samples:
    """GET `url` (a /metrics endpoint) and parse it."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return parse(response.read().decode())


def metrics_url(ws_url: str) -> str:
    """The /metrics URL on a bridge's WebSocket port."""
    return ws_url.replace("ws://", "http://", 1).rstrip("/") + "/metrics"


async def try_scrape(url: str) -> Samples | None:
    """`scrape` off the event loop; None if the server did not answer in time."""
    try:
        return await asyncio.to_thread(scrape, url)
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Histogram:
    """Cumulative buckets (upper bound, observations at or below it), ending with +Inf."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    sum: float

    def minus(self, earlier: Histogram) -> Histogram:
        before = dict(earlier.buckets)
        return Histogram(
            tuple((bound, count - before.get(bound, 0.0)) for bound, count in self.buckets),
            self.count - earlier.count,
            self.sum - earlier.sum,
        )

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count > 0 else None

    def quantile(self, q: float) -> float | None:
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower
                inside = cumulative - below
                share = (rank - below) / inside if inside > 0 else 1.0
                return lower + (bound - lower) * share
            lower, below = bound, cumulative
        return lower


def histogram(samples: Samples, name: str) -> Histogram:
    """The histogram `name` (without _bucket), summed over its label sets; empty if absent."""
    buckets: dict[float, float] = {}
    count = total = 0.0
    for (sample, labels), value in samples.items():
        if sample == f"{name}_bucket":
            bound = float(dict(labels)["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
        elif sample == f"{name}_count":
            count += value
        elif sample == f"{name}_sum":
            total += value
    return Histogram(tuple(sorted(buckets.items())), count, total)


def counters(samples: Samples, name: str) -> dict[Labels, float]:
    """Each label set of the counter `name` (with its _total suffix) and its value."""
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


def labelled(samples: Samples | None, name: str, keys: tuple[str, ...] = ()) -> dict[str, float]:
    """Each label set of `name` as the values of `keys` (default: every label, by name)
    joined with "/" ("client/stale") -> value."""
    if samples is None:
        return {}
    out: dict[str, float] = {}
    for labels, value in counters(samples, name).items():
        found = dict(labels)
        out["/".join(found.get(key, "") for key in keys or sorted(found))] = value
    return out


def window_summary(
    before: Samples | None, after: Samples | None, names: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """For each key -> histogram name: p50/p99/mean (ms) and count between the scrapes."""
    if after is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for key, name in names.items():
        window = histogram(after, name)
        if before is not None:
            window = window.minus(histogram(before, name))
        if not window.buckets:
            continue
        p50, p99, mean = window.quantile(0.5), window.quantile(0.99), window.mean
        out[key] = {
            "p50_ms": None if p50 is None else p50 * 1000,
            "p99_ms": None if p99 is None else p99 * 1000,
            "mean_ms": None if mean is None else mean * 1000,
            "count": window.count,
        }
    return out
