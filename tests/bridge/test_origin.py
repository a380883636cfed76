"""OriginPolicy: which pages may open a WebSocket (cross-site WebSocket hijacking)."""

from __future__ import annotations

from bridge.origin import OriginPolicy, is_loopback


def test_a_client_without_origin_is_allowed() -> None:
    assert OriginPolicy((), loopback=False).allows(None, "http", "bridge:8765")


def test_the_bridges_own_origin_is_always_allowed() -> None:
    policy = OriginPolicy(("https://app.example.com",), loopback=False)
    assert policy.allows("https://bridge.example.com", "https", "bridge.example.com")
    assert not policy.allows("http://bridge.example.com", "https", "bridge.example.com")


def test_on_loopback_local_dev_servers_are_allowed_by_default_and_other_sites_are_not() -> None:
    policy = OriginPolicy((), loopback=True)
    assert policy.allows("http://localhost:5173", "http", "127.0.0.1:8765")
    assert policy.allows("http://127.0.0.1:3000", "http", "127.0.0.1:8765")
    assert not policy.allows("https://evil.example", "http", "127.0.0.1:8765")
    assert not policy.allows("null", "http", "127.0.0.1:8765")


def test_off_loopback_only_the_own_origin_is_allowed_by_default() -> None:
    policy = OriginPolicy((), loopback=False)
    assert not policy.allows("http://localhost:5173", "http", "10.0.0.5:8765")


def test_given_patterns_replace_the_loopback_defaults_and_match_as_globs() -> None:
    policy = OriginPolicy(("https://*.example.com",), loopback=True)
    assert policy.allows("https://dash.example.com", "http", "127.0.0.1:8765")
    assert policy.allows("HTTPS://Dash.Example.com", "http", "127.0.0.1:8765")
    assert not policy.allows("https://example.com.evil.net", "http", "127.0.0.1:8765")
    assert not policy.allows("http://localhost:5173", "http", "127.0.0.1:8765")


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "example.com"))
