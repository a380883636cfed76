"""HOST:PORT addresses: parsing, IPv6 brackets, clear errors."""

from __future__ import annotations

import argparse

import pytest

from metrics_shared.address import Address, is_loopback, parse_address


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:50051", Address("127.0.0.1", 50051)),
        ("localhost:0", Address("localhost", 0)),
        ("[::1]:4317", Address("::1", 4317)),
    ],
)
def test_an_address_is_parsed_and_printed_back(text: str, address: Address) -> None:
    assert parse_address(text) == address
    assert str(address) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("nohost", "expected HOST:PORT"),
        (":80", "expected HOST:PORT"),
        ("h:http", "port must be a number"),
        ("h:65536", "port must be 0..65535"),
    ],
)
def test_a_bad_address_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=problem):
        parse_address(text)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"])
def test_loopback_hosts_keep_a_server_on_this_machine(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "example.com", "::ffff:1.2.3.4"])
def test_every_other_host_is_exposed(host: str) -> None:
    assert not is_loopback(host)
