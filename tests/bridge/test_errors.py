"""Close codes: the table in bridge/errors.py says what a client should do, as the rule does."""

from __future__ import annotations

import re

import bridge.errors
from bridge.client.reconnect import should_reconnect
from bridge.errors import CloseCode, clip_reason

ROW = re.compile(r"^\| (\d{4}) \| (\w+)\s*\|.*\| (reconnect|not retry)\s*\|$", re.MULTILINE)


def documented_codes() -> dict[int, tuple[str, str]]:
    doc = bridge.errors.__doc__ or ""
    return {int(code): (name, action) for code, name, action in ROW.findall(doc)}


def test_every_close_code_the_bridge_sends_is_in_the_table() -> None:
    table = documented_codes()
    sent = {code for code in CloseCode if code is not CloseCode.NORMAL}
    assert {int(code) for code in sent} == set(table)
    for code in sent:
        assert table[int(code)][0] == code.name


def test_the_table_says_what_the_clients_reconnect_rule_does() -> None:
    for code, (_, action) in documented_codes().items():
        assert should_reconnect(code) == (action == "reconnect"), code


def test_a_close_reason_is_clipped_to_123_bytes_without_splitting_a_character() -> None:
    clipped = clip_reason("é" * 100)
    assert len(clipped.encode()) <= 123
    assert clipped.endswith("...")
    assert set(clipped.removesuffix("...")) == {"é"}
    assert clip_reason("short") == "short"
