"""PNG charts of a benchmark run, drawn from its latest.json (matplotlib, Agg backend).

Rules:
- capacity.png: for each capacity scenario, p99 publish-to-receive latency
  against clients (passing points filled, failing ones hollow) with the
  100 ms line, and beside it the bridge's and the load processes' CPU.
- fanout.png: the bridge's deliveries/s over each baseline's (raw, picows,
  broadcast(), ws) at every client count and client offer measured, on a log
  scale with the 1x line; a baseline measured with one offer only (it never
  compresses) stands for both, as in the table.
- A chart whose section is missing or empty is skipped with a message saying
  which and why; nothing else fails.

Run: `python -m bench.charts bench/results/latest.json` (also at the end of `make bench`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["BASELINES", "draw", "fanout_ratios"]

BASELINES = ("raw", "picows", "broadcast", "ws")
P99_LIMIT_MS = 100.0
LATENCY_TICKS = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


def fanout_ratios(runs: list[dict[str, Any]]) -> dict[str, list[tuple[str, float | None]]]:
    """Per baseline, (client count and offer, bridge / baseline deliveries/s) in run order."""
    from bench.report import _find

    points = [(r["clients"], r["compression"]) for r in runs if r["server"] == "bridge"]
    ratios: dict[str, list[tuple[str, float | None]]] = {}
    for baseline in BASELINES:
        if not any(r["server"] == baseline for r in runs):
            continue
        row: list[tuple[str, float | None]] = []
        for clients, compression in points:
            bridge = _find(runs, "bridge", clients, compression)
            other = _find(runs, baseline, clients, compression)
            ratio = None
            if other and other["deliveries_per_s"]:
                ratio = bridge["deliveries_per_s"] / other["deliveries_per_s"]
            row.append((f"{clients:,}\n{compression}", ratio))
        ratios[baseline] = row
    return ratios


def _capacity(data: dict[str, Any], path: Path) -> str:
    scenarios = [s for s in (data.get("capacity") or {}).get("scenarios", []) if s["points"]]
    if not scenarios:
        return f"{path.name} skipped: no capacity section with points (python -m bench.capacity)"
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for index, scenario in enumerate(scenarios):
        color = f"C{index}"
        points = sorted(scenario["points"], key=lambda p: p["clients"])
        timed = [p for p in points if p["p99_ms"] is not None]
        label = f"{scenario['label']}: {scenario['clients']:,}{'+' if scenario['capped'] else ''}"
        left.plot(
            [p["clients"] for p in timed], [p["p99_ms"] for p in timed], color=color, label=label
        )
        for p in timed:
            left.scatter(
                p["clients"],
                p["p99_ms"],
                color=color,
                facecolors=color if p["passed"] else "none",
                zorder=3,
            )
        clients = [p["clients"] for p in points]
        right.plot(clients, [p["bridge_cpu"] * 100 for p in points], color=color, marker="o")
        right.plot(clients, [p["load_cpu"] * 100 for p in points], color=color, marker="x", ls="--")
    left.axhline(P99_LIMIT_MS, color="red", ls=":", label=f"p99 = {P99_LIMIT_MS:g} ms")
    left.set(xscale="log", yscale="log", xlabel="clients", ylabel="p99 publish-to-receive (ms)")
    latencies = [
        P99_LIMIT_MS,
        *(p["p99_ms"] for s in scenarios for p in s["points"] if p["p99_ms"]),
    ]
    low, high = min(latencies), max(latencies)
    left.set_yticks([t for t in LATENCY_TICKS if low / 2 <= t <= high * 2])
    left.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,g}"))
    left.yaxis.set_minor_formatter(NullFormatter())
    counts = sorted({p["clients"] for s in scenarios for p in s["points"]})
    left.set_title("one bridge: clients at p99 <= 100 ms (filled: pass)")
    left.legend(fontsize=8)
    right.plot([], [], color="gray", marker="o", label="bridge CPU")
    right.plot([], [], color="gray", marker="x", ls="--", label="load processes' CPU")
    right.set(xscale="log", xlabel="clients", ylabel="% of one core")
    right.set_title("CPU during each window (colors as left)")
    right.legend(fontsize=8)
    for axis in (left, right):
        axis.grid(alpha=0.3, which="both")
        axis.set_xticks(counts)
        axis.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.tick_params(axis="x", labelrotation=45)
    capacity = data.get("capacity") or {}
    pinned = (capacity.get("settings") or {}).get("server_cores")
    cores = ",".join(map(str, pinned or []))
    where = f"bridge pinned to core(s) {cores}" if pinned else "bridge and load share the CPUs"
    figure.suptitle(f"make bench: capacity sweep ({capacity.get('cpus')} CPUs, {where})")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return f"wrote {path}"


def _fanout(data: dict[str, Any], path: Path) -> str:
    runs = data.get("runs") or []
    ratios = fanout_ratios(runs)
    if not any(r for row in ratios.values() for _, r in row if r):
        return f"{path.name} skipped: no bridge and baseline fan-out runs in this results file"
    import matplotlib.pyplot as plt

    labels = [label for label, _ in next(iter(ratios.values()))]
    width = 0.8 / len(ratios)
    figure, axis = plt.subplots(figsize=(max(8.0, 1.4 * len(labels)), 4.8))
    for index, (baseline, row) in enumerate(ratios.items()):
        xs = [i + (index - (len(ratios) - 1) / 2) * width for i in range(len(row))]
        heights = [r or 0.0 for _, r in row]
        bars = axis.bar(xs, heights, width, label=f"bridge / {baseline}")
        for bar, (_, ratio) in zip(bars, row, strict=True):
            if ratio:
                axis.annotate(
                    f"{ratio:.1f}",
                    (bar.get_x() + bar.get_width() / 2, ratio),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    axis.axhline(1.0, color="black", lw=0.8)
    axis.set_yscale("log")
    axis.set_xticks(range(len(labels)), labels)
    axis.set(xlabel="clients, what they offer", ylabel="bridge deliveries/s over baseline's")
    axis.set_title("make bench: fan-out, the bridge against each baseline (same run)")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3, axis="y", which="both")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return f"wrote {path}"


def draw(data: dict[str, Any], out: Path) -> list[str]:
    """Draw every chart the results hold into `out`; one message per chart."""
    try:
        import matplotlib
    except ImportError:
        return ["charts skipped: matplotlib is not installed (pip install -e '.[soak]')"]
    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    return [_capacity(data, out / "capacity.png"), _fanout(data, out / "fanout.png")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.charts", description=__doc__)
    parser.add_argument("results", type=Path, help="a latest.json of `make bench`")
    parser.add_argument("--out", type=Path, help="directory (default: the results file's)")
    args = parser.parse_args(argv)
    data = json.loads(args.results.read_text())
    for message in draw(data, args.out or args.results.parent):
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
