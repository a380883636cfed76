"""The tables of issue 13's sections: overload, latency budget, send threads on one core.

Numbers in, verdicts and markdown out; nothing here measures.

Rules:
- Overload: the bound's row holds when its p99 is at most the bound plus
  `OVERLOAD_SLACK_MS` (checked end to end, and from the collector's stamp
  on: the Push hop before it is the pusher's gRPC queue, which no bound
  covers), its deliveries/s are at least `OVERLOAD_KEEP` of the unbounded
  row's, and bridge and collector RSS are flat: at the end of the window at
  most `RSS_FLAT` more than at its start. The offer must be at least
  `OVERLOAD_OFFER` times the deliveries for the row to be overload.
- Budget: each hop's p50/p99/mean. The Push hop and the total are exact
  (per update, on the client); the bridge's hops come from its Prometheus
  histograms over the window, so their quantiles are bucket estimates and
  only their means are exact. The last hop (kernel send to client) is what
  the means leave over: total minus the others. Goals: bridge p50 at most
  `BUDGET_P50_VS_RAW` times raw's, bridge p99 below Node `ws`'s.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BUDGET_HOPS",
    "budget_goals",
    "budget_rows",
    "overload_verdicts",
    "render_freshness",
]

OVERLOAD_SLACK_MS = 100.0
OVERLOAD_KEEP = 0.9
OVERLOAD_OFFER = 3.0
RSS_FLAT = 0.10
BUDGET_P50_VS_RAW = 2.0

# The bridge's hops, each a histogram of its /metrics: (key, metric, what it covers).
BUDGET_HOPS = (
    (
        "upstream",
        "metrics_bridge_upstream_delay_seconds",
        "collector -> bridge: collector's stamp to the read off its Subscribe stream",
    ),
    (
        "handoff",
        "metrics_bridge_handoff_delay_seconds",
        "bridge hand-off: read (reader thread) to applied on the event loop",
    ),
    (
        "flush",
        "metrics_bridge_flush_delay_seconds",
        "bridge queue: first frame of a write batch queued to the batch written "
        "(pacer wait and every client's send())",
    ),
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def _flat(start: float | None, end: float | None) -> bool:
    return start is not None and end is not None and end <= start * (1 + RSS_FLAT)


def overload_verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's goals for each bounded row, against the unbounded row of the same run."""
    before = next((row for row in rows if not row["max_staleness"]), None)
    out: list[dict[str, Any]] = []
    for row in rows:
        bound = row["max_staleness"]
        offer = row["offered_deliveries_per_s"] / max(1.0, row["deliveries_per_s"])
        out.append(
            {
                "goal": f"offer >= {OVERLOAD_OFFER:g}x deliveries (bound {bound:g} s)",
                "measured": f"{offer:.1f}x",
                "ok": offer >= OVERLOAD_OFFER,
            }
        )
        if not bound:
            continue
        limit = bound * 1000 + OVERLOAD_SLACK_MS
        for key, what in (("p99_ms", "p99"), ("after_stamp_p99_ms", "collector -> client p99")):
            p99 = row.get(key)
            out.append(
                {
                    "goal": f"{what} <= {limit:,.0f} ms (bound {bound:g} s + "
                    f"{OVERLOAD_SLACK_MS:g} ms)",
                    "measured": f"{_ms(p99)} ms",
                    "ok": p99 is not None and p99 <= limit,
                }
            )
        if before and before["deliveries_per_s"]:
            kept = row["deliveries_per_s"] / before["deliveries_per_s"]
            out.append(
                {
                    "goal": f"deliveries/s >= {OVERLOAD_KEEP:.0%} of the unbounded run's",
                    "measured": f"{kept:.0%}",
                    "ok": kept >= OVERLOAD_KEEP,
                }
            )
        for process in ("bridge", "collector"):
            start, end = row.get(f"{process}_rss_start"), row.get(f"{process}_rss_end")
            out.append(
                {
                    "goal": f"{process} RSS flat (end <= start + {RSS_FLAT:.0%})",
                    "measured": f"{_mb(start)} -> {_mb(end)} MB",
                    "ok": _flat(start, end),
                }
            )
    return out


def budget_rows(budget: dict[str, Any]) -> list[dict[str, Any]]:
    """The latency budget of the bridge, hop by hop, ending with the total (see Rules)."""
    bridge = budget.get("bridge") or {}
    if not bridge:
        return []
    rows: list[dict[str, Any]] = [
        {
            "hop": "pusher -> collector: publish time to the collector's stamp (Push applied)",
            "p50_ms": bridge.get("stamp_p50_ms"),
            "p99_ms": bridge.get("stamp_p99_ms"),
            "mean_ms": bridge.get("stamp_mean_ms"),
            "source": "clients, per update (exact; the stamp has 1 ms resolution)",
        }
    ]
    hops = bridge.get("hops") or {}
    for key, _, what in BUDGET_HOPS:
        hop = hops.get(key) or {}
        rows.append(
            {
                "hop": what,
                "p50_ms": hop.get("p50_ms"),
                "p99_ms": hop.get("p99_ms"),
                "mean_ms": hop.get("mean_ms"),
                "source": f"bridge histogram, {hop.get('count', 0):,.0f} observations "
                "(quantiles: bucket estimates; mean exact)",
            }
        )
    means = [row["mean_ms"] for row in rows]
    total = bridge.get("mean_ms")
    rest = None if total is None or None in means else total - sum(means)
    rows.append(
        {
            "hop": "kernel send -> client: what the means above leave of the total",
            "p50_ms": None,
            "p99_ms": None,
            "mean_ms": rest,
            "source": "total minus the hops above (negative: clients got their frame "
            "before the whole batch was written)",
        }
    )
    rows.append(
        {
            "hop": "total: publish time to the client's kernel receive time",
            "p50_ms": bridge.get("p50_ms"),
            "p99_ms": bridge.get("p99_ms"),
            "mean_ms": total,
            "source": f"clients, {bridge.get('latency_samples', 0):,} updates (exact)",
        }
    )
    return rows


def budget_goals(budget: dict[str, Any]) -> list[dict[str, Any]]:
    """Bridge p50 within 2x of raw's, and p99 below Node ws's, on the same cores."""
    bridge = budget.get("bridge") or {}
    others = {row["server"]: row for row in budget.get("baselines", [])}
    out: list[dict[str, Any]] = []
    raw, ws = others.get("raw"), others.get("ws")
    if bridge.get("p50_ms") is not None and raw and raw.get("p50_ms"):
        ratio = bridge["p50_ms"] / raw["p50_ms"]
        out.append(
            {
                "goal": f"bridge p50 <= {BUDGET_P50_VS_RAW:g}x raw's",
                "measured": f"{ratio:.2f}x ({_ms(bridge['p50_ms'])} vs {_ms(raw['p50_ms'])} ms)",
                "ok": ratio <= BUDGET_P50_VS_RAW,
            }
        )
    if bridge.get("p99_ms") is not None and ws and ws.get("p99_ms") is not None:
        out.append(
            {
                "goal": "bridge p99 < Node ws p99",
                "measured": f"{_ms(bridge['p99_ms'])} vs {_ms(ws['p99_ms'])} ms",
                "ok": bridge["p99_ms"] < ws["p99_ms"],
            }
        )
    return out


def _goal_lines(goals: list[dict[str, Any]]) -> list[str]:
    lines = ["", "| goal | measured | holds |", "|---|---:|---|"]
    for row in goals:
        lines.append(f"| {row['goal']} | {row['measured']} | {'yes' if row['ok'] else '**no**'} |")
    return lines


def _overload_lines(rows: list[dict[str, Any]]) -> list[str]:
    first = rows[0]
    cores = first.get("cores", "")
    lines = [
        "",
        f"Overload: {first['clients']:,} clients, the pusher flat out through the collector "
        f"(one Push stream, as fast as it takes batches), {first['warmup']:g} s to fill the "
        f"queues, then a {first['seconds']:g} s window; the bridge and the collector both "
        f"with the --max-staleness shown (0: off, the behaviour before issue 13)"
        f"{'; bridge options ' + first['bridge_args'] if first.get('bridge_args') else ''}. "
        f"{cores}. "
        f"Latency, on {first.get('timing_clients', '-')} of the clients in a load process of "
        "their own (light, so it reads as data arrives): receive time minus the update's "
        "publish time, resync snapshots included, "
        "split at the collector's stamp (when it applied the Push) into the Push hop and "
        "collector -> client, the part the staleness bounds govern. Position advance: how "
        "many of the channel's events a timing client's position moved per second (a "
        "merged update or resync snapshot covers many in one delivery). RSS in MB at the "
        "window's start -> end (max).",
        "",
        "| max-staleness | offered events/s | offered deliveries/s | deliveries/s "
        "| position advance events/s "
        "| p50 ms | p99 ms | max ms | Push hop p50 / p99 ms | collector -> client p50 / p99 ms "
        "| bridge RSS MB | collector RSS MB | bridge CPU | drops by stage/reason |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|",
    ]
    for row in rows:
        drops = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(row.get("drops", {}).items()))
        lines.append(
            f"| {row['max_staleness']:g} s | {row['push_rate']:,.0f} "
            f"| {row['offered_deliveries_per_s']:,.0f} | {row['deliveries_per_s']:,.0f} "
            f"| {row.get('position_rate', 0):,.0f} "
            f"| {_ms(row.get('p50_ms'))} | {_ms(row.get('p99_ms'))} | {_ms(row.get('max_ms'))} "
            f"| {_ms(row.get('stamp_p50_ms'))} / {_ms(row.get('stamp_p99_ms'))} "
            f"| {_ms(row.get('after_stamp_p50_ms'))} / {_ms(row.get('after_stamp_p99_ms'))} "
            f"| {_mb(row.get('bridge_rss_start'))} -> {_mb(row.get('bridge_rss_end'))} "
            f"({_mb(row.get('bridge_rss_max'))}) "
            f"| {_mb(row.get('collector_rss_start'))} -> {_mb(row.get('collector_rss_end'))} "
            f"({_mb(row.get('collector_rss_max'))}) | {row.get('bridge_cpu', 0):.0%} "
            f"| {drops or '-'} |"
        )
    return lines + _goal_lines(overload_verdicts(rows))


def _budget_lines(budget: dict[str, Any]) -> list[str]:
    cores = budget.get("cores", "")
    lines = [
        "",
        f"Latency budget: {budget['clients']:,} clients, {budget['rate']:g} updates/s, "
        f"{budget['seconds']:g} s windows, {budget.get('latency_clients', 0)} clients timing "
        f"every update. {cores}.",
        "",
        "| hop (bridge) | p50 ms | p99 ms | mean ms | from |",
        "|---|---:|---:|---:|---|",
    ]
    for row in budget_rows(budget):
        lines.append(
            f"| {row['hop']} | {_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} "
            f"| {_ms(row['mean_ms'])} | {row['source']} |"
        )
    if budget.get("baselines"):
        lines += [
            "",
            "| server, same cores and load | p50 ms | p99 ms | mean ms | updates timed "
            "| server CPU |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in [{"server": "bridge", **budget["bridge"]}, *budget["baselines"]]:
            lines.append(
                f"| {row['server']} | {_ms(row.get('p50_ms'))} | {_ms(row.get('p99_ms'))} "
                f"| {_ms(row.get('mean_ms'))} | {row.get('latency_samples', 0):,} "
                f"| {row.get('server_cpu', 0):.0%} |"
            )
    return lines + _goal_lines(budget_goals(budget))


def _threads_lines(rows: list[dict[str, Any]]) -> list[str]:
    cores = rows[0].get("cores", "")
    lines = [
        "",
        f"The bridge's send threads ({cores}), {rows[0]['clients']:,} clients: "
        "deliveries/s under the fan-out section's offer, latency at its update rate.",
        "",
        "| --send-threads | deliveries/s | p50 ms | p99 ms | server CPU | load CPU |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['send_threads']} | {row['deliveries_per_s']:,.0f} | {_ms(row['p50_ms'])} "
            f"| {_ms(row['p99_ms'])} | {row['server_cpu']:.0%} | {row['load_cpu']:.0%} |"
        )
    return lines


def render_freshness(data: dict[str, Any]) -> list[str]:
    """The markdown of whichever of the three sections `data` holds."""
    lines: list[str] = []
    if data.get("overload"):
        lines += _overload_lines(data["overload"])
    if data.get("budget"):
        lines += _budget_lines(data["budget"])
    if data.get("send_threads"):
        lines += _threads_lines(data["send_threads"])
    return lines
