"""Whether a soak run's memory and descriptors stayed flat. Pure.

Rules (issue 15's acceptance):
- The trend is the least-squares slope over the second half of the run (the
  first half holds start-up and warm-up).
- RSS may grow at most 2 % of its second-half mean per 10 minutes.
- Open descriptors may not grow at all: growth is the slope times the second
  half's duration, and it counts when it is one descriptor or more and more
  than twice its standard error (sockets in a handshake or closing make
  every sample a few descriptors off, so a noise-only fit exceeds one
  descriptor in a good share of runs). Given the connection count of
  each sample, the descriptors counted are those beyond one per connection,
  so clients coming and going are not read as growth; a sample without a
  connection count (NaN) is left out of that fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["RSS_GROWTH_LIMIT", "Trend", "slope", "slope_error", "trend"]

RSS_GROWTH_LIMIT = 0.02
"""Per 10 minutes, as a share of the second half's mean RSS."""


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of ys over xs (0 for fewer than two distinct xs)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var


def slope_error(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The standard error of the least-squares slope (0 for fewer than three points)."""
    n = len(xs)
    if n < 3:
        return 0.0
    b = slope(xs, ys)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return 0.0
    residuals = sum((y - mean_y - b * (x - mean_x)) ** 2 for x, y in zip(xs, ys, strict=True))
    return math.sqrt(residuals / (n - 2) / var)


@dataclass(frozen=True, slots=True)
class Trend:
    rss_bytes_per_s: float
    rss_share_per_10min: float
    fds_per_s: float
    fd_growth: float
    """Descriptors gained over the second half at that slope."""
    fd_growth_error: float = 0.0
    """The standard error of `fd_growth`."""

    @property
    def fds_grow(self) -> bool:
        return self.fd_growth >= 1.0 and self.fd_growth > 2 * self.fd_growth_error

    @property
    def flat(self) -> bool:
        return self.rss_share_per_10min <= RSS_GROWTH_LIMIT and not self.fds_grow


def trend(
    times: Sequence[float],
    rss: Sequence[float],
    fds: Sequence[float],
    connections: Sequence[float] | None = None,
) -> Trend:
    """The slopes of RSS and descriptors over the second half of the samples."""
    half = len(times) // 2
    t, r = times[half:], rss[half:]
    rss_slope = slope(t, r)
    mean_rss = sum(r) / len(r) if r else 0.0
    share = rss_slope * 600 / mean_rss if mean_rss else 0.0
    if connections is None:
        ft, f = t, fds[half:]
    else:
        pairs = [
            (x, d - c)
            for x, d, c in zip(t, fds[half:], connections[half:], strict=True)
            if not math.isnan(c)
        ]
        ft, f = [x for x, _ in pairs], [y for _, y in pairs]
    fd_slope = slope(ft, f)
    span = (t[-1] - t[0]) if len(t) > 1 else 0.0
    return Trend(rss_slope, share, fd_slope, fd_slope * span, slope_error(ft, f) * span)
