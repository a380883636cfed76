"""The upstream's rules without I/O: naming collectors, and waiting before a retry."""

from __future__ import annotations

import random

from bridge.backoff import Backoff
from bridge.upstream_rules import CollectorNames, NameClaim, Retries

STEADY = Backoff(initial=1.0, multiplier=2.0, jitter=0.0, maximum=8.0)


def test_a_collector_is_named_by_the_name_it_reports() -> None:
    names = CollectorNames()
    assert names.claim("box7", "10.0.0.1:50051") == NameClaim("box7")
    assert "box7" in names


def test_a_collector_that_reports_no_name_is_named_by_its_address() -> None:
    assert CollectorNames().claim("", "10.0.0.1:50051") == NameClaim("10.0.0.1:50051")


def test_a_slash_in_a_reported_name_cannot_reach_the_channel_name() -> None:
    assert CollectorNames().claim("rack/box7", "10.0.0.1:50051").name == "rack_box7"


def test_the_later_of_two_collectors_reporting_one_name_gets_its_address_added() -> None:
    names = CollectorNames()
    first = names.claim("box7", "10.0.0.1:50051")
    later = names.claim("box7", "10.0.0.2:50051")
    assert first == NameClaim("box7")
    assert later == NameClaim("box7@10.0.0.2:50051", taken="box7")
    assert "box7@10.0.0.2:50051" in names


def test_a_reported_name_given_to_another_collector_on_the_command_line_is_taken() -> None:
    names = CollectorNames()
    names.reserve("box7")
    assert names.claim("box7", "10.0.0.2:50051") == NameClaim("box7@10.0.0.2:50051", taken="box7")


def test_a_released_name_can_be_claimed_again_as_it_is() -> None:
    names = CollectorNames()
    names.claim("box7", "10.0.0.1:50051")
    names.release("box7")
    assert "box7" not in names
    assert names.claim("box7", "10.0.0.3:50051") == NameClaim("box7")


def test_distinct_reported_names_are_all_kept() -> None:
    names = CollectorNames()
    claims = [names.claim(n, f"10.0.0.{i}:1") for i, n in enumerate(["a", "b", "c"])]
    assert [c.name for c in claims] == ["a", "b", "c"]
    assert all(c.taken is None for c in claims)


def test_waits_grow_while_the_collector_stays_unreachable() -> None:
    retries = Retries(STEADY)
    waits = [retries.delay(followed=False) for _ in range(6)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_round_that_reached_the_stream_makes_the_next_wait_the_shortest() -> None:
    retries = Retries(STEADY)
    for _ in range(3):
        retries.delay(followed=False)
    assert retries.delay(followed=True) == 1.0
    assert retries.delay(followed=False) == 2.0


def test_a_stream_that_keeps_breaking_after_being_followed_is_retried_quickly() -> None:
    retries = Retries(STEADY)
    assert [retries.delay(followed=True) for _ in range(4)] == [1.0] * 4


def test_waits_are_spread_by_the_injected_random_source() -> None:
    backoff = Backoff(initial=1.0, jitter=0.2)
    one = Retries(backoff, random.Random(7))
    two = Retries(backoff, random.Random(7))
    waits = [one.delay(followed=True) for _ in range(5)]
    assert waits == [two.delay(followed=True) for _ in range(5)]
    assert all(0.8 <= w <= 1.2 for w in waits)
    assert len(set(waits)) > 1
