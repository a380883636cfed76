"""The open-file limit: raised at start, and the connections that fit under it.

Rules:
- At start a server raises its soft RLIMIT_NOFILE to the hard limit (as Go's
  runtime does): the soft default (often 1024) is an accident of history, the
  hard limit is what the administrator allows.
- Every client connection holds one descriptor; the rest of the process
  (listening sockets, collector channels, gRPC's and the senders' threads,
  log and static files) needs `headroom`. If `max_connections + headroom` is
  over the limit, the connections are capped at `limit - headroom` (at least
  1) and the caller says so at start with the numbers (`ConnectionCap.warning`).
- `RefusalLog` turns a burst of refusals into one log line: the first refusal
  after `quiet` seconds without any is logged; the ones that follow within the
  burst are only counted (the caller's /metrics shows them).
Time and the `resource` calls are injected, so this is plain logic.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BASE_HEADROOM",
    "PER_COLLECTOR_HEADROOM",
    "ConnectionCap",
    "FdLimit",
    "RefusalLog",
    "connection_cap",
    "headroom",
    "raise_open_file_limit",
]

BASE_HEADROOM = 64
"""Descriptors outside client connections: listeners, files, the event loop, threads' pipes."""
PER_COLLECTOR_HEADROOM = 4
"""A gRPC channel per collector (plus one for per-channel resyncs) and its wakeup fds."""

Limits = tuple[int, int]


@dataclass(frozen=True, slots=True)
class FdLimit:
    """The soft limit before and after `raise_open_file_limit`, and the hard limit."""

    before: int
    soft: int
    hard: int


def raise_open_file_limit(
    get: Callable[[int], Limits] = resource.getrlimit,
    set_: Callable[[int, Limits], None] = resource.setrlimit,
) -> FdLimit:
    """Raise the soft RLIMIT_NOFILE to the hard limit; never fails (returns what holds)."""
    soft, hard = get(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        target = max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else soft
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            set_(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            target = soft
    else:
        target = soft
    return FdLimit(before=soft, soft=target, hard=hard)


def headroom(collectors: int) -> int:
    return BASE_HEADROOM + PER_COLLECTOR_HEADROOM * max(0, collectors)


@dataclass(frozen=True, slots=True)
class ConnectionCap:
    """The connections served: `allowed`; `warning` says why it is under what was asked."""

    allowed: int
    warning: str | None


def connection_cap(max_connections: int, soft_limit: int, reserve: int) -> ConnectionCap:
    if soft_limit == resource.RLIM_INFINITY or max_connections + reserve <= soft_limit:
        return ConnectionCap(max_connections, None)
    allowed = max(1, soft_limit - reserve)
    return ConnectionCap(
        allowed,
        f"--max-connections {max_connections} plus {reserve} descriptors of headroom "
        f"exceeds the open-file limit {soft_limit} (raise it with `ulimit -n` or "
        f"LimitNOFILE=); serving at most {allowed} connections, refusing the rest "
        "with 1013",
    )


class RefusalLog:
    """One log line per burst of refusals; the rest are only counted."""

    def __init__(self, quiet: float = 10.0) -> None:
        self.quiet = quiet
        self._last: float | None = None
        self.total = 0
        self.in_burst = 0

    def refused(self, now: float) -> bool:
        """Count one refusal; True when it starts a burst (log it), False otherwise."""
        self.total += 1
        starts_burst = self._last is None or now - self._last >= self.quiet
        self._last = now
        self.in_burst = 1 if starts_burst else self.in_burst + 1
        return starts_burst
