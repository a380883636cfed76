"""Rate tiers: which tier a request gets, when tiers tick, who is behind."""

from __future__ import annotations

import pytest

from bridge.channel import Position
from bridge.tiers import TierSchedule, parse_tiers, pick_tier


def test_tiers_parse_as_ascending_milliseconds() -> None:
    assert parse_tiers("5000, 1000,5000") == (1000, 5000)
    assert parse_tiers("") == ()
    with pytest.raises(ValueError, match="milliseconds"):
        parse_tiers("1s")
    with pytest.raises(ValueError, match="at least 10"):
        parse_tiers("5")


def test_a_request_gets_the_smallest_tier_at_or_above_it_and_the_slowest_above_all() -> None:
    tiers = (1000, 5000)
    assert [pick_tier(tiers, ms) for ms in (0, 1, 1000, 1001, 5000, 60_000)] == [
        0,
        1000,
        1000,
        5000,
        5000,
        5000,
    ]
    assert pick_tier((), 5000) == 0


def test_tiers_tick_on_multiples_of_their_interval_once_each() -> None:
    schedule: TierSchedule[str] = TierSchedule((1000, 5000), 0.2)
    assert schedule.due(0.9) == []
    assert schedule.due(1.0) == [1000]
    assert schedule.due(1.5) == []
    assert schedule.due(5.01) == [1000, 5000]
    assert schedule.due(12.3) == [1000, 5000]  # a late tick runs once, not once per missed one
    assert schedule.due(13.0) == [1000]


def test_behind_groups_members_by_position_and_records_the_tick() -> None:
    schedule: TierSchedule[str] = TierSchedule((1000,), 0)
    schedule.join("a", "col/svc", 1000, Position(7, 3))
    schedule.join("b", "col/svc", 1000, Position(7, 5))
    schedule.join("c", "col/svc", 1000, Position(7, 3))
    assert schedule.tick_position(1000, "col/svc") == Position(7, 3)
    behind = list(schedule.behind(1000, lambda name: Position(7, 5)))
    assert behind == [("col/svc", Position(7, 3), ["a", "c"])]
    assert schedule.tick_position(1000, "col/svc") == Position(7, 5)
    schedule.advance(1000, "col/svc", ["a"], Position(7, 5))
    behind = list(schedule.behind(1000, lambda name: Position(7, 5)))
    assert behind == [("col/svc", Position(7, 3), ["c"])]
    schedule.moved("c", "col/svc", Position(7, 5))
    assert list(schedule.behind(1000, lambda name: Position(7, 5))) == []
    assert list(schedule.behind(1000, lambda name: None)) == []  # the channel is gone


def test_joining_another_tier_or_tier_zero_leaves_the_previous_one() -> None:
    schedule: TierSchedule[str] = TierSchedule((1000, 5000), 0)
    schedule.join("a", "col/svc", 1000, Position(7, 3))
    schedule.join("a", "col/svc", 5000, Position(7, 3))
    assert (schedule.tier_of("a", "col/svc"), schedule.members("col/svc")) == (5000, ["a"])
    schedule.join("a", "col/svc", 0, Position(7, 3))
    assert (schedule.tier_of("a", "col/svc"), schedule.members("col/svc")) == (0, [])
    assert schedule.tick_position(5000, "col/svc") is None
    schedule.leave("a", "col/svc")  # idempotent
