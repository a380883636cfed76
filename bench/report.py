"""The benchmark's table, the issue's floors and the project's goal, from one run.

The floors are the issue's acceptance figures. The goal is the project's own:
fan-out faster than Node's `ws` (the ws baseline, bench/node/ws_baseline.mjs),
compared at every client count and client offer measured.
"""

from __future__ import annotations

from typing import Any

from bench.capacity import capacity_lines
from bench.freshness import render_freshness

FLOOR_CLIENTS = 1000
FLOOR_RATIO = 1.3
FLOOR_P99_MS = 30.0
FLOOR_RSS_BYTES = 8 * 1024
FLOOR_BYTES_RATIO = 0.10


def _find(runs: list[dict[str, Any]], server: str, clients: int, compression: str) -> Any:
    """The run of `server` at `clients` for clients offering `compression`; a server that
    was measured with one offer only (it never compresses) stands for both."""
    fallback = None
    for run in runs:
        if (run["server"], run["clients"]) == (server, clients):
            if run["compression"] == compression:
                return run
            fallback = run
    return fallback


def _floor_clients(runs: list[dict[str, Any]]) -> int | None:
    counts = sorted({run["clients"] for run in runs})
    if not counts:
        return None
    return FLOOR_CLIENTS if FLOOR_CLIENTS in counts else counts[-1]


def bytes_ratio(row: dict[str, Any]) -> float | None:
    """Bridge protobuf bytes per update over naive JSON bytes; None without JSON updates."""
    if not row.get("json_bytes_per_update"):
        return None
    return float(row["protobuf_bytes_per_update"]) / float(row["json_bytes_per_update"])


def bytes_summary(row: dict[str, Any]) -> str:
    """One bytes comparison in words: per update, updates seen, and the ratio."""
    ratio = bytes_ratio(row)
    share = "-" if ratio is None else f"{ratio:.1%} of JSON"
    return (
        f"protobuf {row['protobuf_bytes_per_update']:.0f} ({row['protobuf_updates']} updates), "
        f"naive JSON {row['json_bytes_per_update']:.0f} ({row['json_updates']} updates): {share}"
    )


def verdicts(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each floor of the issue: what was measured and whether it holds."""
    runs = data["runs"]
    out: list[dict[str, Any]] = []
    clients = _floor_clients(runs)
    if clients is not None:
        for compression in ("none", "deflate"):
            bridge = _find(runs, "bridge", clients, compression)
            base = _find(runs, "broadcast", clients, compression)
            if bridge and base and base["deliveries_per_s"] > 0:
                ratio = bridge["deliveries_per_s"] / base["deliveries_per_s"]
                out.append(
                    {
                        "floor": f"deliveries/s >= {FLOOR_RATIO}x broadcast() at {clients} "
                        f"clients offering {compression}",
                        "measured": f"{ratio:.2f}x",
                        "ok": ratio >= FLOOR_RATIO,
                    }
                )
            if bridge and bridge["p99_ms"] is not None:
                out.append(
                    {
                        "floor": f"p99 < {FLOOR_P99_MS:g} ms at {clients} clients offering "
                        f"{compression}",
                        "measured": f"{bridge['p99_ms']:.1f} ms",
                        "ok": bridge["p99_ms"] < FLOOR_P99_MS,
                    }
                )
    for row in data["rss"]:
        out.append(
            {
                "floor": f"RSS per idle connection <= 8 KiB, compression {row['compression']}",
                "measured": f"{row['bytes_per_connection'] / 1024:.1f} KiB",
                "ok": row["bytes_per_connection"] < FLOOR_RSS_BYTES,
            }
        )
    host = data["host_bytes"]
    ratio = bytes_ratio(host) if host else None
    if ratio is not None:
        out.append(
            {
                "floor": "protobuf host update <= 10 % of JSON bytes",
                "measured": f"{ratio:.1%}",
                "ok": ratio <= FLOOR_BYTES_RATIO,
            }
        )
    return out


def goal(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Bridge deliveries/s against the ws baseline's, wherever both were measured."""
    runs = data["runs"]
    out: list[dict[str, Any]] = []
    for run in runs:
        if run["server"] != "bridge":
            continue
        ws = _find(runs, "ws", run["clients"], run["compression"])
        if not ws or not ws["deliveries_per_s"]:
            continue
        ratio = run["deliveries_per_s"] / ws["deliveries_per_s"]
        out.append(
            {
                "clients": run["clients"],
                "compression": run["compression"],
                "bridge": run["deliveries_per_s"],
                "ws": ws["deliveries_per_s"],
                "ratio": ratio,
                "bridge_p99_ms": run["p99_ms"],
                "ws_p99_ms": ws["p99_ms"],
                "ok": ratio > 1.0,
            }
        )
    return out


def _ratio(run: dict[str, Any], other: Any) -> str:
    if not other or not other["deliveries_per_s"]:
        return "-"
    return f"{run['deliveries_per_s'] / other['deliveries_per_s']:.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(data: dict[str, Any]) -> str:
    machine = data["machine"]
    settings = data["settings"]
    lines = [
        "# metrics-bridge fan-out benchmark",
        "",
        f"{machine['started']}, {machine['cpus']} CPUs, Python {machine['python']}, "
        f"{machine['platform']}; load average {machine['load_average'][0]:.2f} at start, "
        f"{machine.get('load_average_at_end', [0])[0]:.2f} at the end. "
        f"Throughput windows of {settings['throughput_seconds']} s; latency windows of "
        f"{settings['latency_seconds']} s at {settings['latency_rate']:g} updates/s; "
        "throughput offered "
        f"{settings['offered']:,.0f} deliveries/s (push rate capped at "
        f"{settings['max_push_rate']:g}/s). {_placement(settings)} "
        "CPU columns: share of one core used by the server "
        "and by the load client during the throughput window (a load client near 100 % "
        "means the figure is bounded by the load client, not the server).",
    ]
    runs = data["runs"]
    if runs:
        lines += [
            "",
            "| clients | clients offer | server | deliveries/s | x ws | x picows | x broadcast "
            "| x naive | x raw | server CPU | load CPU | p50 ms | p99 ms | bytes/update |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    for run in runs:
        key = (run["clients"], run["compression"])
        lines.append(
            f"| {run['clients']:,} | {run['compression']} | {run['server']} "
            f"| {run['deliveries_per_s']:,.0f} "
            f"| {_ratio(run, _find(runs, 'ws', *key))} "
            f"| {_ratio(run, _find(runs, 'picows', *key))} "
            f"| {_ratio(run, _find(runs, 'broadcast', *key))} "
            f"| {_ratio(run, _find(runs, 'naive', *key))} "
            f"| {_ratio(run, _find(runs, 'raw', *key))} "
            f"| {run.get('server_cpu', 0):.0%} | {run.get('load_cpu', 0):.0%} "
            f"| {_ms(run['p50_ms'])} | {_ms(run['p99_ms'])} | {run['bytes_per_update']:.0f} |"
        )
    if data["rss"]:
        lines += ["", "| bridge RSS | connections | deflate negotiated | per idle connection |"]
        lines.append("|---|---:|---:|---:|")
        for row in data["rss"]:
            lines.append(
                f"| compression {row['compression']} | {row['clients']:,} "
                f"| {row['deflate_negotiated']:,} | {row['bytes_per_connection'] / 1024:.1f} KiB |"
            )
    host = data["host_bytes"]
    if host:
        lines += [
            "",
            f"Host metrics ({host['channel']}), bytes on the wire per update: "
            f"{bytes_summary(host)}.",
        ]
    pushed = data.get("pushed_bytes")
    if pushed:
        lines += [
            "",
            f"Pushed service ({pushed['channel']}: {pushed['series']} series of an HTTP "
            f"service, every series in each batch, {pushed['push_rate']:.1f} batches/s), bytes "
            f"on the wire per update: {bytes_summary(pushed)}.",
        ]
    pipeline = data.get("pipeline") or []
    if pipeline:
        lines += [
            "",
            "Pipeline: pushers (batches of gauges, as fast as the collector takes them) -> "
            "collector -> Subscribe -> bridge -> one WebSocket client on every pushed channel. "
            "Events: updates that reached the client in order with no gap; values: gauges "
            "they carried. Push sends one batch per gRPC message, PushBatches several. "
            "Other subscribers are bare Subscribe streams asking what a bridge asks "
            "(batches, deltas), as more bridges would.",
            "",
            "| subscribers | pushers x gauges | RPC | events/s | values/s | gaps | resyncs "
            "| collector CPU/event | bridge CPU/event | collector CPU |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in pipeline:
            per_message = row.get("batches_per_message", 1)
            rpc = "Push" if per_message == 1 else f"PushBatches x{per_message}"
            lines.append(
                f"| {row['subscribers']} | {row['pushers']} x {row['series']} | {rpc} "
                f"| {row['events_per_s']:,.0f} | {row['events_per_s'] * row['series']:,.0f} "
                f"| {row['gaps']} | {row['resyncs']} | {row['collector_cpu_us_per_event']:.0f} us "
                f"| {row['bridge_cpu_us_per_event']:.0f} us | {row['collector_cpu_share']:.0%} |"
            )
    rows = data.get("goal") or goal(data)
    if rows:
        lines += [
            "",
            "The project's goal (not an issue floor): fan-out faster than Node's `ws`.",
            "",
            "| clients | clients offer | bridge deliveries/s | ws deliveries/s | bridge / ws "
            "| bridge p99 ms | ws p99 ms | faster |",
            "|---:|---|---:|---:|---:|---:|---:|---|",
        ]
        for row in rows:
            faster = "yes" if row["ok"] else "**no**"
            lines.append(
                f"| {row['clients']:,} | {row['compression']} | {row['bridge']:,.0f} "
                f"| {row['ws']:,.0f} | {row['ratio']:.2f}x | {_ms(row['bridge_p99_ms'])} "
                f"| {_ms(row['ws_p99_ms'])} | {faster} |"
            )
    if data.get("verdicts"):
        lines += ["", "| floor | measured | holds |", "|---|---:|---|"]
        for verdict in data["verdicts"]:
            holds = "yes" if verdict["ok"] else "**no**"
            lines.append(f"| {verdict['floor']} | {verdict['measured']} | {holds} |")
    lines += render_freshness(data)
    if data.get("capacity"):
        lines += capacity_lines(data["capacity"])
    times = data.get("section_times") or {}
    spent = ", ".join(
        f"{name} {t['seconds']:.0f} s (finished {t['finished']}, load average "
        f"{_load(t.get('load_average_before'))} -> {_load(t.get('load_average'))})"
        for name, t in times.items()
    )
    lines += ["", f"Total run time {data.get('elapsed_s', 0):.0f} s. Sections: {spent}.", ""]
    return "\n".join(lines)


def _load(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _placement(settings: dict[str, Any]) -> str:
    """Which cores the server under test and the rest of the bench ran on."""
    server, rest = settings.get("server_cores"), settings.get("rest_cores")
    if not server:
        return "Collector, server under test, pusher and load client share the machine."
    return (
        f"Every server under test is pinned to core(s) {','.join(map(str, server))}; "
        f"collector, pusher and load client run on core(s) {','.join(map(str, rest or []))}."
    )
