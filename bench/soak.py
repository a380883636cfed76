"""`python -m bench.soak`: a long run under steady load, printing the resources it holds.

Setup (issue 15): a collector sampling its host at 10 Hz (`--interval 0.1`)
and a pushed service at 20 Hz; a bridge; `--clients` WebSocket clients: 85 %
lean clients (bench/load.py processes, half offering permessage-deflate,
split between the two channels), 5 % slow readers (they stop reading for
5-30 s at a time, so the bridge skips, resyncs or closes them; closed ones
reconnect), 10 % that drop and reconnect at random (5-60 s) with resume
(bench/chaos.py's client, so their gaps are counted too).

Every `--sample` seconds it prints bridge and collector RSS, open fds and
threads, deliveries/s, the p99 push-to-receive latency (a 5 s window),
resyncs and slow-client closes. At the end: the least-squares slope of RSS
and fds over the second half (bench/soak_trend.py); it fails if RSS grows
more than 2 % per 10 minutes or fds grow at all, or if a resuming client saw
a gap. The series goes to bench/results/soak.csv and soak.png (matplotlib).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import re
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.chaos import PROTOCOL, ChaosClient
from bench.processes import Server
from bench.pusher import Pusher
from bench.run import LoadProcess, host_source
from bench.soak_trend import trend
from metrics_bridge.v1 import bridge_pb2

__all__ = ["main"]

HEADER = "   t  bridge MB fds thr | collector MB fds thr | deliv/s  p99 ms resyncs slowclose conns"

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = [
    "t_s", "bridge_rss_mb", "bridge_fds", "bridge_threads", "collector_rss_mb",
    "collector_fds", "collector_threads", "deliveries_per_s", "p99_ms", "resyncs",
    "slow_client_closes", "connections",
]  # fmt: skip


async def slow_reader(url: str, channel: str, rng: random.Random, stop: asyncio.Event) -> None:
    """Reads a while, then stops reading for 5-30 s; reconnects when the bridge closes it."""
    while not stop.is_set():
        try:
            async with connect(url, subprotocols=[PROTOCOL], max_queue=4) as ws:
                request = bridge_pb2.ClientMessage()
                request.subscribe.channels.add(channel=channel)
                await ws.send(request.SerializeToString())
                while not stop.is_set():
                    until = time.monotonic() + rng.uniform(2, 10)
                    while time.monotonic() < until:
                        await asyncio.wait_for(ws.recv(), 5)
                    ws.transport.pause_reading()
                    await asyncio.sleep(rng.uniform(5, 30))
                    ws.transport.resume_reading()
        except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
            await asyncio.sleep(rng.uniform(0.5, 2))


async def push_forever(address: str, rate: float, stop: asyncio.Event) -> None:
    pusher = Pusher(address, "svc", series=40, seed=5)
    while not stop.is_set():
        try:
            await pusher.push(rate, 5.0)
        except Exception:
            await asyncio.sleep(0.5)


def bridge_counters(address: str) -> dict[str, float]:
    """The bridge's counters; NaN when it did not answer within 20 s (saturated)."""
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=20) as reply:
            text = reply.read().decode()
    except OSError:
        text = ""
    out: dict[str, float] = {}
    for name in ("resyncs_total", "slow_client_closes_total", "connections"):
        found = re.search(rf"^metrics_bridge_{name} (\S+)$", text, re.MULTILINE)
        out[name] = float(found.group(1)) if found else float("nan")
    return out


def usage(process: psutil.Process) -> tuple[float, int, int]:
    with process.oneshot():
        return process.memory_info().rss / 1e6, process.num_fds(), process.num_threads()


def plot(rows: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t_s"] / 60 for r in rows]
    figure, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    axes[0].plot(t, [r["bridge_rss_mb"] for r in rows], label="bridge RSS (MB)")
    axes[0].plot(t, [r["collector_rss_mb"] for r in rows], label="collector RSS (MB)")
    axes[1].plot(t, [r["bridge_fds"] for r in rows], label="bridge fds")
    axes[1].plot(t, [r["bridge_threads"] for r in rows], label="bridge threads")
    axes[2].plot(t, [r["deliveries_per_s"] for r in rows], label="deliveries/s")
    for axis in axes:
        axis.legend(loc="upper left")
        axis.grid(alpha=0.3)
    axes[2].set_xlabel("minutes")
    figure.suptitle("make soak")
    figure.tight_layout()
    figure.savefig(path, dpi=90)


async def soak(args: argparse.Namespace) -> int:
    collector = Server.module("collector", ["--listen", "127.0.0.1:0", "--interval", "0.1"])
    grpc_address = collector.addresses["grpc"]
    bridge = Server.module(
        "bridge",
        ["--listen", "127.0.0.1:0", "--collector", f"c1={grpc_address}",
         "--max-connections", str(args.clients + 1000)],
    )  # fmt: skip
    url, ws_address = bridge.addresses["url"], bridge.addresses["ws"]
    stop = asyncio.Event()
    loads: list[LoadProcess] = []
    tasks: list[asyncio.Task[None]] = []
    resumers: list[ChaosClient] = []
    rows: list[dict[str, float]] = []
    try:
        tasks.append(asyncio.create_task(push_forever(grpc_address, 20, stop)))
        host = f"c1/{host_source(grpc_address)}"
        channels = [host, "c1/svc"]
        await asyncio.sleep(2)
        lean = int(args.clients * 0.85)
        for i, (channel, compression) in enumerate(
            [(c, z) for c in channels for z in ("none", "deflate")]
        ):
            count = lean // 4 + (1 if i < lean % 4 else 0)
            loads.append(await LoadProcess.start(url, channel, count, compression, 200))
        rng = random.Random(args.seed)
        for i in range(int(args.clients * 0.05)):
            channel = channels[i % 2]
            tasks.append(asyncio.create_task(slow_reader(url, channel, rng, stop)))
        for i in range(int(args.clients * 0.10)):
            client = ChaosClient(url, channels[i % 2], random.Random(rng.random()), True, (5, 60))
            resumers.append(client)
            tasks.append(asyncio.create_task(client.run(stop)))
        processes = {
            "bridge": psutil.Process(bridge.pid),
            "collector": psutil.Process(collector.pid),
        }
        print(
            f"soak: {args.clients} clients ({lean} lean in 4 load processes, "
            f"{int(args.clients * 0.05)} slow, {len(resumers)} resuming), {args.seconds:g} s"
        )
        print(HEADER)
        started = time.monotonic()
        last_deliveries = 0.0
        last_t = started
        for load in loads:
            await load.command("stats")
            last_deliveries += (await load.read())["deliveries"]
        while time.monotonic() - started < args.seconds:
            await asyncio.sleep(max(0.0, args.sample - 5))
            opens = time.time()
            await loads[-1].command(f"window latency {opens} {opens + 5}")
            await asyncio.sleep(5)
            await loads[-1].command("result")
            window = await loads[-1].read()
            deliveries = 0.0
            for load in loads:
                await load.command("stats")
                deliveries += (await load.read())["deliveries"]
            now = time.monotonic()
            rate = (deliveries - last_deliveries) / (now - last_t)
            last_deliveries, last_t = deliveries, now
            b_rss, b_fds, b_thr = usage(processes["bridge"])
            c_rss, c_fds, c_thr = usage(processes["collector"])
            counters = await asyncio.to_thread(bridge_counters, ws_address)
            row = {
                "t_s": now - started, "bridge_rss_mb": b_rss, "bridge_fds": b_fds,
                "bridge_threads": b_thr, "collector_rss_mb": c_rss, "collector_fds": c_fds,
                "collector_threads": c_thr, "deliveries_per_s": rate,
                "p99_ms": float(window.get("p99_ms", float("nan"))),
                "resyncs": counters["resyncs_total"],
                "slow_client_closes": counters["slow_client_closes_total"],
                "connections": counters["connections"],
            }  # fmt: skip
            rows.append(row)
            print(
                f"{row['t_s']:5.0f}  {b_rss:8.1f} {b_fds:4d} {b_thr:3d} | {c_rss:11.1f} {c_fds:4d}"
                f" {c_thr:3d} | {rate:7.0f} {row['p99_ms']:7.1f} {row['resyncs']:7.0f}"
                f" {row['slow_client_closes']:9.0f} {row['connections']:5.0f}",
                flush=True,
            )
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for load in loads:
            try:
                await load.command("exit")
                await asyncio.wait_for(load.proc.wait(), 30)
            except Exception:
                load.proc.kill()
        bridge.stop()
        collector.stop()
        if rows:
            write_series(rows, args.out)  # an interrupted run keeps what it measured
    return verdict(rows, resumers)


def write_series(rows: list[dict[str, float]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "soak.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "soak.png")


def verdict(rows: list[dict[str, Any]], resumers: list[ChaosClient]) -> int:
    if len(rows) < 4:
        print("too few samples for a trend: run longer (SOAK_SECONDS)")
        return 1
    times = [r["t_s"] for r in rows]
    result = trend(times, [r["bridge_rss_mb"] * 1e6 for r in rows], [r["bridge_fds"] for r in rows])
    collector = trend(
        times, [r["collector_rss_mb"] * 1e6 for r in rows], [r["collector_fds"] for r in rows]
    )
    gaps = sum(c.view.gaps for c in resumers)
    cycles = sum(c.cycles for c in resumers)
    print(
        f"second half: bridge RSS {result.rss_bytes_per_s * 600 / 1e6:+.2f} MB per 10 min "
        f"({result.rss_share_per_10min:+.2%}), fds {result.fds_per_s * 600:+.2f} per 10 min; "
        f"collector RSS {collector.rss_share_per_10min:+.2%}, fds {collector.fds_per_s * 600:+.2f}"
        f" per 10 min; resuming clients: {cycles} reconnects, {gaps} gaps"
    )
    held = result.flat and collector.flat and gaps == 0
    print("HELD" if held else "FAILED (RSS over 2 %/10 min, fds growing, or a gap)")
    return 0 if held else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between rows")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return asyncio.run(soak(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
