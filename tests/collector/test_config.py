"""Options: flags, METRICS_COLLECTOR_* variables, flags win."""

from __future__ import annotations

import pytest

from collector.config import CollectorConfig, command_line, parse_config
from collector.hub import HubLimits
from metrics_shared.address import Address


def test_defaults() -> None:
    config = parse_config([], env={})
    assert config.listen == Address("127.0.0.1", 50051)
    assert config.otlp_listen is None and config.interval == 1.0
    assert config.resume_window == 1024 and config.max_series_per_source == 10_000
    assert config.host_source and config.source_ttl == 300


def test_environment_sets_options() -> None:
    config = parse_config(
        [], env={"METRICS_COLLECTOR_LISTEN": "0.0.0.0:0", "METRICS_COLLECTOR_MAX_SOURCES": "3"}
    )
    assert config.listen == Address("0.0.0.0", 0) and config.max_sources == 3


def test_source_ttl_from_flag_or_environment_and_zero_disables() -> None:
    assert parse_config(["--source-ttl", "0.5"], env={}).source_ttl == 0.5
    env = {"METRICS_COLLECTOR_SOURCE_TTL": "0"}
    assert parse_config([], env=env).source_ttl == 0


def test_flags_win_over_environment() -> None:
    config = parse_config(["--interval", "0.5"], env={"METRICS_COLLECTOR_INTERVAL": "2"})
    assert config.interval == 0.5


def test_ipv6_listen_address() -> None:
    config = parse_config(["--otlp-listen", "[::1]:4317"], env={})
    assert config.otlp_listen == Address("::1", 4317) and str(config.otlp_listen) == "[::1]:4317"


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--listen", "nohost"], {}),
        (["--interval", "0"], {}),
        (["--source-ttl", "-1"], {}),
        (["--host-source", "a/b"], {}),
        ([], {"METRICS_COLLECTOR_SUBSCRIBER_QUEUE": "many"}),
        ([], {"METRICS_COLLECTOR_LOG_LEVEL": "chatty"}),
    ],
)
def test_bad_values_exit_with_a_usage_error(
    argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_config(argv, env=env)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_a_bad_environment_value_is_an_error_naming_the_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_config([], env={"METRICS_COLLECTOR_MAX_SOURCES": "0"})
    assert "METRICS_COLLECTOR_MAX_SOURCES: must be at least 1," in capsys.readouterr().err


def test_a_bad_environment_value_is_ignored_when_its_flag_is_given() -> None:
    config = parse_config(["--max-sources", "2"], env={"METRICS_COLLECTOR_MAX_SOURCES": "x"})
    assert config.max_sources == 2


def test_the_hub_limits_come_from_the_config() -> None:
    config = parse_config(
        ["--max-sources", "3", "--source-ttl", "7", "--max-staleness", "0.5"], env={}
    )
    assert config.hub_limits() == HubLimits(
        resume_window=1024,
        max_series_per_source=10_000,
        max_sources=3,
        subscriber_queue=4096,
        max_subscribers=1000,
        source_ttl=7.0,
        max_staleness=0.5,
    )


def test_help_shows_each_default_and_variable_and_what_is_off_unless_set() -> None:
    text = " ".join(command_line().format_help().split())
    assert "(default: 127.0.0.1:50051; env METRICS_COLLECTOR_LISTEN)" in text
    assert "(default: hostname; env METRICS_COLLECTOR_HOST_SOURCE)" in text
    assert "(off unless set; env METRICS_COLLECTOR_OTLP_LISTEN)" in text


def test_every_config_field_is_an_option() -> None:
    flags = {option.name for option in command_line().options}
    assert flags == set(CollectorConfig.__dataclass_fields__)
