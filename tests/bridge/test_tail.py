"""`metrics-bridge tail` against a running bridge, as a subprocess."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bridge.client import ChannelView
from bridge.tail import Printer, command_line, parse_args
from tests.bridge.test_client_state import snapshot
from tests.support.processes import REPO
from tests.support.stack import COLLECTOR, Stack, gauge, push, running_stack
from tests.support.timing import scaled


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(bridge_extra=["--heartbeat", "0.5"]) as running:
        yield running


def tail(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "tail", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )


def test_tail_prints_live_host_values_by_default(stack: Stack) -> None:
    result = tail(stack.url, "--count", "3", "--timeout", str(scaled(30)))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    channels = {line.split()[0] for line in lines}
    assert len(channels) == 1
    assert channels.pop().startswith(f"{COLLECTOR}/")
    seqs = sorted({int(line.split()[1]) for line in lines})
    assert len(seqs) == 3, "a sync and two updates, each with its own seq"
    assert any(line.split()[2].startswith("system_") for line in lines)


def test_tail_prints_the_pushed_value_of_a_chosen_channel(stack: Stack) -> None:
    push(stack.grpc_address, "tailsvc", [[gauge("queue_depth", 42.5, queue="orders")]])
    result = tail(
        stack.url, "--channel", f"{COLLECTOR}/tailsvc", "--once", "--timeout", str(scaled(30))
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    channel, _seq, key, value = line.split()
    assert (channel, key, value) == (f"{COLLECTOR}/tailsvc", 'queue_depth{queue="orders"}', "42.5")


def test_tail_filters_series_by_name(stack: Stack) -> None:
    push(stack.grpc_address, "tailfilter", [[gauge("kept_total", 1), gauge("other", 2)]])
    result = tail(
        stack.url,
        "--channel",
        f"{COLLECTOR}/tailfilter",
        "--once",
        "--match",
        "kept",
        "--timeout",
        str(scaled(30)),
    )
    assert result.returncode == 0, result.stderr
    assert [line.split()[2] for line in result.stdout.splitlines()] == ["kept_total"]


def test_tail_exits_with_an_error_for_an_unknown_channel(stack: Stack) -> None:
    result = tail(
        stack.url, "--channel", f"{COLLECTOR}/no-such-source", "--timeout", str(scaled(30))
    )
    assert result.returncode == 1
    assert "unknown channel" in result.stderr


def test_tail_options_default_to_the_local_bridge_and_its_first_host_channel() -> None:
    options = parse_args([], env={})
    assert options.url == "ws://127.0.0.1:8765/"
    assert (options.channel, options.match, options.count, options.timeout) == (None, "", 0, 0)
    assert (options.compression, options.log_level) == ("deflate", "WARNING")


def test_tail_options_come_from_environment_variables() -> None:
    options = parse_args(
        [],
        env={
            "METRICS_BRIDGE_URL": "ws://bridge:1/",
            "METRICS_BRIDGE_TAIL_CHANNEL": "c/s",
            "METRICS_BRIDGE_TAIL_MATCH": "cpu",
            "METRICS_BRIDGE_TAIL_COUNT": "4",
            "METRICS_BRIDGE_TAIL_TIMEOUT": "2.5",
            "METRICS_BRIDGE_TAIL_COMPRESSION": "none",
            "METRICS_BRIDGE_LOG_LEVEL": "debug",
        },
    )
    assert (options.url, options.channel, options.match) == ("ws://bridge:1/", "c/s", "cpu")
    assert (options.count, options.timeout) == (4, 2.5)
    assert (options.compression, options.log_level) == ("none", "DEBUG")


def test_tail_flags_win_over_environment_variables() -> None:
    env = {"METRICS_BRIDGE_URL": "ws://bridge:1/", "METRICS_BRIDGE_TAIL_COUNT": "4"}
    options = parse_args(["ws://other:2/", "--count", "2"], env=env)
    assert (options.url, options.count) == ("ws://other:2/", 2)


@pytest.mark.parametrize(("value", "count"), [("1", 1), ("0", 0), ("", 0)])
def test_tail_once_means_one_view_and_its_variable_is_on_unless_empty_or_0(
    value: str, count: int
) -> None:
    assert parse_args([], env={"METRICS_BRIDGE_TAIL_ONCE": value}).count == count
    assert parse_args(["--once"], env={}).count == 1


def test_tail_refuses_a_negative_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(["--count", "-1"], env={})
    assert caught.value.code == 2
    with pytest.raises(SystemExit):
        parse_args([], env={"METRICS_BRIDGE_TAIL_COUNT": "-1"})
    assert "METRICS_BRIDGE_TAIL_COUNT: must be at least 0" in capsys.readouterr().err


def test_tail_help_names_every_variable() -> None:
    text = " ".join(command_line().format_help().split())
    for variable in (
        "METRICS_BRIDGE_URL",
        "METRICS_BRIDGE_TAIL_ONCE=1",
        "METRICS_BRIDGE_LOG_LEVEL",
    ):
        assert f"env {variable})" in text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tail_counts_resyncs_in_the_terminal_header() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5}))
    terminal = Terminal()
    Printer(terminal, "").show(view, None)
    assert "resynced" not in terminal.getvalue()
    view.apply_snapshot(snapshot(9, {1: 0.5}), resync="stale")
    view.apply_snapshot(snapshot(12, {1: 0.5}), resync="overflow")
    Printer(terminal, "").show(view, None, "overflow")
    header = terminal.getvalue().rsplit("\x1b[2J", 1)[1].splitlines()[0]
    assert header.startswith("c/svc  epoch") and header.endswith("  resynced: overflow 1, stale 1")


def test_tail_piped_tells_a_resync_on_stderr_and_keeps_stdout_to_values() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(9, {1: 0.5}), resync="stale")
    out, err = io.StringIO(), io.StringIO()
    Printer(out, "", err).show(view, None, "stale")
    assert err.getvalue() == "c/svc resynced at seq 9: stale (stale 1)\n"
    assert out.getvalue() == 'c/svc 9 cpu{core="0"} 0.5\nc/svc 9 mem -\n'
