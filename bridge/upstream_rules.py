"""What an upstream decides without I/O: the name of a collector, and when to try it again.

Naming rules (`CollectorNames`, one per bridge, shared by its upstreams):
- A collector named on the command line (`--collector NAME=HOST:PORT`) keeps
  that name; it is reserved before any collector answers.
- Otherwise a collector is named by what it reports in ListSources (its host
  source), or by its address if it reports nothing, with "/" replaced by "_"
  (a channel is "<collector>/<source>"). So every bridge replica names
  channels alike.
- A name is taken once. If a collector reports a name already taken, it is
  named "<name>@<host:port>" instead, and the claim says so (the caller
  warns). "Later" means later to answer ListSources, not later on the
  command line.
- An upstream claims a name once, on its first ListSources answer, and keeps
  it across reconnects.

Retry rules (`Retries`, one per upstream):
- After every interrupted round the upstream waits `Backoff.delay(attempt)`.
- A round that got as far as following the stream (ListSources answered, the
  channels were marked live) starts the count again: the next wait is the
  shortest, whatever ended the stream (it ended, broke, or the hub asked for a
  fresh one after a gap).
- A round that failed before that counts one more attempt, so a collector
  that stays unreachable is tried ever less often, up to `Backoff.maximum`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bridge.backoff import Backoff

__all__ = ["CollectorNames", "NameClaim", "Retries"]


@dataclass(frozen=True, slots=True)
class NameClaim:
    name: str
    """The name the collector's channels get."""
    taken: str | None = None
    """The name it reported, if another collector had it already (so `name` differs)."""


class CollectorNames:
    """The collector names in use in one bridge."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def reserve(self, name: str) -> None:
        """A name given on the command line."""
        self._taken.add(name)

    def claim(self, reported: str, address: str) -> NameClaim:
        """The name for the collector at `address`, which reports the name `reported`."""
        name = (reported or address).replace("/", "_")
        if name in self._taken:
            claim = NameClaim(f"{name}@{address}", taken=name)
        else:
            claim = NameClaim(name)
        self._taken.add(claim.name)
        return claim

    def release(self, name: str) -> None:
        """The collector named `name` is no longer followed (gone from a dns:/// target)."""
        self._taken.discard(name)

    def __contains__(self, name: object) -> bool:
        return name in self._taken


class Retries:
    """Counts one upstream's failed attempts and says how long to wait before the next."""

    def __init__(self, backoff: Backoff | None = None, rng: random.Random | None = None) -> None:
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()
        self.attempt = 0
        """Rounds that failed before the stream since it was last followed."""

    def delay(self, *, followed: bool) -> float:
        """Seconds to wait after a round that ended; `followed`: it reached the stream."""
        if followed:
            self.attempt = 0
        delay = self.backoff.delay(self.attempt, self.rng)
        self.attempt += 1
        return delay
