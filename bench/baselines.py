"""Baseline servers the bridge is measured against, fed by the same collector.

Each follows the collector's Subscribe stream (every source) and serves the
load clients, which subscribe with the bridge's own `ClientMessage`:

- naive: JSON text frames, one `await ws.send()` per client in a loop, the
  way a first WebSocket fan-out is usually written. A message names every
  changed series in full: {"channel", "seq", "time_unix_ms", "values":
  [{"name", "labels", "value"}], "removed"}; a subscriber first gets the
  whole state with "snapshot": true.
- broadcast: the bridge's bytes (ServerMessage header + the collector's
  event) through `websockets.broadcast()`.
- raw: the same bytes as one prebuilt WebSocket frame written with
  `transport.write` to every client: what fan-out costs with no per-client
  work at all (it never compresses).

naive and broadcast negotiate permessage-deflate when a client offers it,
as websockets does by default; raw declines it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable

import grpc
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2
from metrics_shared.ready_file import write_ready_file

log = logging.getLogger("bench.baselines")
SUBSCRIBE = "/metrics_bridge.v1.MetricsCollector/Subscribe"


def ws_frame(payload: bytes) -> bytes:
    """One unmasked binary frame, as a server writes it."""
    count = len(payload)
    if count < 126:
        return bytes([0x82, count]) + payload
    if count < 65536:
        return bytes([0x82, 126]) + count.to_bytes(2, "big") + payload
    return bytes([0x82, 127]) + count.to_bytes(8, "big") + payload


class JsonState:
    """One source's state with names resolved, for the naive JSON server."""

    def __init__(self) -> None:
        self.seq = 0
        self.time_unix_ms = 0
        self.series: dict[int, tuple[str, dict[str, str]]] = {}
        self.values: dict[int, float] = {}

    def snapshot(self, snapshot: metrics_pb2.Snapshot) -> None:
        self.series = {d.id: (d.name, {x.name: x.value for x in d.labels}) for d in snapshot.series}
        self.values = dict(zip(snapshot.values.ids, snapshot.values.numbers, strict=False))
        self.seq, self.time_unix_ms = snapshot.seq, snapshot.time_unix_ms

    def update(self, update: metrics_pb2.Update) -> list[int]:
        for d in update.added:
            self.series[d.id] = (d.name, {x.name: x.value for x in d.labels})
        changed = list(update.values.ids)
        self.values.update(zip(changed, update.values.numbers, strict=False))
        for series_id in update.removed:
            self.series.pop(series_id, None)
            self.values.pop(series_id, None)
        self.seq, self.time_unix_ms = update.seq, update.time_unix_ms
        return changed

    def message(self, channel: str, ids: list[int] | None, removed: list[int]) -> str:
        chosen = self.values if ids is None else ids
        values = []
        for series_id in chosen:
            if series_id in self.series:
                name, labels = self.series[series_id]
                values.append({"name": name, "labels": labels, "value": self.values[series_id]})
        body: dict[str, object] = {
            "channel": channel,
            "seq": self.seq,
            "time_unix_ms": self.time_unix_ms,
            "values": values,
        }
        if ids is None:
            body["snapshot"] = True
        if removed:
            body["removed"] = removed
        return json.dumps(body, separators=(",", ":"))


class Baseline:
    def __init__(self, kind: str, collector_name: str) -> None:
        self.kind = kind
        self.name = collector_name
        self.subscribers: dict[str, set[ServerConnection]] = {}
        self.snapshot_frames: dict[str, bytes] = {}
        self.json_states: dict[str, JsonState] = {}
        self.seen: set[str] = set()

    async def handler(self, ws: ServerConnection) -> None:
        try:
            data = await asyncio.wait_for(ws.recv(), 10)
        except (TimeoutError, ConnectionClosed):
            return
        request = bridge_pb2.ClientMessage()
        request.ParseFromString(data if isinstance(data, bytes) else data.encode())
        channels = [c.channel for c in request.subscribe.channels]
        for channel in channels:
            self.subscribers.setdefault(channel, set()).add(ws)
            await self._send_state(ws, channel)
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
        finally:
            for channel in channels:
                self.subscribers.get(channel, set()).discard(ws)

    async def _send_state(self, ws: ServerConnection, channel: str) -> None:
        if self.kind == "naive":
            state = self.json_states.get(channel)
            if state is not None:
                await ws.send(state.message(channel, None, []))
        elif channel in self.snapshot_frames:
            if self.kind == "raw":
                ws.transport.write(ws_frame(self.snapshot_frames[channel]))
            else:
                await ws.send(self.snapshot_frames[channel])

    async def follow(self, address: str, on_source: Callable[[str], None]) -> None:
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.unary_stream(
                SUBSCRIBE,
                request_serializer=collector_pb2.SubscribeRequest.SerializeToString,
                response_deserializer=lambda raw: raw,
            )(
                # broadcast and raw forward the bridge's bytes (compact updates); naive
                # decodes values into JSON, so it takes them in full.
                collector_pb2.SubscribeRequest(value_deltas=self.kind != "naive")
            )
            async for raw in call:
                await self.publish(raw, on_source)

    async def publish(self, raw: bytes, on_source: Callable[[str], None]) -> None:
        event = collector_pb2.CollectorEvent()
        event.ParseFromString(raw)
        which = event.WhichOneof("event")
        if which == "snapshot":
            source = event.snapshot.source
        elif which == "update":
            source = event.update.source
        else:
            return
        channel = f"{self.name}/{source}"
        clients = self.subscribers.get(channel, set())
        if self.kind == "naive":
            state = self.json_states.setdefault(channel, JsonState())
            if which == "snapshot":
                state.snapshot(event.snapshot)
                text = state.message(channel, None, [])
            else:
                changed = state.update(event.update)
                text = state.message(channel, changed, list(event.update.removed))
            for ws in list(clients):
                try:
                    await ws.send(text)
                except ConnectionClosed:
                    clients.discard(ws)
        else:
            frame = bridge_pb2.ServerMessage(channel=channel).SerializeToString() + raw
            if which == "snapshot":
                self.snapshot_frames[channel] = frame
            if self.kind == "broadcast":
                broadcast(clients, frame)
            else:
                wire = ws_frame(frame)
                for ws in clients:
                    ws.transport.write(wire)
        if source not in self.seen:
            self.seen.add(source)
            on_source(source)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every baseline server takes (bench/run.py starts them alike)."""
    parser.add_argument("--collector", required=True, help="HOST:PORT of the collector")
    parser.add_argument("--name", default="c1", help="collector name used in channel names")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to serve on")
    parser.add_argument(
        "--wait-source", action="append", default=[], help="serve once this source is known"
    )
    parser.add_argument("--ready-file", help='write {"ws", "url"} here once serving')


async def main_async(args: argparse.Namespace) -> int:
    baseline = Baseline(args.kind, args.name)
    host, port = args.listen.rsplit(":", 1)
    waiting = set(args.wait_source)
    serving: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_source(source: str) -> None:
        waiting.discard(source)
        if not waiting and not serving.done():
            serving.set_result(None)

    if not waiting:
        serving.set_result(None)
    follower = asyncio.create_task(baseline.follow(args.collector, on_source))
    async with serve(
        baseline.handler,
        host,
        int(port),
        subprotocols=["metrics-bridge.v1"],  # type: ignore[list-item]
        compression=None if args.kind == "raw" else "deflate",
        max_queue=8,
    ) as server:
        await asyncio.wait([serving, follower], return_when=asyncio.FIRST_COMPLETED)
        if follower.done():
            follower.result()
            return 1
        bound = server.sockets[0].getsockname()
        address = f"{bound[0]}:{bound[1]}"
        if args.ready_file:
            ready = {"ws": address, "url": f"ws://{address}/"}
            await asyncio.to_thread(write_ready_file, args.ready_file, ready)
        log.info("%s baseline serving ws://%s/", args.kind, address)
        stop = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
        await asyncio.wait([stop, follower], return_when=asyncio.FIRST_COMPLETED)
    follower.cancel()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines", description=__doc__)
    parser.add_argument("--kind", choices=["naive", "broadcast", "raw"], required=True)
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
