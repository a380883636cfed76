"""Fair CPU pinning for the benchmark: every server under test gets the same cores.

Rules:
- `CorePlan.parse(text, available)`: `text` lists the server's cores
  ("0", "0,1", "0-1"); "" turns pinning off. A core the machine does not
  offer is an error. Everything else (collector, pusher, load client, the
  orchestrator) runs on the cores left over; on a machine with no core left
  over it shares the server's.
- `pin(pid, cores)` pins every thread of a running process (a process pinned
  after it started has threads the first call to sched_setaffinity misses),
  so servers can be pinned once they are ready, whatever language they are in.
- `Pinned(cores)` pins this process's threads for a `with` block and gives
  them back their own affinity after: children started inside inherit it.
Linux only (sched_setaffinity); elsewhere a plan is always off.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "CorePlan",
    "Pinned",
    "available_cores",
    "parse_cores",
    "pin",
]

SUPPORTED = hasattr(os, "sched_setaffinity")


def available_cores() -> frozenset[int]:
    """The cores this process may run on."""
    if not SUPPORTED:
        return frozenset(range(os.cpu_count() or 1))
    return frozenset(os.sched_getaffinity(0))


def parse_cores(text: str) -> frozenset[int]:
    """ "0,2-3" -> {0, 2, 3}; "" -> empty."""
    cores: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        low, dash, high = part.partition("-")
        first, last = int(low), int(high) if dash else int(low)
        if first < 0 or last < first:
            raise ValueError(f"bad core range {part!r}")
        cores.update(range(first, last + 1))
    return frozenset(cores)


@dataclass(frozen=True)
class CorePlan:
    """Which cores the server under test gets, and which the rest of the bench gets."""

    server: frozenset[int]
    rest: frozenset[int]

    @classmethod
    def parse(cls, text: str, available: frozenset[int]) -> CorePlan:
        server = parse_cores(text)
        if not server or not SUPPORTED:
            return cls(frozenset(), frozenset())
        missing = server - available
        if missing:
            have = _listed(available)
            raise ValueError(f"core(s) {_listed(frozenset(missing))} not available (have {have})")
        return cls(server, available - server or available)

    @property
    def enabled(self) -> bool:
        return bool(self.server)

    @property
    def shared(self) -> bool:
        """The rest of the bench runs on the server's cores too (no core left over)."""
        return self.enabled and bool(self.server & self.rest)

    def describe(self) -> str:
        if not self.enabled:
            return "not pinned"
        shared = " (shared)" if self.shared else ""
        return (
            f"server under test on core(s) {_listed(self.server)}; collector, pusher and "
            f"load client on core(s) {_listed(self.rest)}{shared}"
        )


def _listed(cores: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cores))


def _threads(pid: int) -> list[int]:
    try:
        return [int(name) for name in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return [pid]


def pin(pid: int, cores: frozenset[int]) -> None:
    """Pin every thread of `pid` to `cores` (nothing if `cores` is empty)."""
    if not cores or not SUPPORTED:
        return
    done: set[int] = set()
    while todo := [tid for tid in _threads(pid) if tid not in done]:
        for tid in todo:
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(tid, cores)
            done.add(tid)


class Pinned:
    """This process's threads on `cores` inside the block (a no-op if empty)."""

    def __init__(self, cores: frozenset[int]) -> None:
        self.cores = cores
        self._saved: dict[int, set[int]] = {}

    def __enter__(self) -> Pinned:
        if self.cores and SUPPORTED and Path("/proc/self/task").is_dir():
            for tid in _threads(os.getpid()):
                with contextlib.suppress(ProcessLookupError):
                    self._saved[tid] = os.sched_getaffinity(tid)
            pin(os.getpid(), self.cores)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if not self._saved:
            return
        everything = set().union(*self._saved.values())
        for tid in _threads(os.getpid()):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, self._saved.get(tid, everything))
        self._saved = {}
