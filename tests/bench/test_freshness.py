"""bench.freshness: the overload verdicts, the latency budget and their tables."""

from __future__ import annotations

from typing import Any

import pytest

from bench.freshness import budget_goals, budget_rows, overload_verdicts, render_freshness

MB = 2**20


def overload_row(bound: float, p99: float, delivered: float, rss_end: float) -> dict[str, Any]:
    return {
        "max_staleness": bound,
        "clients": 1000,
        "warmup": 5.0,
        "seconds": 15.0,
        "cores": "server under test on core(s) 0",
        "push_rate": 600.0,
        "offered_deliveries_per_s": 600_000.0,
        "deliveries_per_s": delivered,
        "position_rate": 550.0,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "after_stamp_p99_ms": p99 - 50,
        "bridge_rss_start": 100 * MB,
        "bridge_rss_end": rss_end,
        "collector_rss_start": 50 * MB,
        "collector_rss_end": 50 * MB,
        "drops": {"client/stale": 1234.0},
    }


def by_goal(verdicts: list[dict[str, Any]]) -> dict[str, bool]:
    return {v["goal"]: v["ok"] for v in verdicts}


def test_a_bounded_row_holds_within_the_bound_plus_slack_keeping_throughput_and_rss() -> None:
    rows = [
        overload_row(0.0, 12_000, 150_000, 400 * MB),
        overload_row(1.0, 1_080, 140_000, 105 * MB),
    ]
    verdicts = by_goal(overload_verdicts(rows))
    assert verdicts["p99 <= 1,100 ms (bound 1 s + 100 ms)"]
    assert verdicts["collector -> client p99 <= 1,100 ms (bound 1 s + 100 ms)"]
    assert verdicts["deliveries/s >= 90% of the unbounded run's"]
    assert verdicts["bridge RSS flat (end <= start + 10%)"]
    assert verdicts["offer >= 3x deliveries (bound 1 s)"]


def test_a_bounded_row_fails_on_late_data_lost_throughput_or_growing_rss() -> None:
    rows = [
        overload_row(0.0, 12_000, 150_000, 400 * MB),
        overload_row(1.0, 1_200, 120_000, 130 * MB),
    ]
    verdicts = by_goal(overload_verdicts(rows))
    assert not verdicts["p99 <= 1,100 ms (bound 1 s + 100 ms)"]
    assert not verdicts["deliveries/s >= 90% of the unbounded run's"]
    assert not verdicts["bridge RSS flat (end <= start + 10%)"]
    assert verdicts["offer >= 3x deliveries (bound 1 s)"]


def test_an_offer_under_three_times_the_deliveries_is_not_overload() -> None:
    row = overload_row(0.0, 100, 300_000, 100 * MB)
    assert by_goal(overload_verdicts([row])) == {"offer >= 3x deliveries (bound 0 s)": False}


BUDGET: dict[str, Any] = {
    "clients": 1000,
    "rate": 10.0,
    "seconds": 20.0,
    "latency_clients": 100,
    "cores": "server under test on core(s) 0",
    "bridge": {
        "p50_ms": 16.0,
        "p99_ms": 30.0,
        "mean_ms": 17.0,
        "stamp_p50_ms": 1.0,
        "stamp_p99_ms": 3.0,
        "stamp_mean_ms": 1.5,
        "latency_samples": 20_000,
        "hops": {
            "upstream": {"p50_ms": 1.0, "p99_ms": 2.0, "mean_ms": 1.2, "count": 200},
            "handoff": {"p50_ms": 0.2, "p99_ms": 1.0, "mean_ms": 0.3, "count": 200},
            "flush": {"p50_ms": 18.0, "p99_ms": 28.0, "mean_ms": 19.0, "count": 200},
        },
    },
    "baselines": [
        {"server": "raw", "p50_ms": 6.0, "p99_ms": 17.0, "mean_ms": 7.0},
        {"server": "ws", "p50_ms": 11.0, "p99_ms": 26.0, "mean_ms": 12.0},
    ],
}


def test_the_budget_lists_each_hop_then_what_the_means_leave_then_the_total() -> None:
    rows = budget_rows(BUDGET)
    assert [row["p50_ms"] for row in rows] == [1.0, 1.0, 0.2, 18.0, None, 16.0]
    assert rows[4]["mean_ms"] == pytest.approx(17.0 - (1.5 + 1.2 + 0.3 + 19.0))
    assert rows[-1]["mean_ms"] == 17.0
    assert budget_rows({}) == []


def test_budget_goals_compare_p50_with_raw_and_p99_with_ws() -> None:
    goals = by_goal(budget_goals(BUDGET))
    assert goals == {"bridge p50 <= 2x raw's": False, "bridge p99 < Node ws p99": False}
    faster = {**BUDGET, "bridge": {**BUDGET["bridge"], "p50_ms": 12.0, "p99_ms": 25.0}}
    assert set(by_goal(budget_goals(faster)).values()) == {True}


def test_the_tables_render_only_the_sections_measured() -> None:
    assert render_freshness({}) == []
    text = "\n".join(render_freshness({"budget": BUDGET}))
    assert "| total: publish time to the client's kernel receive time | 16.0 | 30.0 |" in text
    assert "| raw | 6.0 | 17.0 |" in text
    assert "Overload" not in text
    threads = [
        {"send_threads": n, "clients": 1000, "deliveries_per_s": 1e5, "p50_ms": 9.0,
         "p99_ms": 20.0, "server_cpu": 0.9, "load_cpu": 0.5}
        for n in (1, 2)
    ]  # fmt: skip
    text = "\n".join(
        render_freshness({"overload": [overload_row(0.0, 9e3, 1e5, 1e8)], "send_threads": threads})
    )
    assert "| 0 s | 600 | 600,000 | 100,000 | 550 |" in text
    assert "client/stale 1,234" in text
    assert "| 2 | 100,000 | 9.0 | 20.0 | 90% | 50% |" in text
