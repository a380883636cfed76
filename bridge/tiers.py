"""Rate tiers: subscriptions that get at most one update every tier interval.

Rules:
- A bridge offers a few tiers (`--rate-tiers`, milliseconds, announced in
  Hello). A subscription asking for `min_interval_ms` gets the smallest tier
  at or above it, the slowest when it asks for more; 0 gets every update
  (the ordinary fan-out, not this module).
- Tier `t` ticks at every multiple of its interval on the injected clock, so
  all members of a tier are served in the same tick. At a tick each member
  whose position is behind its channel gets one frame taking it to the
  channel's position: the channel's merged update from that position (one
  encoding per channel and position, whatever the number of members), or the
  latest snapshot when the ring no longer reaches back to it.
- A member's position moves only when a frame was written for it, so a
  skipped (lagging) member gets a larger merge, or a snapshot, later.
- `tick_position(tier, channel)` is where the tier's last tick took its
  members; heartbeats claim that position, not the channel's, so a member is
  not suspected of missing data it is not due yet.
This module holds no frames and does no I/O; the hub sends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Generic, TypeVar

from bridge.channel import Position

__all__ = ["TierSchedule", "parse_tiers", "pick_tier"]

Member = TypeVar("Member", bound=Hashable)


def parse_tiers(text: str) -> tuple[int, ...]:
    """'1000,5000' -> (1000, 5000): positive milliseconds, ascending, no repeats."""
    try:
        tiers = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise ValueError(f"rate tiers must be comma-separated milliseconds, not {text!r}") from None
    if any(t < 10 for t in tiers):
        raise ValueError(f"rate tiers must be at least 10 ms: {text!r}")
    return tiers


def pick_tier(tiers: tuple[int, ...], min_interval_ms: int) -> int:
    """The tier a subscription asking for `min_interval_ms` gets (0: every update)."""
    if min_interval_ms <= 0 or not tiers:
        return 0
    for tier in tiers:
        if tier >= min_interval_ms:
            return tier
    return tiers[-1]


class TierSchedule(Generic[Member]):
    """Who is in which tier for which channel, at which position, and when tiers tick."""

    def __init__(self, tiers: Iterable[int], now: float) -> None:
        self.tiers = tuple(tiers)
        self._next = {t: self._after(t, now) for t in self.tiers}
        # tier -> channel -> member -> position delivered
        self._members: dict[int, dict[str, dict[Member, Position]]] = {t: {} for t in self.tiers}
        self._tier_of: dict[tuple[Member, str], int] = {}
        self._ticked: dict[tuple[int, str], Position] = {}

    @staticmethod
    def _after(tier: int, now: float) -> float:
        interval = tier / 1000
        return (math.floor(now / interval) + 1) * interval

    def join(self, member: Member, channel: str, tier: int, position: Position) -> None:
        """`member` now follows `channel` at `tier` (0: leaves every tier)."""
        self.leave(member, channel)
        if tier == 0:
            return
        self._members[tier].setdefault(channel, {})[member] = position
        self._tier_of[member, channel] = tier
        self._ticked.setdefault((tier, channel), position)

    def leave(self, member: Member, channel: str) -> None:
        tier = self._tier_of.pop((member, channel), None)
        if tier is None:
            return
        members = self._members[tier].get(channel)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._members[tier][channel]
                self._ticked.pop((tier, channel), None)

    def tier_of(self, member: Member, channel: str) -> int:
        return self._tier_of.get((member, channel), 0)

    def members(self, channel: str) -> list[Member]:
        """Every member following `channel` at any tier."""
        return [m for t in self.tiers for m in self._members[t].get(channel, {})]

    def moved(self, member: Member, channel: str, position: Position) -> None:
        """A frame (e.g. a resync snapshot) took `member` to `position`."""
        tier = self._tier_of.get((member, channel))
        if tier is not None:
            self._members[tier][channel][member] = position

    def due(self, now: float) -> list[int]:
        """Tiers whose tick came; each is reported once per tick."""
        due = [t for t in self.tiers if now >= self._next[t]]
        for tier in due:
            self._next[tier] = self._after(tier, now)
        return due

    def behind(
        self, tier: int, position_of: Callable[[str], Position | None]
    ) -> Iterator[tuple[str, Position, list[Member]]]:
        """(channel, position, members at it) for every position behind its channel's.

        Members are grouped by position, so a tick costs one frame per group.
        Also records each channel's position as the tier's tick position.
        """
        for channel, members in list(self._members[tier].items()):
            current = position_of(channel)
            if current is None:
                continue
            self._ticked[tier, channel] = current
            groups: dict[Position, list[Member]] = {}
            for member, position in members.items():
                if position != current:
                    groups.setdefault(position, []).append(member)
            for position, group in groups.items():
                yield channel, position, group

    def advance(self, tier: int, channel: str, members: Iterable[Member], to: Position) -> None:
        """These members of the tier got a frame taking them to `to`."""
        positions = self._members[tier].get(channel)
        if positions is None:
            return
        for member in members:
            if member in positions:
                positions[member] = to

    def tick_position(self, tier: int, channel: str) -> Position | None:
        return self._ticked.get((tier, channel))
