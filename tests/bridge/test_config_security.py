"""The bridge's security options: what starts and what is refused, before anything listens."""

from __future__ import annotations

import pytest

from bridge.config import parse_config


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        parse_config(argv, env={})
    assert stopped.value.code == 2
    return capsys.readouterr().err


def test_loopback_needs_no_token_as_make_run_does() -> None:
    config = parse_config([], env={})
    assert config.auth == "none" and config.on_loopback


def test_another_address_without_auth_is_refused_unless_anonymous_is_allowed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    error = refused(["--listen", "10.1.2.3:8765"], capsys)
    assert "not loopback" in error and "--allow-anonymous" in error
    allowed = parse_config(["--listen", "10.1.2.3:8765", "--allow-anonymous"], env={})
    assert allowed.allow_anonymous
    with_tokens = ["--listen", "[::]:8765", "--auth", "jwt", "--jwt-secret-file", "s"]
    assert parse_config(with_tokens, env={}).auth == "jwt"


def test_jwt_needs_exactly_one_key_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert "exactly one" in refused(["--auth", "jwt"], capsys)
    both = ["--auth", "jwt", "--jwt-secret-file", "a", "--jwt-jwks-file", "b"]
    assert "exactly one" in refused(both, capsys)
    assert "--auth jwt" in refused(["--jwt-secret-file", "a"], capsys)


def test_tls_cert_and_key_go_together(capsys: pytest.CaptureFixture[str]) -> None:
    assert "go together" in refused(["--tls-cert", "c.pem"], capsys)


def test_allowed_origins_repeat_and_come_from_one_variable() -> None:
    config = parse_config(
        ["--allowed-origin", "https://a.example", "--allowed-origin", "https://*.b.example"],
        env={},
    )
    assert config.allowed_origin == ("https://a.example", "https://*.b.example")
    from_env = parse_config([], env={"METRICS_BRIDGE_ALLOWED_ORIGIN": "https://a,https://b"})
    assert from_env.allowed_origin == ("https://a", "https://b")
