"""bench.pinning: which cores servers and the rest of the bench get, and pinning them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.pinning import CorePlan, Pinned, parse_cores, pin

linux = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux affinity only")


def test_cores_are_listed_with_commas_and_ranges() -> None:
    assert parse_cores("0") == {0}
    assert parse_cores("0,2-3") == {0, 2, 3}
    assert parse_cores("") == frozenset()
    with pytest.raises(ValueError):
        parse_cores("3-1")


def test_the_server_gets_its_cores_and_the_rest_of_the_bench_the_others() -> None:
    plan = CorePlan.parse("0", frozenset({0, 1}))
    assert (plan.server, plan.rest, plan.shared) == (frozenset({0}), frozenset({1}), False)
    assert "core(s) 0" in plan.describe() and "core(s) 1" in plan.describe()


def test_with_no_core_left_over_the_rest_shares_the_servers() -> None:
    plan = CorePlan.parse("0", frozenset({0}))
    assert (plan.server, plan.rest, plan.shared) == (frozenset({0}), frozenset({0}), True)


def test_an_empty_list_pins_nothing_and_a_missing_core_is_refused() -> None:
    plan = CorePlan.parse("", frozenset({0, 1}))
    assert not plan.enabled and plan.describe() == "not pinned"
    with pytest.raises(ValueError, match="not available"):
        CorePlan.parse("5", frozenset({0, 1}))


@linux
def test_pin_moves_every_thread_of_a_running_process() -> None:
    core = min(os.sched_getaffinity(0))
    script = (
        "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); input()"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE)
    try:
        while len(os.listdir(f"/proc/{child.pid}/task")) < 2:
            assert child.poll() is None
        pin(child.pid, frozenset({core}))
        threads = [int(t) for t in os.listdir(f"/proc/{child.pid}/task")]
        assert [os.sched_getaffinity(t) for t in threads] == [{core}] * len(threads)
    finally:
        child.kill()
        child.wait()


@linux
def test_pinned_gives_this_process_its_affinity_back() -> None:
    before = os.sched_getaffinity(0)
    with Pinned(frozenset({min(before)})):
        assert os.sched_getaffinity(0) == {min(before)}
    assert os.sched_getaffinity(0) == before
