"""`python -m bench.soak`: a long run under steady load, printing the resources it holds.

Setup (issue 15): a collector sampling its host at 10 Hz (`--interval 0.1`)
and a pushed service at 20 Hz; a bridge; `--clients` WebSocket clients: 85 %
lean clients (bench/load.py processes, half offering permessage-deflate,
split between the two channels), 5 % slow readers (`SlowReader`: both
channels, SO_RCVBUF 4 KiB; they read one message every 1/24-1/12 s of the 30
sent per second for 20-90 s, then none for 5-40 s; closed ones reconnect),
10 % that drop and reconnect at random (5-60 s) with resume (bench/chaos.py's
client, so their gaps are counted too).

The bridge runs with `--send-buffer-bytes 8192` (`--send-buffer-bytes` to
change): at its default 64 KiB (128 KiB in Linux) a ~3 KB/s client that
reads too slowly has the bridge's ping (every 20 s, to be answered within
20 s) queued behind that kernel buffer, so it is closed (1011) before the
bridge's own buffer fills and it is resynced. With 8 KiB the slow readers'
updates are skipped and they are resynced; a stall usually ends in a ping
timeout, sometimes in a slow-client close (4000).

Every `--sample` seconds it prints bridge and collector RSS, open fds and
threads, deliveries/s, the p99 push-to-receive latency (a 5 s window),
updates skipped, resyncs, slow-client closes, ping-timeout closes and
connections (the bridge's counters). At the end: what the slow readers saw,
and the least-squares slope of RSS and fds over the second half
(bench/soak_trend.py); it fails if RSS grows more than 2 % per 10 minutes,
if fds beyond one per connection grow by one or more (and by more than twice
the fit's standard error), or if a resuming client saw a gap. The series
goes to bench/results/soak.csv and soak.png (matplotlib).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import re
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.chaos import PROTOCOL, ChaosClient
from bench.processes import Server
from bench.pusher import Pusher
from bench.run import LoadProcess, host_source
from bench.soak_trend import trend
from metrics_bridge.v1 import bridge_pb2

__all__ = ["main"]

HEADER = (
    "   t  bridge MB fds thr | collector MB fds thr | deliv/s  p99 ms"
    " skipped resyncs slowclose pingclose conns"
)

RCVBUF = 4096
"""A slow reader's SO_RCVBUF (Linux doubles it)."""
RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = [
    "t_s", "bridge_rss_mb", "bridge_fds", "bridge_threads", "collector_rss_mb",
    "collector_fds", "collector_threads", "deliveries_per_s", "p99_ms", "updates_skipped",
    "resyncs", "slow_client_closes", "ping_timeouts", "connections",
]  # fmt: skip


class SlowReader:
    """A client that reads slower than its channels send, and now and then not at all.

    Its socket's SO_RCVBUF is 4 KiB (set before connecting), so what it does
    not read backs up into the bridge rather than into its own kernel. It
    subscribes to both channels (30 messages/s, ~3 KB/s) and alternates a
    trickle (one message every 1/24-1/12 s for 20-90 s) with a stall (no
    reads for 5-40 s). It sends no pings of its own: only the bridge decides
    when it is gone. Closed, it reconnects and subscribes afresh.
    """

    def __init__(self, url: str, address: str, channels: list[str], rng: random.Random) -> None:
        host, port = address.rsplit(":", 1)
        self.url, self.peer, self.channels, self.rng = url, (host, int(port)), channels, rng
        self.resyncs = 0
        self.closes = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                sock.setblocking(False)
                try:
                    await asyncio.get_running_loop().sock_connect(sock, self.peer)
                except OSError:
                    sock.close()
                    raise
                async with connect(
                    self.url, sock=sock, subprotocols=[PROTOCOL], max_queue=4, ping_interval=None
                ) as ws:
                    await self._session(ws, stop)
            except ConnectionClosed:
                self.closes += 1
                await asyncio.sleep(self.rng.uniform(0.5, 2))
            except (OSError, InvalidHandshake, TimeoutError):
                await asyncio.sleep(self.rng.uniform(0.5, 2))

    async def _session(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        request = bridge_pb2.ClientMessage()
        for channel in self.channels:
            request.subscribe.channels.add(channel=channel)
        await ws.send(request.SerializeToString())
        while not stop.is_set():
            until = time.monotonic() + self.rng.uniform(20, 90)
            pace = 1 / self.rng.uniform(12, 24)
            while time.monotonic() < until and not stop.is_set():
                message = bridge_pb2.ServerMessage.FromString(await ws.recv(decode=False))
                if message.resync:
                    self.resyncs += 1
                await asyncio.sleep(pace)
            await asyncio.sleep(self.rng.uniform(5, 40))  # websockets stops reading at max_queue


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
    for name in (
        "updates_skipped_total", "resyncs_total", "slow_client_closes_total",
        "ping_timeouts_total", "connections",
    ):  # fmt: skip
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
    axes[1].plot(t, [r["connections"] for r in rows], label="connections", linewidth=0.8)
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
         "--max-connections", str(args.clients + 1000),
         "--send-buffer-bytes", str(args.send_buffer_bytes)],
    )  # fmt: skip
    url, ws_address = bridge.addresses["url"], bridge.addresses["ws"]
    stop = asyncio.Event()
    loads: list[LoadProcess] = []
    tasks: list[asyncio.Task[None]] = []
    resumers: list[ChaosClient] = []
    slow: list[SlowReader] = []
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
        for _ in range(int(args.clients * 0.05)):
            reader = SlowReader(url, ws_address, channels, random.Random(rng.random()))
            slow.append(reader)
            tasks.append(asyncio.create_task(reader.run(stop)))
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
                "updates_skipped": counters["updates_skipped_total"],
                "resyncs": counters["resyncs_total"],
                "slow_client_closes": counters["slow_client_closes_total"],
                "ping_timeouts": counters["ping_timeouts_total"],
                "connections": counters["connections"],
            }  # fmt: skip
            rows.append(row)
            print(
                f"{row['t_s']:5.0f}  {b_rss:8.1f} {b_fds:4d} {b_thr:3d} | {c_rss:11.1f} {c_fds:4d}"
                f" {c_thr:3d} | {rate:7.0f} {row['p99_ms']:7.1f} {row['updates_skipped']:7.0f}"
                f" {row['resyncs']:7.0f} {row['slow_client_closes']:9.0f}"
                f" {row['ping_timeouts']:9.0f} {row['connections']:5.0f}",
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
    print(
        f"slow readers: {sum(r.resyncs for r in slow)} resync snapshots received, "
        f"{sum(r.closes for r in slow)} connections closed under them"
    )
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
    rss = [r["bridge_rss_mb"] * 1e6 for r in rows]
    fds = [r["bridge_fds"] for r in rows]
    result = trend(times, rss, fds, [r["connections"] for r in rows])
    raw_fds = trend(times, rss, fds)
    collector = trend(
        times, [r["collector_rss_mb"] * 1e6 for r in rows], [r["collector_fds"] for r in rows]
    )
    gaps = sum(c.view.gaps for c in resumers)
    cycles = sum(c.cycles for c in resumers)
    print(
        f"second half: bridge RSS {result.rss_bytes_per_s * 600 / 1e6:+.2f} MB per 10 min "
        f"({result.rss_share_per_10min:+.2%}), fds beyond one per connection "
        f"{result.fds_per_s * 600:+.2f} per 10 min ({result.fd_growth:+.1f} "
        f"± {result.fd_growth_error:.1f} over the half; all fds {raw_fds.fds_per_s * 600:+.2f}); "
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
    parser.add_argument(
        "--send-buffer-bytes",
        type=int,
        default=8192,
        help="the bridge's SO_SNDBUF per client (its default is 65536)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    return asyncio.run(soak(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
