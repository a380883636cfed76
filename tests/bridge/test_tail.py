"""`metrics-bridge tail` against a running bridge, as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

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
