"""DnsCollectors: which collectors a `dns:///HOST:PORT` target stands for, answer by answer."""

from __future__ import annotations

import pytest

from bridge.discovery import DnsChanges, DnsCollectors, split_dns_target
from metrics_shared.address import Address

TARGET = Address("collectors.metrics.svc", 50051)


def at(*hosts: str) -> tuple[Address, ...]:
    return tuple(Address(h, 50051) for h in hosts)


def test_a_dns_target_is_told_apart_from_a_plain_address() -> None:
    assert split_dns_target("dns:///collectors.metrics.svc:50051") == "collectors.metrics.svc:50051"
    assert split_dns_target("collectors.metrics.svc:50051") is None


def test_every_address_of_the_first_answer_is_followed() -> None:
    dns = DnsCollectors(TARGET)
    assert dns.answer(["10.0.0.2", "10.0.0.1"]) == DnsChanges(added=at("10.0.0.1", "10.0.0.2"))


def test_an_address_that_appears_later_is_added() -> None:
    dns = DnsCollectors(TARGET)
    dns.answer(["10.0.0.1"])
    assert dns.answer(["10.0.0.1", "10.0.0.3"]) == DnsChanges(added=at("10.0.0.3"))


def test_an_address_is_dropped_only_after_missing_from_absent_rounds_answers_in_a_row() -> None:
    dns = DnsCollectors(TARGET, absent_rounds=2)
    dns.answer(["10.0.0.1", "10.0.0.2"])
    assert dns.answer(["10.0.0.1"]) == DnsChanges()
    assert dns.answer(["10.0.0.1"]) == DnsChanges(removed=at("10.0.0.2"))
    assert set(dns.following) == set(at("10.0.0.1"))


def test_an_address_back_in_time_keeps_being_followed() -> None:
    dns = DnsCollectors(TARGET, absent_rounds=2)
    dns.answer(["10.0.0.1", "10.0.0.2"])
    dns.answer(["10.0.0.1"])
    assert dns.answer(["10.0.0.1", "10.0.0.2"]) == DnsChanges()
    assert dns.answer(["10.0.0.1"]) == DnsChanges()


def test_an_empty_answer_changes_nothing() -> None:
    dns = DnsCollectors(TARGET, absent_rounds=1)
    dns.answer(["10.0.0.1"])
    assert dns.answer([]) == DnsChanges()
    assert set(dns.following) == set(at("10.0.0.1"))


def test_a_dropped_address_that_comes_back_is_added_again() -> None:
    dns = DnsCollectors(TARGET, absent_rounds=1)
    dns.answer(["10.0.0.1", "10.0.0.2"])
    assert dns.answer(["10.0.0.1"]) == DnsChanges(removed=at("10.0.0.2"))
    assert dns.answer(["10.0.0.1", "10.0.0.2"]) == DnsChanges(added=at("10.0.0.2"))


def test_duplicate_addresses_in_one_answer_count_once() -> None:
    dns = DnsCollectors(TARGET)
    assert dns.answer(["10.0.0.1", "10.0.0.1"]) == DnsChanges(added=at("10.0.0.1"))


def test_absent_rounds_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DnsCollectors(TARGET, absent_rounds=0)
