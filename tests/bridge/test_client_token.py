"""Client-side token rules: when to refresh (bridge/client/token.py; web/src/token.js agrees)."""

from __future__ import annotations

import asyncio

from bridge.client.token import fetch_token, refresh_delay, token_expiry
from tests.support.tokens import token

NOW = 1_800_000_000.0


def test_exp_is_read_without_verifying_and_junk_has_none() -> None:
    assert token_expiry(token(now=NOW, ttl=60)) == NOW + 60
    assert token_expiry("not.a.jwt") is None
    assert token_expiry("opaque-token") is None


def test_refresh_comes_30_s_before_exp_or_at_80_percent_of_a_short_life() -> None:
    assert refresh_delay(token(now=NOW, ttl=3600), NOW) == 3570
    assert refresh_delay(token(now=NOW, ttl=60), NOW) == 48
    assert refresh_delay(token(now=NOW, ttl=60), NOW + 100) == 0
    assert refresh_delay("opaque-token", NOW) is None


def test_a_token_source_may_be_a_string_a_function_or_an_async_function() -> None:
    async def later() -> str:
        return "c"

    async def fetch_all() -> list[str]:
        return [await fetch_token("a"), await fetch_token(lambda: "b"), await fetch_token(later)]

    assert asyncio.run(fetch_all()) == ["a", "b", "c"]
