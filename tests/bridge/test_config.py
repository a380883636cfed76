"""Bridge options: flags, environment variables, defaults and errors."""

from __future__ import annotations

import pytest

from bridge.config import Address, CollectorTarget, parse_config


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


def test_bad_environment_value_exits_with_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        parse_config([], {"METRICS_BRIDGE_COMPRESSION": "zstd"})
