"""Bridge options: flags, environment variables, defaults and errors."""

from __future__ import annotations

import os

import pytest

from bridge.config import (
    BridgeConfig,
    CollectorTarget,
    Keepalive,
    command_line,
    default_send_threads,
    parse_config,
)
from bridge.hub import ClientPolicy
from bridge.session import Limits, Timers
from metrics_shared.address import Address


def test_defaults_listen_on_8765_and_follow_the_local_collector() -> None:
    config = parse_config([], {})
    assert config.listen == Address("127.0.0.1", 8765)
    assert config.collectors == (CollectorTarget(Address("127.0.0.1", 50051)),)
    assert config.heartbeat == 15.0
    assert config.compression == "deflate"


def test_collector_flag_is_repeatable_with_optional_names() -> None:
    config = parse_config(["--collector", "east=10.0.0.1:50051", "--collector", "h:1"], {})
    assert config.collectors == (
        CollectorTarget(Address("10.0.0.1", 50051), "east"),
        CollectorTarget(Address("h", 1), ""),
    )


def test_a_dns_target_stands_for_every_address_its_host_resolves_to() -> None:
    config = parse_config(["--collector", "dns:///collectors.metrics.svc:50051"], {})
    (target,) = config.collectors
    assert target.resolve
    assert target.address == Address("collectors.metrics.svc", 50051)
    assert str(target) == "dns:///collectors.metrics.svc:50051"
    assert config.collector_resolve_interval == 30.0


def test_a_dns_target_takes_no_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--collector", "east=dns:///collectors.metrics.svc:50051"], {})
    assert exit_info.value.code == 2
    assert "drop the NAME=" in capsys.readouterr().err


def test_environment_variables_set_options() -> None:
    env = {
        "METRICS_BRIDGE_HEARTBEAT": "2.5",
        "METRICS_BRIDGE_MAX_CONNECTIONS": "7",
        "METRICS_BRIDGE_COLLECTOR": "a=h:1,b=h:2",
        "METRICS_BRIDGE_LOG_LEVEL": "debug",
    }
    config = parse_config([], env)
    assert config.heartbeat == 2.5
    assert config.max_connections == 7
    assert [c.name for c in config.collectors] == ["a", "b"]
    assert config.log_level == "DEBUG"


def test_flag_wins_over_environment_variable() -> None:
    config = parse_config(["--heartbeat", "3"], {"METRICS_BRIDGE_HEARTBEAT": "2"})
    assert config.heartbeat == 3.0


@pytest.mark.parametrize(
    "argv",
    [
        ["--listen", "nope"],
        ["--max-connections", "0"],
        ["--collector", "a=h:1", "--collector", "a=h:2"],
        ["--collector", "x/y=h:1"],
        ["--compression", "zstd"],
    ],
)
def test_bad_options_exit_with_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_config(argv, {})
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("METRICS_BRIDGE_COMPRESSION", "zstd", "'zstd' is not one of none, deflate"),
        ("METRICS_BRIDGE_HEARTBEAT", "soon", "not a float: 'soon'"),
        ("METRICS_BRIDGE_MAX_CONNECTIONS", "0", "must be at least 1, got '0'"),
        ("METRICS_BRIDGE_COLLECTOR", "a=h:1,nohost", "expected HOST:PORT, got 'nohost'"),
    ],
)
def test_bad_environment_value_is_a_usage_error_naming_the_variable(
    variable: str, value: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_config([], {variable: value})
    assert caught.value.code == 2
    assert f"{variable}: {problem}" in capsys.readouterr().err


def test_collector_flags_replace_the_collector_variable() -> None:
    config = parse_config(["--collector", "c=h:3"], {"METRICS_BRIDGE_COLLECTOR": "a=h:1,b=h:2"})
    assert [c.name for c in config.collectors] == ["c"]


def test_the_core_limits_come_from_the_config() -> None:
    config = parse_config(
        ["--max-subscriptions", "7", "--heartbeat", "2", "--client-buffer-bytes", "4096"], {}
    )
    assert config.limits() == Limits(
        max_message_bytes=65536,
        max_subscriptions=7,
        resume_window=256,
        messages_per_second=20.0,
        history_window=900,
        rate_tiers_ms=(1000, 5000, 10000),
    )
    assert config.timers() == Timers(heartbeat_interval=2.0, ping_interval=20.0, ping_timeout=20.0)
    assert config.client_policy() == ClientPolicy(
        buffer_bytes=4096, slow_timeout=30.0, max_staleness=1.0
    )


def test_history_and_rate_tiers_come_from_the_config() -> None:
    config = parse_config(
        ["--history-window", "60", "--history-channel-bytes", "5000", "--rate-tiers", "500,250"],
        {"METRICS_BRIDGE_HISTORY_TOTAL_BYTES": "9000"},
    )
    limits = config.history_limits()
    assert (limits.window, limits.channel_bytes, limits.budget.total_bytes) == (256, 5000, 9000)
    assert config.limits().rate_tiers_ms == (250, 500)
    assert parse_config(["--rate-tiers", ""], {}).rate_tiers == ()


def test_keepalive_defaults_are_the_configs() -> None:
    assert Keepalive() == BridgeConfig().keepalive() == Keepalive(10.0, 5.0)


def test_help_shows_each_default_and_variable_and_what_is_off_unless_set() -> None:
    text = " ".join(command_line().format_help().split())
    assert (
        "(default: 127.0.0.1:50051; env METRICS_BRIDGE_COLLECTOR, values separated by commas)"
        in text
    )
    assert "(default: 2 (1 on one core); env METRICS_BRIDGE_SEND_THREADS)" in text
    assert "(off unless set; env METRICS_BRIDGE_READY_FILE)" in text


def test_every_config_field_is_an_option() -> None:
    names = {option.name for option in command_line().options}
    assert names == set(BridgeConfig.__dataclass_fields__)


def test_send_threads_default_follows_the_cores_the_process_may_run_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert default_send_threads() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert default_send_threads() == 2
